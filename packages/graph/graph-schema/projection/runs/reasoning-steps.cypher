
UNWIND $rows AS r
MATCH (c:LLMCall {tenantId: r.tenantId, id: r.runId})
UNWIND r.steps AS step
MERGE (s:ReasoningStep {tenantId: r.tenantId, id: step.id})
SET s.traceId = r.traceId, s.index = step.index, s.kind = step.kind,
    s.text = step.text, s.toolCall = step.toolCall, s.callId = step.callId
MERGE (s)-[:STEP_OF]->(c)
FOREACH (_ IN CASE WHEN step.index = 0 THEN [1] ELSE [] END | MERGE (c)-[:FIRST_STEP]->(s))