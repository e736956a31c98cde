
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
// Its reasoning steps (none: nothing), then their order: the steps first, so that NEXT never depends on step order.
WITH r, c
CALL (r, c) {
  UNWIND r.steps AS step
  MERGE (s:ReasoningStep {tenantId: r.tenantId, id: step.id})
  SET s.traceId = r.traceId, s.index = step.index, s.kind = step.kind,
      s.text = step.text, s.toolCall = step.toolCall, s.callId = step.callId
  MERGE (s)-[:STEP_OF]->(c)
  FOREACH (_ IN CASE WHEN step.index = 0 THEN [1] ELSE [] END | MERGE (c)-[:FIRST_STEP]->(s))
}
CALL (r) {
  UNWIND r.steps AS step
  WITH r, step WHERE step.prevId IS NOT NULL
  MATCH (prev:ReasoningStep {tenantId: r.tenantId, id: step.prevId}), (s:ReasoningStep {tenantId: r.tenantId, id: step.id})
  MERGE (prev)-[:NEXT]->(s)
}
