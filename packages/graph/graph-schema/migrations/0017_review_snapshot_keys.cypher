// Reviews and the snapshots they review are MERGEd by (tenantId, id) (projection/traces/reviews.cypher):
// without an index each MERGE read every Review and Snapshot node. Indexes, not uniqueness
// constraints: a store projected before this one may hold a duplicate, and a constraint would refuse it.
CREATE INDEX review_key IF NOT EXISTS FOR (n:Review) ON (n.tenantId, n.id);
CREATE INDEX snapshot_key IF NOT EXISTS FOR (n:Snapshot) ON (n.tenantId, n.id);
