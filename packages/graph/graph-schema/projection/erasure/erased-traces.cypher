
UNWIND $rows AS r
MATCH (:User {tenantId: r.tenantId, subject: r.subject})<-[:REQUESTED_BY]-(t:Trace)
SET t.input = null, t.output = null, t.error = null, t.erased = true