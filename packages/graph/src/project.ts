import neo4j, { type ManagedTransaction } from "neo4j-driver";
import { canonicalJson, hashCanonical, type AuditEvent, type EventOf, type LedgerRecord } from "@auditgraph/core";

/** Properties hold JSON text where the value is structured: Neo4j properties cannot be maps. */
const json = (value: unknown): string => canonicalJson(value ?? null);

const base = (r: LedgerRecord) => ({
  traceId: r.event.traceId,
  tenantId: r.event.identity.user.tenantId,
  runId: r.event.runId,
  eventId: r.event.eventId,
  streamId: r.streamId,
  position: neo4j.int(r.position),
  recordedAt: r.recordedAt,
  occurredAt: r.event.occurredAt,
});

function ofType<T extends AuditEvent["type"]>(records: LedgerRecord[], ...types: T[]) {
  return records.filter((r): r is LedgerRecord & { event: EventOf<T> } => (types as string[]).includes(r.event.type));
}

const TRACES = `
UNWIND $rows AS r
MERGE (t:Trace {id: r.traceId}) ON CREATE SET t.tenantId = r.tenantId
MERGE (tn:Tenant {id: r.tenantId})
MERGE (u:User {tenantId: r.tenantId, id: r.userId})
MERGE (u)-[:MEMBER_OF]->(tn)
MERGE (a:Agent {id: r.agentId}) SET a.name = r.agentName
MERGE (av:AgentVersion {agentId: r.agentId, version: r.agentVersion}) ON CREATE SET av.name = r.agentName
MERGE (a)-[:HAS_VERSION]->(av)
MERGE (t)-[:REQUESTED_BY]->(u)
MERGE (t)-[:HANDLED_BY]->(av)
MERGE (a)-[:ACTED_ON_BEHALF_OF {traceId: r.traceId}]->(u)
FOREACH (_ IN CASE WHEN r.sessionId IS NULL THEN [] ELSE [1] END |
  MERGE (s:Session {tenantId: r.tenantId, id: r.sessionId})
  MERGE (t)-[:IN_SESSION]->(s))`;

const ROOT_START = `
UNWIND $rows AS r
MATCH (t:Trace {id: r.traceId})
SET t.name = r.name, t.input = r.input, t.startedAt = r.recordedAt, t.status = coalesce(t.status, 'running')`;

const ROOT_END = `
UNWIND $rows AS r
MATCH (t:Trace {id: r.traceId})
SET t.endedAt = r.recordedAt, t.status = r.status, t.output = r.output, t.error = r.error`;

const LLM_START = `
UNWIND $rows AS r
MATCH (t:Trace {id: r.traceId})
MERGE (c:LLMCall {id: r.runId})
SET c.traceId = r.traceId, c.tenantId = r.tenantId, c.startedAt = r.recordedAt,
    c.requestedProvider = r.provider, c.requestedModel = r.model, c.params = r.params,
    c.status = coalesce(c.status, 'running')
MERGE (c)-[:PART_OF]->(t)
MERGE (p:Prompt {id: r.eventId})
SET p.tenantId = r.tenantId, p.traceId = r.traceId, p.hash = r.promptHash, p.messages = r.messages,
    p.streamId = r.streamId, p.position = r.position, p.recordedAt = r.recordedAt
MERGE (p)-[:INPUT_TO]->(c)`;

