
UNWIND $rows AS r
MATCH (:User {tenantId: r.tenantId, subject: r.subject})<-[:REQUESTED_BY]-(:Trace)<-[:PART_OF]-(:LLMCall)-[:GENERATED]->(o:Output)
SET o.text = null, o.toolCalls = null, o.toolCallArgs = null, o.erased = true