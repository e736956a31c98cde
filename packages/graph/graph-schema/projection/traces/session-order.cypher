
UNWIND $rows AS r
MATCH (s:Session {tenantId: r.tenantId, id: r.sessionId})
SET s.lastActivityAt = CASE WHEN r.recordedAt IS NOT NULL AND (s.lastActivityAt IS NULL OR s.lastActivityAt < r.recordedAt) THEN r.recordedAt ELSE s.lastActivityAt END
WITH DISTINCT s
OPTIONAL MATCH (s)<-[:IN_SESSION]-(t:Trace) WHERE t.kind IS NULL
WITH s, t ORDER BY t.firstEventId, t.id
WITH s, collect(t)[0] AS first
OPTIONAL MATCH (s)-[stale:FIRST_TRACE]->(other) WHERE first IS NULL OR other <> first
DELETE stale
WITH DISTINCT s, first WHERE first IS NOT NULL
MERGE (s)-[:FIRST_TRACE]->(first)