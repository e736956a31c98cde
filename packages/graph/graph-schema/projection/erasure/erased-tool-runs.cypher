
UNWIND $rows AS r
MATCH (:User {tenantId: r.tenantId, subject: r.subject})<-[:REQUESTED_BY]-(:Trace)<-[:PART_OF]-(x:ToolCall)
SET x.requestedArgs = null, x.input = null, x.output = null, x.error = null, x.erased = true