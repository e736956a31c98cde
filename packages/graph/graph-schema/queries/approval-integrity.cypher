// Tool runs that executed when they should not have, within one tenant and the window (the run's
// end, worker time): a run a hold applied to that ran without an allow decision ('no-decision':
// no decision, or the run ended before it), after a deny ('after-deny'), or after the hold's
// deadline when no decision came by then and the default is deny ('after-deadline'); and a run of
// a tool named in $highImpactTools with no start event ('no-start'). A run "executed" when its end
// is a tool.end or a tool.error other than the agent's own refusal. A hold applies to a run when
// a hold flag names the run; its escalation carries the deadline and default, its first
// transition with a decision (ledger order) is the decision, and a decision counts when it was
// recorded by the deadline (a later one finds the agent gone with the default). The worker's
// ApprovalIntegrity applies the same rule from the ledger. On a correct system: no rows.
CALL () {
  MATCH (x:ToolCall {tenantId: $tenantId})
  WHERE x.endedAt IS NOT NULL AND x.runId IS NOT NULL AND NOT coalesce(x.refused, false)
    AND ($since IS NULL OR x.endedAt >= $since) AND ($until IS NULL OR x.endedAt < $until)
  MATCH (x)-[:PART_OF]->(t:Trace)
  WHERE $includeReplays OR t.kind IS NULL
  MATCH (f:PolicyFlag {tenantId: $tenantId, runId: x.runId})-[:ESCALATED_TO]->(e:Escalation)
  WHERE f.action = 'hold' AND e.holdId IS NOT NULL
  WITH DISTINCT x, t, e
  CALL (e) {
    OPTIONAL MATCH (e)-[:TRANSITION]->(d:EscalationTransition) WHERE d.holdDecision IS NOT NULL
    WITH d ORDER BY d.position
    RETURN collect(d)[0] AS d
  }
  WITH x, t, e, d,
       d IS NOT NULL AND (e.deadline IS NULL OR datetime(d.at) <= datetime(e.deadline)) AS inTime
  WITH x, t, e, d,
       CASE
         WHEN inTime AND datetime(x.endedAt) <= datetime(d.at) THEN 'no-decision'
         WHEN inTime AND d.holdDecision = 'deny' THEN 'after-deny'
         WHEN inTime THEN null
         WHEN e.deadline IS NOT NULL AND datetime(x.endedAt) > datetime(e.deadline)
           THEN CASE WHEN e.defaultDecision = 'allow' THEN null ELSE 'after-deadline' END
         ELSE 'no-decision'
       END AS violation
  WHERE violation IS NOT NULL
  RETURN x, t, violation, e.holdId AS holdId, e.id AS escalationId, e.deadline AS deadline, e.defaultDecision AS defaultDecision,
         d.holdDecision AS decision, d.at AS decidedAt, d.reviewerId AS decidedBy
  UNION ALL
  MATCH (x:ToolCall {tenantId: $tenantId})
  WHERE x.endedAt IS NOT NULL AND x.runId IS NOT NULL AND x.startEventId IS NULL AND x.name IN $highImpactTools
    AND NOT coalesce(x.refused, false)
    AND ($since IS NULL OR x.endedAt >= $since) AND ($until IS NULL OR x.endedAt < $until)
  MATCH (x)-[:PART_OF]->(t:Trace)
  WHERE $includeReplays OR t.kind IS NULL
  RETURN x, t, 'no-start' AS violation, null AS holdId, null AS escalationId, null AS deadline, null AS defaultDecision,
         null AS decision, null AS decidedAt, null AS decidedBy
}
OPTIONAL MATCH (t)-[:REQUESTED_BY]->(u:User)
OPTIONAL MATCH (t)-[:HANDLED_BY]->(av:AgentVersion)
RETURN x.runId AS runId, x.traceId AS traceId, x.callId AS callId, x.name AS tool, x.status AS status,
       x.startedAt AS startedAt, x.endedAt AS endedAt, violation, holdId, escalationId, deadline, defaultDecision,
       decision, decidedAt, decidedBy, u.id AS userId,
       CASE WHEN av IS NULL THEN null ELSE {id: av.agentId, version: av.version} END AS agent
ORDER BY endedAt, runId, violation, holdId
LIMIT $limit
