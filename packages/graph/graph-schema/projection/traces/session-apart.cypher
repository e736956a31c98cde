
UNWIND $rows AS r
MATCH (:Session {tenantId: r.tenantId, id: r.sessionId})<-[:IN_SESSION]-(t:Trace) WHERE t.kind IS NOT NULL
MATCH (t)-[stale:NEXT_TRACE]-()
WITH DISTINCT stale
DELETE stale