
UNWIND $rows AS r
MATCH (:User {tenantId: r.tenantId, subject: r.subject})<-[:REQUESTED_BY]-(:Trace)<-[:PART_OF]-(:LLMCall)<-[:INPUT_TO]-(p:Prompt)
SET p.messages = null, p.hash = null, p.erased = true