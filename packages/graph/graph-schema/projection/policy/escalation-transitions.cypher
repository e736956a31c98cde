
UNWIND $rows AS r
MERGE (e:Escalation {tenantId: r.tenantId, id: r.escalationId})
MERGE (x:EscalationTransition {tenantId: r.tenantId, id: r.id})
SET x += r.props
MERGE (e)-[:TRANSITION]->(x)