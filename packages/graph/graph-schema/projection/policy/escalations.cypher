
UNWIND $rows AS r
MERGE (e:Escalation {tenantId: r.tenantId, id: r.id})
ON CREATE SET e.state = 'open', e.updatedAt = r.props.openedAt, e.lastReviewer = null, e.statePosition = r.props.position
SET e += r.props
WITH r, e
UNWIND r.flagIds AS flagId
MERGE (f:PolicyFlag {tenantId: r.tenantId, id: flagId})
MERGE (f)-[:ESCALATED_TO]->(e)