// Who read one audited user's data (a subject access request asks this too): the accesses that
// read a trace she requested (replays of her traces included: they act for her), that read an
// escalation about one, or that name her as their subject (`userId`; after her erasure, her
// subject ref, which is then her User's id). Each access once, newest first, in [$from, $to).
CALL () {
  MATCH (:User {tenantId: $tenantId, id: $userId})<-[:REQUESTED_BY]-(:Trace)<-[:READ]-(a:Access {tenantId: $tenantId})
  RETURN a, null AS escalationTrace
  UNION
  MATCH (:User {tenantId: $tenantId, id: $userId})<-[:REQUESTED_BY]-(t:Trace)
  MATCH (:PolicyFlag {tenantId: $tenantId, traceId: t.id})-[:ESCALATED_TO]->(:Escalation {tenantId: $tenantId})<-[:READ]-(a:Access {tenantId: $tenantId})
  RETURN a, t.id AS escalationTrace
  UNION
  MATCH (a:Access {tenantId: $tenantId, userId: $userId})
  RETURN a, null AS escalationTrace
}
WITH a, collect(escalationTrace) AS escalationTraces
WHERE ($from IS NULL OR a.at >= $from) AND ($to IS NULL OR a.at < $to)
RETURN a.actorId AS actorId, a.actorName AS actorName, a.action AS action, coalesce(a.traceId, escalationTraces[0]) AS traceId,
       a.at AS at, a.ip AS ip
ORDER BY at DESC, a.id DESC
LIMIT $limit
