// A tenant's escalations waiting for a reviewer (open and acknowledged, or the states asked for),
// most severe first, then oldest, each with the lineage of what it is about: the flagged node
// (an output, tool call, prompt or document), the model call behind it (the one that generated
// the output, asked for the tool call, or took the prompt), that call's prompt and model version,
// and the trace's user and agent version. Age is in seconds at $at. Escalations about replay
// runs or review records are left out unless $includeReplays.
MATCH (e:Escalation {tenantId: $tenantId})
WHERE e.state IN $states AND ($severity IS NULL OR e.severity = $severity)
  AND ($includeReplays OR NOT EXISTS { MATCH (x:Trace {tenantId: $tenantId, id: e.traceId}) WHERE x.kind IS NOT NULL })
WITH e, CASE e.severity WHEN 'critical' THEN 4 WHEN 'high' THEN 3 WHEN 'medium' THEN 2 WHEN 'low' THEN 1 ELSE 0 END AS rank
ORDER BY rank DESC, e.openedAt, e.id
LIMIT $limit
CALL (e) {
  OPTIONAL MATCH (f:PolicyFlag)-[:ESCALATED_TO]->(e)
  WITH f ORDER BY f.at, f.id LIMIT 1
  OPTIONAL MATCH (n)-[:FLAGGED]->(f)
  WITH f, n ORDER BY coalesce(n.id, n.callId) LIMIT 1
  OPTIONAL MATCH (n)<-[:GENERATED]-(byOutput:LLMCall) WHERE n:Output
  OPTIONAL MATCH (n)<-[:REQUESTED]-(byTool:LLMCall) WHERE n:ToolCall
  OPTIONAL MATCH (n)-[:INPUT_TO]->(byPrompt:LLMCall) WHERE n:Prompt
  OPTIONAL MATCH (n)-[:USED_BY]->(byDocument:LLMCall) WHERE n:RetrievedDocument
  WITH f, n, coalesce(byOutput, byTool, byPrompt, byDocument, CASE WHEN n:LLMCall THEN n END) AS c
  WITH f, n, c LIMIT 1
  OPTIONAL MATCH (p:Prompt)-[:INPUT_TO]->(c)
  OPTIONAL MATCH (c)-[:GENERATED]->(o:Output)
  OPTIONAL MATCH (c)-[:USED_MODEL]->(m:ModelVersion)
  RETURN f, n, c, p, o, m LIMIT 1
}
WITH e, rank, f, n, c, p, o, m
OPTIONAL MATCH (t:Trace {tenantId: e.tenantId, id: e.traceId})
OPTIONAL MATCH (t)-[:REQUESTED_BY]->(u:User)
OPTIONAL MATCH (t)-[:HANDLED_BY]->(av:AgentVersion)
RETURN e.id AS escalationId, e.state AS state, e.severity AS severity, e.policyId AS policyId, e.policyVersion AS policyVersion,
       e.reason AS reason, e.openedAt AS openedAt, e.updatedAt AS updatedAt, e.lastReviewer AS lastReviewer,
       duration.inSeconds(datetime(e.openedAt), datetime($at)).seconds AS ageSeconds,
       f.id AS flagId,
       CASE WHEN n IS NULL THEN null ELSE {label: labels(n)[0], id: coalesce(n.id, n.callId)} END AS concerns,
       CASE WHEN n:ToolCall THEN n.callId ELSE null END AS toolCallId,
       coalesce(CASE WHEN n:Output THEN n.id END, o.id) AS outputId,
       c.id AS llmCallId, p.id AS promptId,
       CASE WHEN m IS NULL THEN null ELSE {provider: m.provider, name: m.name, version: m.version} END AS model,
       e.traceId AS traceId, u.id AS userId,
       CASE WHEN av IS NULL THEN null ELSE {id: av.agentId, version: av.version} END AS agent
ORDER BY rank DESC, openedAt, escalationId
