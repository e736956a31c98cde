// One output traced back to everything it came from, within one tenant: its model call, prompt
// and model version; the reasoning steps and tool calls of its trace up to it (capture order:
// event ids are UUIDv7, the producer's time and then a counter); the documents its call used;
// its trace, session, user and agent; the agent and model versions a deployment had made live
// when it was recorded (the latest deployment before it, in worker time then ledger position);
// and the policy flags on any of these, with their escalations.
// An output of a replay run is found only with $includeReplays.
MATCH (o:Output {tenantId: $tenantId, id: $outputId})<-[:GENERATED]-(c:LLMCall)-[:PART_OF]->(t:Trace)
WHERE $includeReplays OR t.kind IS NULL
OPTIONAL MATCH (p:Prompt)-[:INPUT_TO]->(c)
OPTIONAL MATCH (c)-[:USED_MODEL]->(m:ModelVersion)
OPTIONAL MATCH (t)-[:REQUESTED_BY]->(u:User)
OPTIONAL MATCH (t)-[:HANDLED_BY]->(av:AgentVersion)
OPTIONAL MATCH (a:Agent)-[:HAS_VERSION]->(av)
OPTIONAL MATCH (t)-[:IN_SESSION]->(s:Session)
CALL (o, t) {
  OPTIONAL MATCH (t)<-[:PART_OF]-(sc:LLMCall)-[:GENERATED]->(so:Output) WHERE so.id <= o.id
  OPTIONAL MATCH (step:ReasoningStep)-[:STEP_OF]->(sc)
  WITH sc, so, step ORDER BY so.id, step.index
  RETURN collect(step {.index, .kind, .text, .toolCall, llmCallId: sc.id}) AS reasoningSteps, collect(step) AS stepNodes
}
// A tool call belongs to the lineage when an output up to this one asked for it, or, asked for
// by none (a tool a chain ran itself), when it started before this output. Each run is its own
// ToolCall (a call id can be asked for again in a later turn, or run twice), in the order it ran.
CALL (o, t) {
  OPTIONAL MATCH (x:ToolCall {tenantId: t.tenantId, traceId: t.id})
  OPTIONAL MATCH (req:LLMCall)-[:REQUESTED]->(x)
  OPTIONAL MATCH (req)-[:GENERATED]->(ro:Output)
  WITH x, req, ro WHERE x IS NOT NULL AND (ro.id <= o.id OR (ro IS NULL AND x.startEventId < o.id))
  WITH x, req, coalesce(ro.id, x.startEventId) AS seen ORDER BY seen, x.startEventId, x.callId
  RETURN collect(x {.callId, .name, .requestedArgs, .input, .output, .error, .status, .startedAt, .endedAt, requestedBy: req.id}) AS toolCalls,
         collect(x) AS toolCallNodes
}
CALL (c, p) {
  OPTIONAL MATCH (d:RetrievedDocument)-[:USED_BY]->(c)
  CALL (d, c, p) {
    OPTIONAL MATCH (ret:Retrieval)-[rel:RETURNED]->(d)
    WHERE ret.tenantId = c.tenantId AND ret.traceId = c.traceId AND (p IS NULL OR ret.endEventId < p.id)
    OPTIONAL MATCH (x:ToolCall)-[:CALLED]->(ret)
    WITH ret, rel, x ORDER BY ret.endEventId, rel.rank
    RETURN collect(CASE WHEN ret IS NULL THEN null ELSE
             {retrievalId: ret.id, retriever: ret.name, query: ret.query, rank: rel.rank, contentHash: rel.contentHash, toolCallId: x.callId} END) AS retrievedBy,
           min(ret.endEventId) AS firstSeen
  }
  WITH d, retrievedBy, firstSeen ORDER BY firstSeen, retrievedBy[0].rank, d.id
  RETURN collect(d {.id, .sourceId, .content, .metadata, .contentHash, retrievedBy: retrievedBy}) AS documents, collect(d) AS documentNodes
}
CALL (o, av) {
  OPTIONAL MATCH (d:Deployment {tenantId: o.tenantId, agentId: av.agentId, environment: $environment})
  WHERE d.target = 'agent' AND (d.at < o.recordedAt OR (d.at = o.recordedAt AND d.position < o.position))
  WITH d ORDER BY d.at DESC, d.position DESC LIMIT 1
  RETURN d {.id, .version, .action, .at, .environment, .previousVersion, .reason, .by} AS liveAgentVersion
}
CALL (o, m) {
  OPTIONAL MATCH (d:Deployment {tenantId: o.tenantId, provider: m.provider, model: m.name, environment: $environment})
  WHERE d.target = 'model' AND (d.at < o.recordedAt OR (d.at = o.recordedAt AND d.position < o.position))
  WITH d ORDER BY d.at DESC, d.position DESC LIMIT 1
  RETURN d {.id, .version, .action, .at, .environment, .previousVersion, .reason, .by} AS liveModelVersion
}
CALL (o, c, p, stepNodes, toolCallNodes, documentNodes) {
  UNWIND [o, c, p] + stepNodes + toolCallNodes + documentNodes AS n
  WITH DISTINCT n WHERE n IS NOT NULL
  MATCH (n)-[:FLAGGED]->(f:PolicyFlag)
  OPTIONAL MATCH (f)-[:OF_POLICY]->(pol:Policy)
  WITH f, pol, n ORDER BY f.at, f.id
  RETURN collect(f {.id, .severity, .action, .outcome, .decision, .reason, .at, .policySetHash,
                    policyId: coalesce(pol.policyId, f.policyId), policyVersion: coalesce(pol.version, f.policyVersion),
                    onLabel: labels(n)[0], onId: coalesce(n.id, n.callId)}) AS flags,
         collect(f) AS flagNodes
}
CALL (flagNodes) {
  UNWIND flagNodes AS f
  MATCH (f)-[:ESCALATED_TO]->(e:Escalation)
  WITH DISTINCT e, f ORDER BY e.openedAt, e.id
  RETURN collect(e {.id, .state, .severity, .openedAt, .updatedAt, .lastReviewer, flagId: f.id}) AS escalations
}
RETURN
  o {.id, .text, .toolCalls, .recordedAt, .position} AS output,
  c {.id, .status, .error, .requestedProvider, .requestedModel, .params, .inputTokens, .outputTokens, .totalTokens, .startedAt, .endedAt} AS llmCall,
  p {.id, .hash, .templateHash, .messages} AS prompt,
  m {.provider, .name, .version} AS model,
  reasoningSteps,
  toolCalls,
  documents,
  t {.id, .name, .status, .startedAt, .endedAt} AS trace,
  s {.id} AS session,
  u {.id, .erased} AS user,
  CASE WHEN av IS NULL THEN null ELSE {id: av.agentId, name: coalesce(a.name, av.name), version: av.version} END AS agent,
  liveAgentVersion,
  liveModelVersion,
  flags,
  escalations
