
UNWIND $rows AS r
MATCH (t:Trace {tenantId: r.tenantId, id: r.traceId})
SET t.name = r.name, t.input = r.input, t.startedAt = r.recordedAt, t.status = coalesce(t.status, 'running')