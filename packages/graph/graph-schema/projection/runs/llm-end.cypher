
UNWIND $rows AS r
MATCH (t:Trace {tenantId: r.tenantId, id: r.traceId})
MERGE (c:LLMCall {tenantId: r.tenantId, id: r.runId})
SET c.traceId = r.traceId, c.endedAt = r.recordedAt, c.status = 'ok',
    c.inputTokens = r.inputTokens, c.outputTokens = r.outputTokens, c.totalTokens = r.totalTokens,
    c.costCurrency = r.costCurrency, c.costTotal = r.costTotal
MERGE (c)-[:PART_OF]->(t)
MERGE (m:ModelVersion {tenantId: r.tenantId, provider: r.provider, name: r.model, version: r.version})
MERGE (c)-[:USED_MODEL]->(m)
MERGE (o:Output {tenantId: r.tenantId, id: r.eventId})
SET o.traceId = r.traceId, o.text = r.text, o.toolCalls = r.toolCallsJson,
    o.toolCallIds = r.toolCallIds, o.toolCallNames = r.toolCallNames, o.toolCallArgs = r.toolCallArgs,
    o.streamId = r.streamId, o.position = r.position, o.recordedAt = r.recordedAt
MERGE (c)-[:GENERATED]->(o)