
UNWIND $rows AS r
MATCH (e:Escalation {tenantId: r.tenantId, id: r.escalationId})
WITH r, e WHERE e.state = r.props.from AND coalesce(e.statePosition, -1) < r.props.position
SET e.state = r.props.to, e.statePosition = r.props.position, e.updatedAt = r.props.at, e.lastReviewer = r.props.reviewerId
WITH r
MATCH (x:EscalationTransition {tenantId: r.tenantId, id: r.id})
SET x.applied = true