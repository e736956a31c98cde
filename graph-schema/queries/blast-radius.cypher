// Everything one served model version produced for a tenant in a time window: per user and
// agent version, how many outputs and traces.
MATCH (m:ModelVersion {tenantId: $tenantId, version: $modelVersion})<-[:USED_MODEL]-(c:LLMCall)-[:GENERATED]->(o:Output)
WHERE ($since IS NULL OR o.recordedAt >= $since) AND ($until IS NULL OR o.recordedAt < $until)
MATCH (c)-[:PART_OF]->(t:Trace)-[:REQUESTED_BY]->(u:User)
MATCH (t)-[:HANDLED_BY]->(av:AgentVersion)
RETURN u.id AS userId, av.agentId AS agentId, av.version AS agentVersion,
       count(DISTINCT o) AS outputs, count(DISTINCT t) AS traces,
       min(o.recordedAt) AS firstAt, max(o.recordedAt) AS lastAt
ORDER BY outputs DESC, userId
LIMIT $limit
