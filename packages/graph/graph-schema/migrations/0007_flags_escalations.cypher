// Policy flags and escalations as the worker and the escalation lifecycle project them (0005 has
// the keys of Policy, PolicyFlag and Escalation).
// A flag on a tool call finds its ToolCall by the tool's run.
CREATE INDEX tool_call_run IF NOT EXISTS FOR (n:ToolCall) ON (n.tenantId, n.runId);
// Each escalation transition is a node keyed by its event id: projecting it twice changes nothing.
CREATE CONSTRAINT escalation_transition_tenant_key IF NOT EXISTS FOR (n:EscalationTransition) REQUIRE (n.tenantId, n.id) IS UNIQUE;
// flag-rate buckets a tenant's flags by day; escalation-queue lists a tenant's escalations by state.
CREATE INDEX policy_flag_at IF NOT EXISTS FOR (n:PolicyFlag) ON (n.tenantId, n.at);
CREATE INDEX escalation_state IF NOT EXISTS FOR (n:Escalation) ON (n.tenantId, n.state);
// The versions of one policy.
CREATE INDEX policy_id_version IF NOT EXISTS FOR (n:Policy) ON (n.tenantId, n.policyId);
