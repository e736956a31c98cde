
UNWIND $rows AS r
// The run's links to the LLM call that asked.
CALL (r) {
  MATCH (t:Trace {tenantId: r.tenantId, id: r.traceId})
  // Found by its (tenantId, traceId, callId) index whatever the statistics say: planned on an empty
  // store, `runId IS NOT NULL` read the tenant's every tool call from the (tenantId, runId) one.
  MATCH (x:ToolCall {tenantId: r.tenantId, traceId: r.traceId, callId: r.callId})
  USING INDEX x:ToolCall(tenantId, traceId, callId)
  WHERE x.runId IS NOT NULL
  CALL (r, t, x) {
    // The outputs of the trace's calls, from the trace. The bound on the output's id is applied
    // after the match, not in its WHERE, where an empty store's plan read it from the Output(id)
    // index as a range (every output before it); `collect` keeps one row when none is found.
    OPTIONAL MATCH (t)<-[:PART_OF]-(c:LLMCall)-[:GENERATED]->(o:Output)
    WHERE r.callId IN o.toolCallIds
    WITH c, o, coalesce(x.startEventId, x.endEventId) AS before ORDER BY o.id DESC
    WITH collect(CASE WHEN o.id < before THEN {c: c, o: o} END)[0] AS latest
    RETURN latest.c AS asker, latest.o AS askerOutput
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
}
// Then the requests no run answers, after the links (of the same trace and call id).
CALL (r) {
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
}
