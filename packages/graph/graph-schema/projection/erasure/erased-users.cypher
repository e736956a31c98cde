
UNWIND $rows AS r
MATCH (u:User {tenantId: r.tenantId, subject: r.subject})
OPTIONAL MATCH (taken:User {tenantId: r.tenantId, id: r.subject})
SET u.id = CASE WHEN taken IS NULL OR taken = u THEN r.subject ELSE r.subject + '/' + r.keyId END,
    u.erased = true, u.erasedAt = coalesce(u.erasedAt, r.erasedAt), u.erasedKeyId = coalesce(u.erasedKeyId, r.keyId)