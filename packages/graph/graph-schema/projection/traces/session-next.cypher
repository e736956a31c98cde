
UNWIND $rows AS r
MATCH (s:Session {tenantId: r.tenantId, id: r.sessionId})<-[:IN_SESSION]-(t:Trace) WHERE t.kind IS NULL
WITH s, t ORDER BY t.firstEventId, t.id
WITH s, collect(t) AS ts
UNWIND range(0, size(ts) - 1) AS i
WITH ts[i] AS t, ts[i + 1] AS next
OPTIONAL MATCH (t)-[stale:NEXT_TRACE]->(other) WHERE next IS NULL OR other <> next
DELETE stale
WITH DISTINCT t, next WHERE next IS NOT NULL
MERGE (t)-[:NEXT_TRACE]->(next)