
UNWIND $rows AS r
MATCH (t:Trace {tenantId: r.tenantId, id: r.traceId})
MATCH (x:ToolCall {tenantId: r.tenantId, traceId: r.traceId, callId: r.callId}) WHERE x.runId IS NOT NULL
CALL (r, t, x) {
  OPTIONAL MATCH (t)<-[:PART_OF]-(c:LLMCall)-[:GENERATED]->(o:Output)
  WHERE r.callId IN o.toolCallIds AND o.id < coalesce(x.startEventId, x.endEventId)
  WITH c, o ORDER BY o.id DESC LIMIT 1
  RETURN c AS asker, o AS askerOutput
}
CALL (x, asker) {
  OPTIONAL MATCH (other:LLMCall)-[stale:REQUESTED]->(x) WHERE asker IS NULL OR other <> asker
  DELETE stale
}
CALL (x, asker) {
  OPTIONAL MATCH (s:ReasoningStep)-[stale:REQUESTS]->(x) WHERE asker IS NULL OR NOT EXISTS { (s)-[:STEP_OF]->(asker) }
  DELETE stale
}
WITH r, x, asker, askerOutput WHERE asker IS NOT NULL
MERGE (asker)-[:REQUESTED]->(x)
SET x.requestedArgs = askerOutput.toolCallArgs[[i IN range(0, size(askerOutput.toolCallIds) - 1) WHERE askerOutput.toolCallIds[i] = r.callId][0]]
WITH r, x, asker
CALL (r, x, asker) {
  MATCH (s:ReasoningStep {callId: r.callId})-[:STEP_OF]->(asker)
  MERGE (s)-[:REQUESTS]->(x)
}