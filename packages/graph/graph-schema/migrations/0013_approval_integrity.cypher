// Approval integrity (issue 14, point 9): the `approval-integrity` investigation looks up a tool
// run's hold flags by (tenantId, runId) and a tenant's tool runs by when they ended. A ToolCall
// projected from its end keeps the end's `name` (a run whose start never came still names its
// tool) and `refused`: true when its `tool.error` is the agent's own refusal (a block or a denied
// hold: the call never ran), false for any other end.
CREATE INDEX policy_flag_run IF NOT EXISTS FOR (n:PolicyFlag) ON (n.tenantId, n.runId);
CREATE INDEX tool_call_ended IF NOT EXISTS FOR (n:ToolCall) ON (n.tenantId, n.endedAt);
// The graph projected before this migration: `refused` from the stored error (canonical JSON, so
// `name` is its last member). Erased runs lost their error: only `rebuild-graph` tells those, and
// the `name` of runs that had no start, from the ledger.
MATCH (x:ToolCall) WHERE x.endEventId IS NOT NULL AND x.refused IS NULL
SET x.refused = coalesce(x.status = 'error' AND x.error ENDS WITH '"name":"PolicyRefusal"}', false);
