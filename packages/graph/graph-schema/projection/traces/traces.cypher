
UNWIND $rows AS r
MERGE (tn:Tenant {id: r.tenantId}) ON CREATE SET tn.tenantId = r.tenantId
MERGE (t:Trace {tenantId: r.tenantId, id: r.traceId})
SET t.firstEventId = CASE WHEN t.firstEventId IS NULL OR r.firstEventId < t.firstEventId THEN r.firstEventId ELSE t.firstEventId END,
    t.startedAt = coalesce(t.startedAt, r.recordedAt),
    t.kind = coalesce(t.kind, r.kind)
SET t.operator = CASE WHEN t.kind = 'review' THEN coalesce(t.operator, r.userId) ELSE t.operator END
MERGE (a:Agent {tenantId: r.tenantId, id: r.agentId}) SET a.name = r.agentName
MERGE (av:AgentVersion {tenantId: r.tenantId, agentId: r.agentId, version: r.agentVersion}) ON CREATE SET av.name = r.agentName
MERGE (a)-[:HAS_VERSION]->(av)
MERGE (t)-[:HANDLED_BY]->(av)
FOREACH (_ IN CASE WHEN t.kind = 'review' THEN [] ELSE [1] END |
  MERGE (u:User {tenantId: r.tenantId, id: r.userId}) SET u.subject = r.subject
  MERGE (u)-[:MEMBER_OF]->(tn)
  MERGE (t)-[:REQUESTED_BY]->(u)
  MERGE (a)-[:ACTED_ON_BEHALF_OF {traceId: r.traceId}]->(u))
FOREACH (_ IN CASE WHEN r.sessionId IS NULL THEN [] ELSE [1] END |
  MERGE (s:Session {tenantId: r.tenantId, id: r.sessionId})
  MERGE (t)-[:IN_SESSION]->(s))