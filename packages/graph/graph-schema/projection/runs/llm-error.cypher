
UNWIND $rows AS r
MATCH (t:Trace {tenantId: r.tenantId, id: r.traceId})
MERGE (c:LLMCall {tenantId: r.tenantId, id: r.runId})
SET c.traceId = r.traceId, c.endedAt = r.recordedAt, c.status = 'error', c.error = r.error
MERGE (c)-[:PART_OF]->(t)