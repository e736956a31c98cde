
UNWIND $rows AS r
MATCH (:Trace {tenantId: r.tenantId, id: r.traceId})<-[:PART_OF]-(c:LLMCall)-[:GENERATED]->(o:Output)
WHERE r.callId IN o.toolCallIds
WITH r, c, o, [i IN range(0, size(o.toolCallIds) - 1) WHERE o.toolCallIds[i] = r.callId][0] AS i,
     EXISTS { (c)-[:REQUESTED]->(run:ToolCall) WHERE run.callId = r.callId AND run.runId IS NOT NULL } AS ran
CALL (r, c, ran) {
  WITH r, c WHERE ran
  OPTIONAL MATCH (p:ToolCall {tenantId: r.tenantId, requestedBy: c.id, callId: r.callId})
  DETACH DELETE p
}
CALL (r, c, o, i, ran) {
  WITH r, c, o, i WHERE NOT ran
  MERGE (p:ToolCall {tenantId: r.tenantId, requestedBy: c.id, callId: r.callId})
  SET p.traceId = r.traceId, p.status = 'requested', p.name = o.toolCallNames[i], p.requestedArgs = o.toolCallArgs[i]
  MERGE (c)-[:REQUESTED]->(p)
  WITH r, c, p
  CALL (r, c, p) {
    MATCH (s:ReasoningStep {callId: r.callId})-[:STEP_OF]->(c)
    MERGE (s)-[:REQUESTS]->(p)
  }
}