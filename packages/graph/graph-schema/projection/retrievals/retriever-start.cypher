
UNWIND $rows AS r
MATCH (t:Trace {tenantId: r.tenantId, id: r.traceId})
MERGE (ret:Retrieval {tenantId: r.tenantId, id: r.runId})
SET ret.traceId = r.traceId, ret.parentRunId = r.parentRunId, ret.name = r.name, ret.query = r.query,
    ret.startedAt = r.recordedAt, ret.status = coalesce(ret.status, 'running')
MERGE (ret)-[:PART_OF]->(t)
WITH r, ret
CALL (r, ret) {
  MATCH (x:ToolCall {tenantId: r.tenantId, runId: r.parentRunId})
  MERGE (x)-[:CALLED]->(ret)
}