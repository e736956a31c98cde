// Access events (issue 15): who read or decided what through the console, when and from where.
// Each is an (:Access) node keyed by its event id within its tenant, so projecting it twice
// changes nothing; (:Access)-[:READ]->(:Trace) for the trace it read, -[:READ]->(:Escalation)
// for the escalation. `trace-readers` walks READ from the trace; `data-readers` also finds the
// accesses that name the audited user (`userId`, the subject ref once she is erased).
CREATE CONSTRAINT access_tenant_key IF NOT EXISTS FOR (n:Access) REQUIRE (n.tenantId, n.id) IS UNIQUE;
CREATE INDEX access_user IF NOT EXISTS FOR (n:Access) ON (n.tenantId, n.userId);
