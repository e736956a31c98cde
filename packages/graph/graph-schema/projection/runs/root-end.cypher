
UNWIND $rows AS r
MATCH (t:Trace {tenantId: r.tenantId, id: r.traceId})
SET t.endedAt = r.recordedAt, t.status = r.status, t.output = r.output, t.error = r.error