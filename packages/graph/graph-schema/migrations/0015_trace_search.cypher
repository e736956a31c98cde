// Trace search (the console's trace explorer, `trace-search`): a tenant's traces newest first,
// paginated on (startedAt, id). The index serves the tenant's traces in start order, so a page is
// read from the index rather than by sorting every trace of the tenant.
CREATE INDEX trace_started IF NOT EXISTS FOR (n:Trace) ON (n.tenantId, n.startedAt);
