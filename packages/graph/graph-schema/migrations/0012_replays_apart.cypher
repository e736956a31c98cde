// Replays apart from production. A Trace has a `kind`: null for production, 'replay' for a
// replay run (linked REPLAY_OF to the trace it replays), 'review' for the record of a replay's
// review (its trace id is the Review's id). Investigations, the session order and snapshots leave
// traces of a kind out by default. A review's operator is no User: the review record's trace keeps
// it as `operator`, the Review as `operator`, and neither is linked to a User.
// The graph projected before this migration: its replay runs and review records get their kind.
MATCH (t:Trace)-[:REPLAY_OF]->(:Trace) WHERE t.kind IS NULL
SET t.kind = 'replay';
MATCH (rv:Review)
MATCH (t:Trace {tenantId: rv.tenantId, id: rv.id})
SET t.kind = 'review';
// The operator a review record was projected as a user of: kept as a property, unlinked, and gone
// as a User when that was all it was (no trace of its own requested).
MATCH (t:Trace {kind: 'review'})-[req:REQUESTED_BY]->(u:User)
SET t.operator = coalesce(t.operator, u.id)
WITH t, req, u
OPTIONAL MATCH (rv:Review {tenantId: t.tenantId, id: t.id})
SET rv.operator = coalesce(rv.operator, u.id)
DELETE req;
MATCH (t:Trace {kind: 'review'})
MATCH (:Agent {tenantId: t.tenantId})-[acted:ACTED_ON_BEHALF_OF {traceId: t.id}]->(:User)
DELETE acted;
MATCH (t:Trace {kind: 'review'})
WITH DISTINCT t.tenantId AS tenantId, t.operator AS operator
MATCH (u:User {tenantId: tenantId, id: operator})
WHERE NOT EXISTS { (u)<-[:REQUESTED_BY]-(:Trace) } AND NOT EXISTS { (u)<-[:ACTED_ON_BEHALF_OF]-(:Agent) }
DETACH DELETE u;
// Sessions: replay runs and review records leave the order, which is made again without them.
MATCH (t:Trace)-[stale:NEXT_TRACE]-(:Trace) WHERE t.kind IS NOT NULL
WITH DISTINCT stale
DELETE stale;
MATCH (:Session)-[stale:FIRST_TRACE]->(t:Trace) WHERE t.kind IS NOT NULL
DELETE stale;
MATCH (s:Session)<-[:IN_SESSION]-(x:Trace) WHERE x.kind IS NOT NULL
WITH DISTINCT s
MATCH (s)<-[:IN_SESSION]-(t:Trace) WHERE t.kind IS NULL
WITH s, t ORDER BY t.firstEventId, t.id
WITH s, collect(t) AS ts
WITH ts, ts[0] AS first, s
MERGE (s)-[:FIRST_TRACE]->(first)
WITH ts
UNWIND range(0, size(ts) - 2) AS i
WITH ts[i] AS t, ts[i + 1] AS next
MERGE (t)-[:NEXT_TRACE]->(next);
