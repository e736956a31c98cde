// One user's traces and their final outputs, newest first (for a subject access request).
// Replay runs of her traces are left out unless $includeReplays.
MATCH (u:User {tenantId: $tenantId, id: $userId})<-[:REQUESTED_BY]-(t:Trace)
WHERE $includeReplays OR t.kind IS NULL
OPTIONAL MATCH (t)-[:IN_SESSION]->(s:Session)
OPTIONAL MATCH (t)-[:HANDLED_BY]->(av:AgentVersion)
CALL (t) {
  OPTIONAL MATCH (o:Output {tenantId: $tenantId, traceId: t.id})
  WITH o ORDER BY o.position DESC LIMIT 1
  RETURN o
}
RETURN t.id AS traceId, s.id AS sessionId, av.agentId AS agentId, av.version AS agentVersion,
       t.startedAt AS startedAt, t.status AS status, o.id AS outputId, o.text AS output
ORDER BY startedAt DESC
LIMIT $limit
