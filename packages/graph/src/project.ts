import neo4j, { type ManagedTransaction } from "neo4j-driver";
import {
  canonicalJson,
  hashCanonical,
  isErasure,
  subjectRef,
  type AuditEvent,
  type EventOf,
  type PlainRecord,
  type UserEvent,
} from "@auditgraph/core";

/** Properties hold JSON text where the value is structured: Neo4j properties cannot be maps. */
const json = (value: unknown): string => canonicalJson(value ?? null);

type UserRecord = PlainRecord & { event: UserEvent };

const base = (r: UserRecord) => ({
  traceId: r.event.traceId,
  tenantId: r.event.identity.user.tenantId,
  runId: r.event.runId,
  eventId: r.event.eventId,
  streamId: r.streamId,
  position: neo4j.int(r.position),
  recordedAt: r.recordedAt,
  occurredAt: r.event.occurredAt,
});

function ofType<T extends AuditEvent["type"]>(records: PlainRecord[], ...types: T[]) {
  return records.filter((r): r is PlainRecord & { event: EventOf<T> } => (types as string[]).includes(r.event.type));
}

const TRACES = `
UNWIND $rows AS r
MERGE (t:Trace {id: r.traceId}) ON CREATE SET t.tenantId = r.tenantId
MERGE (tn:Tenant {id: r.tenantId})
MERGE (u:User {tenantId: r.tenantId, id: r.userId}) SET u.subject = r.subject
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
const callIdOf = (r: UserRecord, toolCallId: string | undefined) => toolCallId ?? r.event.runId;

// Erasure: the payload text of every trace the subject requested goes, the structure stays (nodes,
// relationships, ids, times, token counts), so lineage and counts still answer. Each statement
// reaches its nodes from the subject's User, along the relationships the projection writes.
const ERASED_TRACES = `
UNWIND $rows AS r
MATCH (:User {tenantId: r.tenantId, subject: r.subject})<-[:REQUESTED_BY]-(t:Trace)
SET t.input = null, t.output = null, t.error = null, t.erased = true`;

const ERASED_CALLS = `
UNWIND $rows AS r
MATCH (:User {tenantId: r.tenantId, subject: r.subject})<-[:REQUESTED_BY]-(:Trace)<-[:PART_OF]-(c:LLMCall)
SET c.error = null, c.erased = true`;

// The prompt's hash goes too: over a short message list it is as good as the text to a guesser.
const ERASED_PROMPTS = `
UNWIND $rows AS r
MATCH (:User {tenantId: r.tenantId, subject: r.subject})<-[:REQUESTED_BY]-(:Trace)<-[:PART_OF]-(:LLMCall)<-[:INPUT_TO]-(p:Prompt)
SET p.messages = null, p.hash = null, p.erased = true`;

const ERASED_OUTPUTS = `
UNWIND $rows AS r
MATCH (:User {tenantId: r.tenantId, subject: r.subject})<-[:REQUESTED_BY]-(:Trace)<-[:PART_OF]-(:LLMCall)-[:GENERATED]->(o:Output)
SET o.text = null, o.toolCalls = null, o.erased = true`;

const ERASED_STEPS = `
UNWIND $rows AS r
MATCH (:User {tenantId: r.tenantId, subject: r.subject})<-[:REQUESTED_BY]-(:Trace)<-[:PART_OF]-(:LLMCall)<-[:STEP_OF]-(s:ReasoningStep)
SET s.text = null, s.toolCall = null, s.erased = true`;

const ERASED_TOOL_RUNS = `
UNWIND $rows AS r
MATCH (:User {tenantId: r.tenantId, subject: r.subject})<-[:REQUESTED_BY]-(:Trace)<-[:PART_OF]-(x:ToolCall)
SET x.requestedArgs = null, x.input = null, x.output = null, x.error = null, x.erased = true`;

// A tool call the model asked for but that never ran has no PART_OF, only its LLM call's REQUESTED.
const ERASED_TOOL_REQUESTS = `
UNWIND $rows AS r
MATCH (:User {tenantId: r.tenantId, subject: r.subject})<-[:REQUESTED_BY]-(:Trace)<-[:PART_OF]-(:LLMCall)-[:REQUESTED]->(x:ToolCall)
SET x.requestedArgs = null, x.input = null, x.output = null, x.error = null, x.erased = true`;

// Last, since the statements above find the subject's nodes through it. The user id is the
// personal datum of the node: the subject ref takes its place (a second erasure of a returning
// user, whose first node already holds the ref, adds the destroyed key's id to stay unique).
const ERASED_USERS = `
UNWIND $rows AS r
MATCH (u:User {tenantId: r.tenantId, subject: r.subject})
OPTIONAL MATCH (taken:User {tenantId: r.tenantId, id: r.subject})
SET u.id = CASE WHEN taken IS NULL OR taken = u THEN r.subject ELSE r.subject + '/' + r.keyId END,
    u.erased = true, u.erasedAt = coalesce(u.erasedAt, r.erasedAt), u.erasedKeyId = coalesce(u.erasedKeyId, r.keyId)`;

/**
 * Project ledger records into the graph in one write transaction. Every write MERGEs on ids,
 * so projecting the same records again (a redelivered job) changes nothing.
 */
export async function projectRecords(tx: ManagedTransaction, all: PlainRecord[]): Promise<void> {
  const records = all.filter((r): r is UserRecord => !isErasure(r.event));
  const traces = new Map<string, Record<string, unknown>>();
  for (const r of records) {
    const { user, agent } = r.event.identity;
    if (!traces.has(r.event.traceId))
      traces.set(r.event.traceId, {
        traceId: r.event.traceId,
        tenantId: user.tenantId,
        userId: user.id,
        subject: subjectRef(user.tenantId, user.id),
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

  // After this batch's own events, so that what a batch projects before its erasure is erased too.
  const erasures = ofType(all, "subject.erased").map((r) => ({
    tenantId: r.event.tenantId,
    subject: r.event.subject,
    keyId: r.event.payload.keyId,
    erasedAt: r.event.payload.erasedAt,
  }));
  for (const cypher of [ERASED_TRACES, ERASED_CALLS, ERASED_PROMPTS, ERASED_OUTPUTS, ERASED_STEPS, ERASED_TOOL_RUNS, ERASED_TOOL_REQUESTS, ERASED_USERS])
    await run(cypher, erasures);
}
