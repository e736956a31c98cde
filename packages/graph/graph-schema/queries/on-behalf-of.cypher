// Which users an agent acted for, per agent version: how often and when (first and last time).
// Replay runs (a candidate version over recorded traces) are no acting for a user: left out
// unless $includeReplays.
MATCH (a:Agent {tenantId: $tenantId, id: $agentId})-[r:ACTED_ON_BEHALF_OF]->(u:User)
MATCH (t:Trace {tenantId: $tenantId, id: r.traceId})-[:HANDLED_BY]->(av:AgentVersion)
WHERE ($agentVersion IS NULL OR av.version = $agentVersion)
  AND ($includeReplays OR t.kind IS NULL)
  AND ($since IS NULL OR t.startedAt >= $since)
  AND ($until IS NULL OR t.startedAt < $until)
RETURN u.id AS userId, av.version AS agentVersion, count(t) AS traces,
       min(t.startedAt) AS firstAt, max(t.startedAt) AS lastAt
ORDER BY traces DESC, userId, agentVersion
LIMIT $limit
