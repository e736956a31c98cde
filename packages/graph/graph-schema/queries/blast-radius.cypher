// Everything one served model version, or one agent version, produced for a tenant in a time
// window: per user, agent version and model version, how many outputs and traces, and how many
// policy flags were raised in those traces (a trace served by two model versions counts for both).
// Replay runs and review records are left out unless $includeReplays.
CALL () {
  WITH 1 AS mode WHERE $modelVersion IS NOT NULL
  MATCH (:ModelVersion {tenantId: $tenantId, version: $modelVersion})<-[:USED_MODEL]-(c:LLMCall)-[:GENERATED]->(o:Output)
  RETURN c, o
  UNION
  WITH 1 AS mode WHERE $agentVersion IS NOT NULL
  MATCH (:AgentVersion {tenantId: $tenantId, agentId: $agentId, version: $agentVersion})<-[:HANDLED_BY]-(:Trace)<-[:PART_OF]-(c:LLMCall)-[:GENERATED]->(o:Output)
  RETURN c, o
}
WITH c, o WHERE ($since IS NULL OR o.recordedAt >= $since) AND ($until IS NULL OR o.recordedAt < $until)
MATCH (c)-[:PART_OF]->(t:Trace)-[:REQUESTED_BY]->(u:User)
WHERE $includeReplays OR t.kind IS NULL
MATCH (t)-[:HANDLED_BY]->(av:AgentVersion)
MATCH (c)-[:USED_MODEL]->(m:ModelVersion)
WITH u, av, m, t, count(DISTINCT o) AS outputs, min(o.recordedAt) AS firstAt, max(o.recordedAt) AS lastAt
WITH u, av, m, t, outputs, firstAt, lastAt, COUNT { MATCH (f:PolicyFlag {tenantId: $tenantId, traceId: t.id}) } AS flags
RETURN u.id AS userId, av.agentId AS agentId, av.version AS agentVersion, m.version AS modelVersion,
       sum(outputs) AS outputs, count(t) AS traces, sum(flags) AS flags,
       min(firstAt) AS firstAt, max(lastAt) AS lastAt
ORDER BY outputs DESC, userId
LIMIT $limit
