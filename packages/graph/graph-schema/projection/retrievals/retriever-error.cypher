
UNWIND $rows AS r
MATCH (t:Trace {tenantId: r.tenantId, id: r.traceId})
MERGE (ret:Retrieval {tenantId: r.tenantId, id: r.runId})
SET ret.traceId = r.traceId, ret.parentRunId = r.parentRunId, ret.endedAt = r.recordedAt, ret.status = 'error', ret.error = r.error
MERGE (ret)-[:PART_OF]->(t)