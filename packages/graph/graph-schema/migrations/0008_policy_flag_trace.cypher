// blast-radius counts the flags raised in each trace it reports.
CREATE INDEX policy_flag_trace IF NOT EXISTS FOR (n:PolicyFlag) ON (n.tenantId, n.traceId);