const LLM_END = `
UNWIND $rows AS r
MATCH (t:Trace {id: r.traceId})
MERGE (c:LLMCall {id: r.runId})
SET c.traceId = r.traceId, c.tenantId = r.tenantId, c.endedAt = r.recordedAt, c.status = 'ok',
    c.inputTokens = r.inputTokens, c.outputTokens = r.outputTokens, c.totalTokens = r.totalTokens
MERGE (c)-[:PART_OF]->(t)
MERGE (m:ModelVersion {provider: r.provider, name: r.model, version: r.version})
MERGE (c)-[:USED_MODEL]->(m)
MERGE (o:Output {id: r.eventId})
SET o.tenantId = r.tenantId, o.traceId = r.traceId, o.text = r.text, o.toolCalls = r.toolCallsJson,
    o.streamId = r.streamId, o.position = r.position, o.recordedAt = r.recordedAt
MERGE (c)-[:GENERATED]->(o)
FOREACH (tc IN r.toolCalls |
  MERGE (x:ToolCall {traceId: r.traceId, callId: tc.callId})
  ON CREATE SET x.tenantId = r.tenantId, x.status = 'requested'
  SET x.name = tc.name, x.requestedArgs = tc.args
  MERGE (c)-[:REQUESTED]->(x))`;

// Steps first, then their order: two statements, so that NEXT never depends on row order.
const REASONING_STEPS = `
UNWIND $rows AS r
MATCH (c:LLMCall {id: r.runId})
UNWIND r.steps AS step
MERGE (s:ReasoningStep {id: step.id})
SET s.tenantId = r.tenantId, s.traceId = r.traceId, s.index = step.index, s.kind = step.kind,
    s.text = step.text, s.toolCall = step.toolCall
MERGE (s)-[:STEP_OF]->(c)
FOREACH (_ IN CASE WHEN step.index = 0 THEN [1] ELSE [] END | MERGE (c)-[:FIRST_STEP]->(s))
FOREACH (callId IN CASE WHEN step.callId IS NULL THEN [] ELSE [step.callId] END |
  MERGE (x:ToolCall {traceId: r.traceId, callId: callId})
  MERGE (s)-[:REQUESTS]->(x))`;

const REASONING_ORDER = `
UNWIND $rows AS r
UNWIND r.steps AS step
MATCH (prev:ReasoningStep {id: step.prevId}), (s:ReasoningStep {id: step.id})
MERGE (prev)-[:NEXT]->(s)`;

const LLM_ERROR = `
UNWIND $rows AS r
MATCH (t:Trace {id: r.traceId})
MERGE (c:LLMCall {id: r.runId})
SET c.traceId = r.traceId, c.tenantId = r.tenantId, c.endedAt = r.recordedAt, c.status = 'error', c.error = r.error
MERGE (c)-[:PART_OF]->(t)`;

const TOOL_START = `
UNWIND $rows AS r
MATCH (t:Trace {id: r.traceId})
MERGE (x:ToolCall {traceId: r.traceId, callId: r.callId})
ON CREATE SET x.tenantId = r.tenantId
SET x.runId = r.runId, x.name = r.name, x.input = r.input, x.startedAt = r.recordedAt,
    x.status = CASE WHEN x.status IN ['ok', 'error'] THEN x.status ELSE 'running' END
MERGE (x)-[:PART_OF]->(t)
MERGE (tool:Tool {name: r.name})
MERGE (x)-[:INVOKED]->(tool)`;

const TOOL_END = `
UNWIND $rows AS r
MATCH (t:Trace {id: r.traceId})
MERGE (x:ToolCall {traceId: r.traceId, callId: r.callId})
ON CREATE SET x.tenantId = r.tenantId
SET x.endedAt = r.recordedAt, x.status = r.status, x.output = r.output, x.error = r.error
MERGE (x)-[:PART_OF]->(t)`;

/** A tool run's key in the graph: the model's tool-call id when it has one, else the run id. */
const callIdOf = (r: LedgerRecord, toolCallId: string | undefined) => toolCallId ?? r.event.runId;

/**
 * Project ledger records into the graph in one write transaction. Every write MERGEs on ids,
 * so projecting the same records again (a redelivered job) changes nothing.
 */
