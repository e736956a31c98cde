// Each tool run is a ToolCall of its own, keyed by its run (tenantId, runId): providers reuse
// tool-call ids across turns, so (trace, call id) merged a failed run and a later successful one
// into one node. A model's request that no run answers is a ToolCall of status 'requested' keyed
// by its request (tenantId, requestedBy: the LLM call's id, callId). An Output lists the call ids
// it asks for (toolCallIds, with toolCallNames and toolCallArgs at the same places), and a
// ReasoningStep its call id, so that a run is linked to the latest LLM call before it that asked.
// The index on (tenantId, runId) gives way to the constraint over the same properties.
DROP CONSTRAINT tool_call_tenant_key IF EXISTS;
DROP INDEX tool_call_run IF EXISTS;
CREATE CONSTRAINT tool_call_run_key IF NOT EXISTS FOR (n:ToolCall) REQUIRE (n.tenantId, n.runId) IS UNIQUE;
CREATE CONSTRAINT tool_call_request_key IF NOT EXISTS FOR (n:ToolCall) REQUIRE (n.tenantId, n.requestedBy, n.callId) IS UNIQUE;
CREATE INDEX tool_call_call_id IF NOT EXISTS FOR (n:ToolCall) ON (n.tenantId, n.traceId, n.callId);
// The graph projected before this migration, brought to the new keys as far as it holds them.
// Runs that shared a call id in one trace were already one node: only `rebuild-graph` (from the
// ledger, which kept every event) gives them back as two.
MATCH (c:LLMCall)-[:GENERATED]->(o:Output) WHERE o.toolCallIds IS NULL
OPTIONAL MATCH (c)-[:REQUESTED]->(x:ToolCall)
WITH o, collect(x) AS xs
SET o.toolCallIds = [x IN xs | x.callId], o.toolCallNames = [x IN xs | coalesce(x.name, '')],
    o.toolCallArgs = CASE WHEN o.erased THEN null ELSE [x IN xs | coalesce(x.requestedArgs, 'null')] END;
MATCH (s:ReasoningStep)-[:REQUESTS]->(x:ToolCall) WHERE s.callId IS NULL
SET s.callId = x.callId;
// A request that never ran becomes one 'requested' node per LLM call that asked for it.
MATCH (c:LLMCall)-[:REQUESTED]->(x:ToolCall) WHERE x.runId IS NULL AND x.requestedBy IS NULL
MERGE (p:ToolCall {tenantId: x.tenantId, requestedBy: c.id, callId: x.callId})
SET p.traceId = x.traceId, p.status = 'requested', p.name = x.name, p.requestedArgs = x.requestedArgs, p.erased = x.erased
MERGE (c)-[:REQUESTED]->(p)
WITH c, x, p
CALL (c, x, p) {
  MATCH (s:ReasoningStep)-[:STEP_OF]->(c) WHERE EXISTS { (s)-[:REQUESTS]->(x) }
  MERGE (s)-[:REQUESTS]->(p)
};
MATCH (x:ToolCall) WHERE x.runId IS NULL AND x.requestedBy IS NULL
DETACH DELETE x;
// A run asked for by several LLM calls keeps only its asker: the latest before it.
MATCH (x:ToolCall) WHERE x.runId IS NOT NULL AND COUNT { (:LLMCall)-[:REQUESTED]->(x) } > 1
MATCH (c:LLMCall)-[rel:REQUESTED]->(x)
OPTIONAL MATCH (c)-[:GENERATED]->(o:Output)
WITH x, rel, o ORDER BY CASE WHEN o.id < coalesce(x.startEventId, x.endEventId) THEN 0 ELSE 1 END, o.id DESC
WITH x, collect(rel) AS rels
FOREACH (stale IN rels[1..] | DELETE stale);
MATCH (s:ReasoningStep)-[stale:REQUESTS]->(x:ToolCall)
WHERE x.runId IS NOT NULL AND NOT EXISTS { (s)-[:STEP_OF]->(:LLMCall)-[:REQUESTED]->(x) }
DELETE stale;
