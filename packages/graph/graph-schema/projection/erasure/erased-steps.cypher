
UNWIND $rows AS r
MATCH (:User {tenantId: r.tenantId, subject: r.subject})<-[:REQUESTED_BY]-(:Trace)<-[:PART_OF]-(:LLMCall)<-[:STEP_OF]-(s:ReasoningStep)
SET s.text = null, s.toolCall = null, s.erased = true