export async function projectRecords(tx: ManagedTransaction, records: LedgerRecord[]): Promise<void> {
  const traces = new Map<string, Record<string, unknown>>();
  for (const r of records) {
    const { user, agent } = r.event.identity;
    if (!traces.has(r.event.traceId))
      traces.set(r.event.traceId, {
        traceId: r.event.traceId,
        tenantId: user.tenantId,
        userId: user.id,
        agentId: agent.id,
        agentName: agent.name,
        agentVersion: agent.version,
        sessionId: r.event.sessionId,
      });
  }
  const run = async (cypher: string, rows: unknown[]) => {
    if (rows.length > 0) await tx.run(cypher, { rows });
  };
  await run(TRACES, [...traces.values()]);

  const roots = records.filter((r) => r.event.parentRunId === null);
  await run(
    ROOT_START,
    ofType(roots, "chain.start").map((r) => ({ ...base(r), name: r.event.name ?? null, input: json(r.event.payload.inputs) })),
  );
  await run(
    ROOT_END,
    ofType(roots, "chain.end", "chain.error").map((r) => ({
      ...base(r),
      status: r.event.type === "chain.end" ? "ok" : "error",
      output: r.event.type === "chain.end" ? json(r.event.payload.outputs) : null,
      error: r.event.type === "chain.error" ? json(r.event.payload.error) : null,
    })),
  );
  await run(
    LLM_START,
    ofType(records, "llm.start").map((r) => ({
      ...base(r),
      provider: r.event.model.provider,
      model: r.event.model.name,
      params: json(r.event.model.params),
      // Hashed here, not in the agent: it is the same for every reader and costs the agent nothing.
      promptHash: hashCanonical(r.event.payload.messages),
      messages: json(r.event.payload.messages),
    })),
  );
  await run(
    LLM_END,
    ofType(records, "llm.end").map((r) => ({
      ...base(r),
      provider: r.event.model.provider,
      model: r.event.model.name,
      version: r.event.model.version ?? r.event.model.name,
      text: r.event.payload.output.text,
      toolCallsJson: json(r.event.payload.output.toolCalls),
      toolCalls: r.event.payload.output.toolCalls.map((tc, i) => ({
        callId: tc.id ?? `${r.event.runId}#${i}`,
        name: tc.name,
        args: json(tc.args),
      })),
      inputTokens: neo4j.int(r.event.usage?.inputTokens ?? 0),
      outputTokens: neo4j.int(r.event.usage?.outputTokens ?? 0),
      totalTokens: neo4j.int(r.event.usage?.totalTokens ?? 0),
    })),
  );
  const reasoning = ofType(records, "llm.end")
    .filter((r) => r.event.payload.reasoning?.length)
    .map((r) => ({
      ...base(r),
      steps: r.event.payload.reasoning!.map((step, i, all) => ({
        id: `${r.event.eventId}#${step.index}`,
        prevId: i > 0 ? `${r.event.eventId}#${all[i - 1]!.index}` : null,
        index: neo4j.int(step.index),
        kind: step.kind,
        text: step.text ?? null,
        toolCall: step.toolCall ? json(step.toolCall) : null,
        callId: step.toolCall ? (step.toolCall.id ?? null) : null,
      })),
    }));
  await run(REASONING_STEPS, reasoning);
  await run(REASONING_ORDER, reasoning);
  await run(LLM_ERROR, ofType(records, "llm.error").map((r) => ({ ...base(r), error: json(r.event.payload.error) })));
  await run(
    TOOL_START,
    ofType(records, "tool.start").map((r) => ({
      ...base(r),
      callId: callIdOf(r, r.event.payload.toolCallId),
      name: r.event.name ?? "unknown",
      input: json(r.event.payload.input),
    })),
  );
  await run(
    TOOL_END,
    ofType(records, "tool.end", "tool.error").map((r) => ({
      ...base(r),
      callId: callIdOf(r, r.event.payload.toolCallId),
      status: r.event.type === "tool.end" ? "ok" : "error",
      output: r.event.type === "tool.end" ? json(r.event.payload.output) : null,
      error: r.event.type === "tool.error" ? json(r.event.payload.error) : null,
    })),
  );
}
