
UNWIND $rows AS r
MATCH (u:User {tenantId: r.tenantId, subject: r.subject})
MATCH (a:Access {tenantId: r.tenantId, userId: u.id})
SET a.userId = r.subject