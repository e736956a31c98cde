
UNWIND $rows AS r
MERGE (tn:Tenant {id: r.tenantId}) ON CREATE SET tn.tenantId = r.tenantId
MERGE (t:Trace {tenantId: r.tenantId, id: r.traceId})
SET t.firstEventId = CASE WHEN t.firstEventId IS NULL OR r.firstEventId < t.firstEventId THEN r.firstEventId ELSE t.firstEventId END,
    t.startedAt = coalesce(t.startedAt, r.recordedAt),
    t.kind = coalesce(t.kind, r.kind)
SET t.operator = CASE WHEN t.kind = 'review' THEN coalesce(t.operator, r.userId) ELSE t.operator END
// The trace's root run (its own start and end, when this batch holds them): the last of each in
// the batch, start before end, as two statements of their own would leave it.
FOREACH (root IN CASE WHEN r.rootStart IS NULL THEN [] ELSE [r.rootStart] END |
  SET t.name = root.name, t.input = root.input, t.startedAt = root.recordedAt, t.status = coalesce(t.status, 'running'))
FOREACH (root IN CASE WHEN r.rootEnd IS NULL THEN [] ELSE [r.rootEnd] END |
  SET t.endedAt = root.recordedAt, t.status = root.status, t.output = root.output, t.error = root.error)
MERGE (a:Agent {tenantId: r.tenantId, id: r.agentId}) SET a.name = r.agentName
MERGE (av:AgentVersion {tenantId: r.tenantId, agentId: r.agentId, version: r.agentVersion}) ON CREATE SET av.name = r.agentName
MERGE (a)-[:HAS_VERSION]->(av)
MERGE (t)-[:HANDLED_BY]->(av)
WITH r, tn, t, a
CALL (r, tn, t, a) {
  WITH r, tn, t, a WHERE t.kind IS NULL OR t.kind <> 'review'
  MERGE (u:User {tenantId: r.tenantId, id: r.userId}) SET u.subject = r.subject
  MERGE (u)-[:MEMBER_OF]->(tn)
  MERGE (t)-[:REQUESTED_BY]->(u)
  // The trace's ACTED_ON_BEHALF_OF, found by its trace id (index acted_on_behalf_trace), not by
  // walking the agent's and the user's relationships, which grow with the user's traces. A check
  // then CREATE is what MERGE does: the SET on t above holds the trace's write lock until commit,
  // and only this statement writes a trace's link, so two transactions never both find it missing.
  WITH r, a, u
  WHERE NOT EXISTS { MATCH ()-[acted:ACTED_ON_BEHALF_OF {traceId: r.traceId}]->() WHERE startNode(acted) = a AND endNode(acted) = u }
  CREATE (a)-[:ACTED_ON_BEHALF_OF {traceId: r.traceId}]->(u)
}
WITH r, t
CALL (r, t) {
  WITH r, t WHERE r.sessionId IS NOT NULL
  MERGE (s:Session {tenantId: r.tenantId, id: r.sessionId})
  MERGE (t)-[:IN_SESSION]->(s)
}
