
UNWIND $rows AS r
MATCH (t:Trace {tenantId: r.tenantId, id: r.traceId})
MERGE (x:ToolCall {tenantId: r.tenantId, runId: r.runId})
SET x.traceId = r.traceId, x.callId = r.callId, x.name = r.name, x.input = r.input, x.startedAt = r.recordedAt, x.startEventId = r.eventId,
    x.status = CASE WHEN x.status IN ['ok', 'error'] THEN x.status ELSE 'running' END
MERGE (x)-[:PART_OF]->(t)
MERGE (tool:Tool {tenantId: r.tenantId, name: r.name})
MERGE (x)-[:INVOKED]->(tool)
WITH r, x
CALL (r, x) {
  MATCH (ret:Retrieval {tenantId: r.tenantId, traceId: r.traceId, parentRunId: r.runId})
  MERGE (x)-[:CALLED]->(ret)
}