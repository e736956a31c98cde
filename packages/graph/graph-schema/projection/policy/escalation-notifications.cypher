
UNWIND $rows AS r
MERGE (e:Escalation {tenantId: r.tenantId, id: r.escalationId})
MERGE (x:NotificationAttempt {tenantId: r.tenantId, id: r.id})
SET x += r.props
MERGE (e)-[:NOTIFIED]->(x)