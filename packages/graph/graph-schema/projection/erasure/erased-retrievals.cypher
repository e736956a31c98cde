
UNWIND $rows AS r
MATCH (:User {tenantId: r.tenantId, subject: r.subject})<-[:REQUESTED_BY]-(:Trace)<-[:PART_OF]-(x:Retrieval)
SET x.query = null, x.error = null, x.erased = true