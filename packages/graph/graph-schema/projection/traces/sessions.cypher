
UNWIND $rows AS r
MATCH (s:Session {tenantId: r.tenantId, id: r.sessionId})
SET s.lastActivityAt = CASE WHEN r.recordedAt IS NOT NULL AND (s.lastActivityAt IS NULL OR s.lastActivityAt < r.recordedAt) THEN r.recordedAt ELSE s.lastActivityAt END
WITH DISTINCT s
// The first trace.
CALL (s) {
  OPTIONAL MATCH (s)<-[:IN_SESSION]-(t:Trace) WHERE t.kind IS NULL
  WITH s, t ORDER BY t.firstEventId, t.id
  WITH s, collect(t)[0] AS first
  OPTIONAL MATCH (s)-[stale:FIRST_TRACE]->(other) WHERE first IS NULL OR other <> first
  DELETE stale
  WITH DISTINCT s, first WHERE first IS NOT NULL
  MERGE (s)-[:FIRST_TRACE]->(first)
}
// Each trace's next.
CALL (s) {
  MATCH (s)<-[:IN_SESSION]-(t:Trace) WHERE t.kind IS NULL
  WITH t ORDER BY t.firstEventId, t.id
  WITH collect(t) AS ts
  UNWIND range(0, size(ts) - 1) AS i
  WITH ts[i] AS t, ts[i + 1] AS next
  OPTIONAL MATCH (t)-[stale:NEXT_TRACE]->(other) WHERE next IS NULL OR other <> next
  DELETE stale
  WITH DISTINCT t, next WHERE next IS NOT NULL
  MERGE (t)-[:NEXT_TRACE]->(next)
}
// The traces apart from the order hold no NEXT_TRACE either way.
CALL (s) {
  MATCH (s)<-[:IN_SESSION]-(t:Trace) WHERE t.kind IS NOT NULL
  MATCH (t)-[stale:NEXT_TRACE]-()
  WITH DISTINCT stale
  DELETE stale
}
