
UNWIND $rows AS r
MERGE (a:Access {tenantId: r.tenantId, id: r.eventId})
SET a += r.props
WITH r, a
CALL (r, a) {
  WITH r, a WHERE r.props.traceId IS NOT NULL
  MERGE (t:Trace {tenantId: r.tenantId, id: r.props.traceId})
  MERGE (a)-[:READ]->(t)
}
CALL (r, a) {
  WITH r, a WHERE r.props.escalationId IS NOT NULL
  MATCH (e:Escalation {tenantId: r.tenantId, id: r.props.escalationId})
  MERGE (a)-[:READ]->(e)
}