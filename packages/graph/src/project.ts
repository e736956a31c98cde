import neo4j, { type ManagedTransaction, type QueryResult } from "neo4j-driver";
import {
  DEFAULT_ENVIRONMENT,
  canonicalJson,
  hashCanonical,
  isSystemEvent,
  sha256Hex,
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
  parentRunId: r.event.parentRunId,
  eventId: r.event.eventId,
  streamId: r.streamId,
  position: neo4j.int(r.position),
  recordedAt: r.recordedAt,
  occurredAt: r.event.occurredAt,
});

function ofType<T extends AuditEvent["type"]>(records: PlainRecord[], ...types: T[]) {
  return records.filter((r): r is PlainRecord & { event: EventOf<T> } => (types as string[]).includes(r.event.type));
}

// Every node is keyed within its tenant, (tenantId, id) or (tenantId, ...its natural key): ids
// come from the agent process, so one tenant's ids can never reach another tenant's nodes, and
// every query is scoped by starting from the tenant's key. Agents, models and tools are nodes
// per tenant for the same reason (see graph-schema/README.md).

// firstEventId: the trace's smallest event id. Event ids are UUIDv7 (the producer's time, then
// a counter monotonic within its process), so this is the trace's first captured event, which
// orders the traces of a session; the worker's recordedAt is one per batch and cannot.
const TRACES = `
UNWIND $rows AS r
MERGE (tn:Tenant {id: r.tenantId}) ON CREATE SET tn.tenantId = r.tenantId
MERGE (t:Trace {tenantId: r.tenantId, id: r.traceId})
SET t.firstEventId = CASE WHEN t.firstEventId IS NULL OR r.firstEventId < t.firstEventId THEN r.firstEventId ELSE t.firstEventId END,
    t.startedAt = coalesce(t.startedAt, r.recordedAt)
MERGE (u:User {tenantId: r.tenantId, id: r.userId}) SET u.subject = r.subject
MERGE (u)-[:MEMBER_OF]->(tn)
MERGE (a:Agent {tenantId: r.tenantId, id: r.agentId}) SET a.name = r.agentName
MERGE (av:AgentVersion {tenantId: r.tenantId, agentId: r.agentId, version: r.agentVersion}) ON CREATE SET av.name = r.agentName
MERGE (a)-[:HAS_VERSION]->(av)
MERGE (t)-[:REQUESTED_BY]->(u)
MERGE (t)-[:HANDLED_BY]->(av)
MERGE (a)-[:ACTED_ON_BEHALF_OF {traceId: r.traceId}]->(u)
FOREACH (_ IN CASE WHEN r.sessionId IS NULL THEN [] ELSE [1] END |
  MERGE (s:Session {tenantId: r.tenantId, id: r.sessionId})
  MERGE (t)-[:IN_SESSION]->(s))`;

// A replay run's events carry the tag `auditgraph:replay-of:<original trace id>` (@auditgraph/replay):
// the original may be projected later or never (another tenant's snapshot never is), so it is merged.
const REPLAY_TAG_PREFIX = "auditgraph:replay-of:";
const REPLAY_OF = `
UNWIND $rows AS r
MATCH (t:Trace {tenantId: r.tenantId, id: r.traceId})
MERGE (o:Trace {tenantId: r.tenantId, id: r.originalTraceId})
MERGE (t)-[:REPLAY_OF]->(o)`;

// A replay review (@auditgraph/replay appends it as a `custom` event named `auditgraph.review`):
// the snapshot, the versions compared and the counts, for `compare-agent-versions`.
const REVIEW_EVENT_NAME = "auditgraph.review";
// Anyone can send a custom event of that name: one without the keys MERGE needs is left as a
// plain event rather than failing the whole batch's projection on a null key.
const isReviewData = (data: unknown): boolean => {
  const d = data as Record<string, unknown> | null;
  const text = (k: string) => typeof d?.[k] === "string" && (d[k] as string).length > 0;
  return typeof d === "object" && d !== null && text("reviewId") && text("snapshotId") && text("agentId") && text("candidateVersion") &&
    Array.isArray(d.baselineVersions) && d.baselineVersions.every((v) => typeof v === "string" && v.length > 0);
};
const REVIEWS = `
UNWIND $rows AS r
MERGE (rv:Review {tenantId: r.tenantId, id: r.reviewId})
SET rv.eventId = r.eventId, rv.at = r.recordedAt, rv.traces = r.traces, rv.outputMatchRate = r.outputMatchRate,
    rv.trajectoryMatchRate = r.trajectoryMatchRate, rv.divergences = r.divergences, rv.errors = r.errors,
    rv.tokensOriginal = r.tokensOriginal, rv.tokensCandidate = r.tokensCandidate, rv.gatePassed = r.gatePassed
MERGE (s:Snapshot {tenantId: r.tenantId, id: r.snapshotId})
MERGE (rv)-[:OF_SNAPSHOT]->(s)
MERGE (c:AgentVersion {tenantId: r.tenantId, agentId: r.agentId, version: r.candidateVersion})
MERGE (rv)-[:CANDIDATE]->(c)
FOREACH (v IN r.baselineVersions |
  MERGE (b:AgentVersion {tenantId: r.tenantId, agentId: r.agentId, version: v})
  MERGE (rv)-[:BASELINE]->(b))`;

// The session's traces in order, recomputed whole for each session a batch touches, so a trace
// projected late (a retried job) still lands in its place: stale FIRST_TRACE / NEXT_TRACE go,
// the right ones are merged. The write to the session comes first and locks it, so two batches
// of one session order it one after the other, each seeing the other's traces.
const SESSION_ORDER = `
UNWIND $rows AS r
MATCH (s:Session {tenantId: r.tenantId, id: r.sessionId})
SET s.lastActivityAt = CASE WHEN s.lastActivityAt IS NULL OR s.lastActivityAt < r.recordedAt THEN r.recordedAt ELSE s.lastActivityAt END
WITH s
MATCH (s)<-[:IN_SESSION]-(t:Trace)
WITH s, t ORDER BY t.firstEventId, t.id
WITH s, collect(t)[0] AS first
OPTIONAL MATCH (s)-[stale:FIRST_TRACE]->(other) WHERE other <> first
DELETE stale
WITH DISTINCT s, first
MERGE (s)-[:FIRST_TRACE]->(first)`;

const SESSION_NEXT = `
UNWIND $rows AS r
MATCH (s:Session {tenantId: r.tenantId, id: r.sessionId})<-[:IN_SESSION]-(t:Trace)
WITH s, t ORDER BY t.firstEventId, t.id
WITH s, collect(t) AS ts
UNWIND range(0, size(ts) - 1) AS i
WITH ts[i] AS t, ts[i + 1] AS next
OPTIONAL MATCH (t)-[stale:NEXT_TRACE]->(other) WHERE next IS NULL OR other <> next
DELETE stale
WITH DISTINCT t, next WHERE next IS NOT NULL
MERGE (t)-[:NEXT_TRACE]->(next)`;

const ROOT_START = `
UNWIND $rows AS r
MATCH (t:Trace {tenantId: r.tenantId, id: r.traceId})
SET t.name = r.name, t.input = r.input, t.startedAt = r.recordedAt, t.status = coalesce(t.status, 'running')`;

const ROOT_END = `
UNWIND $rows AS r
MATCH (t:Trace {tenantId: r.tenantId, id: r.traceId})
SET t.endedAt = r.recordedAt, t.status = r.status, t.output = r.output, t.error = r.error`;

// A model call that starts after a retrieval of its trace ended may have the retrieved documents
// in its context (see RETRIEVAL_USED_BY for the rule); linked from both sides, so that the order
// the two are projected in does not matter.
const LLM_START = `
UNWIND $rows AS r
MATCH (t:Trace {tenantId: r.tenantId, id: r.traceId})
MERGE (c:LLMCall {tenantId: r.tenantId, id: r.runId})
SET c.traceId = r.traceId, c.startedAt = r.recordedAt,
    c.requestedProvider = r.provider, c.requestedModel = r.model, c.params = r.params,
    c.status = coalesce(c.status, 'running')
MERGE (c)-[:PART_OF]->(t)
MERGE (p:Prompt {tenantId: r.tenantId, id: r.eventId})
SET p.traceId = r.traceId, p.hash = r.promptHash, p.messages = r.messages,
    p.templateHash = r.templateHash, p.streamId = r.streamId, p.position = r.position, p.recordedAt = r.recordedAt
MERGE (p)-[:INPUT_TO]->(c)
WITH r, t, c
CALL (r, t, c) {
  MATCH (t)<-[:PART_OF]-(ret:Retrieval)-[:RETURNED]->(d:RetrievedDocument)
  WHERE ret.endEventId < r.eventId
  MERGE (d)-[:USED_BY]->(c)
}`;

const LLM_END = `
UNWIND $rows AS r
MATCH (t:Trace {tenantId: r.tenantId, id: r.traceId})
MERGE (c:LLMCall {tenantId: r.tenantId, id: r.runId})
SET c.traceId = r.traceId, c.endedAt = r.recordedAt, c.status = 'ok',
    c.inputTokens = r.inputTokens, c.outputTokens = r.outputTokens, c.totalTokens = r.totalTokens,
    c.costCurrency = r.costCurrency, c.costTotal = r.costTotal
MERGE (c)-[:PART_OF]->(t)
MERGE (m:ModelVersion {tenantId: r.tenantId, provider: r.provider, name: r.model, version: r.version})
MERGE (c)-[:USED_MODEL]->(m)
MERGE (o:Output {tenantId: r.tenantId, id: r.eventId})
SET o.traceId = r.traceId, o.text = r.text, o.toolCalls = r.toolCallsJson,
    o.streamId = r.streamId, o.position = r.position, o.recordedAt = r.recordedAt
MERGE (c)-[:GENERATED]->(o)
FOREACH (tc IN r.toolCalls |
  MERGE (x:ToolCall {tenantId: r.tenantId, traceId: r.traceId, callId: tc.callId})
  ON CREATE SET x.status = 'requested'
  SET x.name = tc.name, x.requestedArgs = tc.args
  MERGE (c)-[:REQUESTED]->(x))`;

// Steps first, then their order: two statements, so that NEXT never depends on row order.
const REASONING_STEPS = `
UNWIND $rows AS r
MATCH (c:LLMCall {tenantId: r.tenantId, id: r.runId})
UNWIND r.steps AS step
MERGE (s:ReasoningStep {tenantId: r.tenantId, id: step.id})
SET s.traceId = r.traceId, s.index = step.index, s.kind = step.kind,
    s.text = step.text, s.toolCall = step.toolCall
MERGE (s)-[:STEP_OF]->(c)
FOREACH (_ IN CASE WHEN step.index = 0 THEN [1] ELSE [] END | MERGE (c)-[:FIRST_STEP]->(s))
FOREACH (callId IN CASE WHEN step.callId IS NULL THEN [] ELSE [step.callId] END |
  MERGE (x:ToolCall {tenantId: r.tenantId, traceId: r.traceId, callId: callId})
  ON CREATE SET x.status = 'requested'
  MERGE (s)-[:REQUESTS]->(x))`;

const REASONING_ORDER = `
UNWIND $rows AS r
UNWIND r.steps AS step
MATCH (prev:ReasoningStep {tenantId: r.tenantId, id: step.prevId}), (s:ReasoningStep {tenantId: r.tenantId, id: step.id})
MERGE (prev)-[:NEXT]->(s)`;

const LLM_ERROR = `
UNWIND $rows AS r
MATCH (t:Trace {tenantId: r.tenantId, id: r.traceId})
MERGE (c:LLMCall {tenantId: r.tenantId, id: r.runId})
SET c.traceId = r.traceId, c.endedAt = r.recordedAt, c.status = 'error', c.error = r.error
MERGE (c)-[:PART_OF]->(t)`;

// A retriever run inside a tool run (a retriever tool) is linked to its tool call, from whichever
// side is projected second.
const TOOL_START = `
UNWIND $rows AS r
MATCH (t:Trace {tenantId: r.tenantId, id: r.traceId})
MERGE (x:ToolCall {tenantId: r.tenantId, traceId: r.traceId, callId: r.callId})
SET x.runId = r.runId, x.name = r.name, x.input = r.input, x.startedAt = r.recordedAt, x.startEventId = r.eventId,
    x.status = CASE WHEN x.status IN ['ok', 'error'] THEN x.status ELSE 'running' END
MERGE (x)-[:PART_OF]->(t)
MERGE (tool:Tool {tenantId: r.tenantId, name: r.name})
MERGE (x)-[:INVOKED]->(tool)
WITH r, x
CALL (r, x) {
  MATCH (ret:Retrieval {tenantId: r.tenantId, traceId: r.traceId, parentRunId: r.runId})
  MERGE (x)-[:CALLED]->(ret)
}`;

const TOOL_END = `
UNWIND $rows AS r
MATCH (t:Trace {tenantId: r.tenantId, id: r.traceId})
MERGE (x:ToolCall {tenantId: r.tenantId, traceId: r.traceId, callId: r.callId})
SET x.endedAt = r.recordedAt, x.status = r.status, x.output = r.output, x.error = r.error
MERGE (x)-[:PART_OF]->(t)`;

const RETRIEVER_START = `
UNWIND $rows AS r
MATCH (t:Trace {tenantId: r.tenantId, id: r.traceId})
MERGE (ret:Retrieval {tenantId: r.tenantId, id: r.runId})
SET ret.traceId = r.traceId, ret.parentRunId = r.parentRunId, ret.name = r.name, ret.query = r.query,
    ret.startedAt = r.recordedAt, ret.status = coalesce(ret.status, 'running')
MERGE (ret)-[:PART_OF]->(t)
WITH r, ret
CALL (r, ret) {
  MATCH (x:ToolCall {tenantId: r.tenantId, traceId: r.traceId}) WHERE x.runId = r.parentRunId
  MERGE (x)-[:CALLED]->(ret)
}`;

// A document's node holds its latest content; RETURNED keeps the hash of the content this
// retrieval returned, so a document that changed between two retrievals still shows which was seen.
const RETRIEVER_END = `
UNWIND $rows AS r
MATCH (t:Trace {tenantId: r.tenantId, id: r.traceId})
MERGE (ret:Retrieval {tenantId: r.tenantId, id: r.runId})
SET ret.traceId = r.traceId, ret.parentRunId = r.parentRunId, ret.endedAt = r.recordedAt, ret.endEventId = r.eventId,
    ret.status = 'ok', ret.documentCount = size(r.documents)
MERGE (ret)-[:PART_OF]->(t)
WITH r, ret
UNWIND r.documents AS doc
MERGE (d:RetrievedDocument {tenantId: r.tenantId, id: doc.id})
SET d.sourceId = doc.sourceId, d.content = doc.content, d.metadata = doc.metadata, d.contentHash = doc.contentHash
MERGE (ret)-[rel:RETURNED]->(d)
ON CREATE SET rel.rank = doc.rank, rel.contentHash = doc.contentHash`;

// The rule for USED_BY: a retrieval's documents were used by every model call of the same trace
// that started after the retrieval ended (by event id, the producer's capture order). In a chain
// that is the call the documents were put in front of; in an agent, every later call, whose
// message history holds them. For an audit trail erring towards "may have influenced" is the
// safe side: a call that never saw a document is linked at worst, one that did is never missed.
const RETRIEVAL_USED_BY = `
UNWIND $rows AS r
MATCH (ret:Retrieval {tenantId: r.tenantId, id: r.runId})-[:PART_OF]->(t:Trace)
MATCH (t)<-[:PART_OF]-(c:LLMCall)<-[:INPUT_TO]-(p:Prompt)
WHERE p.id > r.eventId
MATCH (ret)-[:RETURNED]->(d:RetrievedDocument)
MERGE (d)-[:USED_BY]->(c)`;

const RETRIEVER_ERROR = `
UNWIND $rows AS r
MATCH (t:Trace {tenantId: r.tenantId, id: r.traceId})
MERGE (ret:Retrieval {tenantId: r.tenantId, id: r.runId})
SET ret.traceId = r.traceId, ret.parentRunId = r.parentRunId, ret.endedAt = r.recordedAt, ret.status = 'error', ret.error = r.error
MERGE (ret)-[:PART_OF]->(t)`;

// A deployment creates the version it deploys if no trace has used it yet: a rollout is on
// record before its first call.
const DEPLOYMENTS = `
UNWIND $rows AS r
MERGE (tn:Tenant {id: r.tenantId}) ON CREATE SET tn.tenantId = r.tenantId
MERGE (d:Deployment {tenantId: r.tenantId, id: r.id})
SET d += r.props
WITH r, d
CALL (r, d) {
  WITH r, d WHERE r.props.target = 'agent'
  MERGE (a:Agent {tenantId: r.tenantId, id: r.props.agentId}) ON CREATE SET a.name = coalesce(r.props.agentName, r.props.agentId)
  MERGE (av:AgentVersion {tenantId: r.tenantId, agentId: r.props.agentId, version: r.props.version}) ON CREATE SET av.name = a.name
  MERGE (a)-[:HAS_VERSION]->(av)
  MERGE (d)-[:DEPLOYED]->(av)
}
CALL (r, d) {
  WITH r, d WHERE r.props.target = 'model'
  MERGE (m:ModelVersion {tenantId: r.tenantId, provider: r.props.provider, name: r.props.model, version: r.props.version})
  MERGE (d)-[:DEPLOYED]->(m)
}`;

// Each deployment points at the one it replaced (PREVIOUS), per tenant, target and environment,
// in the order they were recorded: worker time, then ledger position (one stream per tenant).
// Recomputed whole for each target a batch deploys, so a deployment projected late still lands
// in its place.
const DEPLOYMENT_CHAIN = `
WITH d ORDER BY d.at, d.position
WITH collect(d) AS ds
UNWIND range(0, size(ds) - 1) AS i
WITH ds[i] AS d, CASE WHEN i > 0 THEN ds[i - 1] ELSE null END AS prev
OPTIONAL MATCH (d)-[stale:PREVIOUS]->(other) WHERE prev IS NULL OR other <> prev
DELETE stale
WITH DISTINCT d, prev WHERE prev IS NOT NULL
MERGE (d)-[:PREVIOUS]->(prev)`;

const AGENT_DEPLOYMENT_CHAIN = `
UNWIND $rows AS g
CALL (g) {
  MATCH (d:Deployment {tenantId: g.tenantId, agentId: g.agentId, environment: g.environment}) WHERE d.target = 'agent'
  ${DEPLOYMENT_CHAIN}
}`;

const MODEL_DEPLOYMENT_CHAIN = `
UNWIND $rows AS g
CALL (g) {
  MATCH (d:Deployment {tenantId: g.tenantId, provider: g.provider, model: g.model, environment: g.environment}) WHERE d.target = 'model'
  ${DEPLOYMENT_CHAIN}
}`;

// Policy flags (the agent's inline ones and the worker's), each linked to the policy version that
// raised it. A Policy node is one version of a policy: its key is `policyId@version`, so the flags
// of two versions stay apart and a version's flags are one hop away.
const FLAGS = `
UNWIND $rows AS r
MERGE (f:PolicyFlag {tenantId: r.tenantId, id: r.id})
SET f += r.props
MERGE (pol:Policy {tenantId: r.tenantId, id: r.policyKey})
ON CREATE SET pol.policyId = r.props.policyId, pol.version = r.props.policyVersion
MERGE (f)-[:OF_POLICY]->(pol)`;

// The node a flag is about, by its concern's kind and the ids the projection keys those nodes by:
// the Output (llm.end's event id), the Prompt (llm.start's event id, else its call's prompt), the
// ToolCall (its run), the documents a retrieval returned (those the evidence points at, else all).
// A concern with no node of its kind (a chain's output, an agent action) hangs on its model call,
// else on its trace, so that no flag is left unlinked.
const FLAG_TARGETS = `
UNWIND $rows AS r
MATCH (f:PolicyFlag {tenantId: r.tenantId, id: r.id})
CALL (r, f) {
  WITH r, f WHERE r.kind = 'output'
  MATCH (n:Output {tenantId: r.tenantId, id: r.eventId})
  MERGE (n)-[:FLAGGED]->(f)
}
CALL (r, f) {
  WITH r, f WHERE r.kind = 'prompt'
  OPTIONAL MATCH (direct:Prompt {tenantId: r.tenantId, id: r.eventId})
  OPTIONAL MATCH (viaCall:Prompt)-[:INPUT_TO]->(:LLMCall {tenantId: r.tenantId, id: r.runId})
  WITH f, coalesce(direct, viaCall) AS n LIMIT 1
  WITH f, n WHERE n IS NOT NULL
  MERGE (n)-[:FLAGGED]->(f)
}
CALL (r, f) {
  WITH r, f WHERE r.kind = 'tool_call'
  MATCH (n:ToolCall {tenantId: r.tenantId, runId: r.runId})
  MERGE (n)-[:FLAGGED]->(f)
}
CALL (r, f) {
  WITH r, f WHERE r.kind = 'document'
  MATCH (:Retrieval {tenantId: r.tenantId, id: r.runId})-[rel:RETURNED]->(n:RetrievedDocument)
  WHERE size(r.ranks) = 0 OR rel.rank IN r.ranks
  MERGE (n)-[:FLAGGED]->(f)
}
CALL (r, f) {
  WITH r, f WHERE NOT EXISTS { ()-[:FLAGGED]->(f) }
  OPTIONAL MATCH (c:LLMCall {tenantId: r.tenantId, id: r.runId})
  OPTIONAL MATCH (t:Trace {tenantId: r.tenantId, id: r.traceId})
  WITH f, coalesce(c, t) AS n WHERE n IS NOT NULL
  MERGE (n)-[:FLAGGED]->(f)
}`;

// An escalation starts open; its state is the fold of its transitions (see foldEscalation), which
// ESCALATION_STATE applies. A flag projected later (or earlier) meets it by id.
const ESCALATIONS = `
UNWIND $rows AS r
MERGE (e:Escalation {tenantId: r.tenantId, id: r.id})
ON CREATE SET e.state = 'open', e.updatedAt = r.props.openedAt, e.lastReviewer = null, e.statePosition = r.props.position
SET e += r.props
WITH r, e
UNWIND r.flagIds AS flagId
MERGE (f:PolicyFlag {tenantId: r.tenantId, id: flagId})
MERGE (f)-[:ESCALATED_TO]->(e)`;

/** A node of its own per event, hung off its escalation (labels are fixed here, never input). */
const escalationChild = (label: "EscalationTransition" | "NotificationAttempt", relationship: "TRANSITION" | "NOTIFIED") => `
UNWIND $rows AS r
MERGE (e:Escalation {tenantId: r.tenantId, id: r.escalationId})
MERGE (x:${label} {tenantId: r.tenantId, id: r.id})
SET x += r.props
MERGE (e)-[:${relationship}]->(x)`;

// Every transition is a node of its own, in ledger order, kept whether it took effect or not.
const ESCALATION_TRANSITIONS = escalationChild("EscalationTransition", "TRANSITION");
// Each notification attempt (webhook request, callback call) hangs off its escalation, failed ones included.
const ESCALATION_NOTIFICATIONS = escalationChild("NotificationAttempt", "NOTIFIED");

// The fold, one transition at a time in ledger order (rows are sorted, one statement each): it
// takes effect when it starts from the current state and comes after the last one that did, so
// projecting a transition twice, or a stale one (a reviewer who lost a race), changes nothing.
const ESCALATION_STATE = `
UNWIND $rows AS r
MATCH (e:Escalation {tenantId: r.tenantId, id: r.escalationId})
WITH r, e WHERE e.state = r.props.from AND coalesce(e.statePosition, -1) < r.props.position
SET e.state = r.props.to, e.statePosition = r.props.position, e.updatedAt = r.props.at, e.lastReviewer = r.props.reviewerId
WITH r
MATCH (x:EscalationTransition {tenantId: r.tenantId, id: r.id})
SET x.applied = true`;

/** A tool run's key in the graph: the model's tool-call id when it has one, else the run id. */
const callIdOf = (r: UserRecord, toolCallId: string | undefined) => toolCallId ?? r.event.runId;

/**
 * A retrieved document's key within its tenant: the id the retriever gave it, else the hash of
 * its content and metadata (the same text from the same source is the same document).
 */
function documentRows(documents: EventOf<"retriever.end">["payload"]["documents"]) {
  const seen = new Set<string>();
  return documents.flatMap((doc, rank) => {
    const contentHash = hashCanonical({ pageContent: doc.pageContent, metadata: doc.metadata });
    const id = doc.id ?? `sha256:${contentHash}`;
    // The first place a document is returned at is its rank; a repeat adds nothing.
    if (seen.has(id)) return [];
    seen.add(id);
    return [{ id, sourceId: doc.id ?? null, content: doc.pageContent, metadata: json(doc.metadata), contentHash, rank: neo4j.int(rank) }];
  });
}

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
// The template's hash stays: it is the same for every user of the template.
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

// The query is the subject's; the documents are the tenant's corpus, shared by every user who
// retrieved them, and stay.
const ERASED_RETRIEVALS = `
UNWIND $rows AS r
MATCH (:User {tenantId: r.tenantId, subject: r.subject})<-[:REQUESTED_BY]-(:Trace)<-[:PART_OF]-(x:Retrieval)
SET x.query = null, x.error = null, x.erased = true`;

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
 * Statements of one transaction sent without waiting for each answer: the server runs them in the
 * order sent, in the transaction, so each still sees the writes of those before it, but a batch
 * costs one round trip instead of one per statement (a projection batch runs a dozen or more, and
 * on a busy machine each round trip is milliseconds). `flush` waits for all of them and throws
 * the first failure; the ones after it fail too, as the server ignores them once one failed.
 */
export class StatementPipeline {
  private readonly pending: Promise<QueryResult>[] = [];

  constructor(private readonly tx: ManagedTransaction) {}

  run(cypher: string, params: Record<string, unknown>): Promise<QueryResult> {
    const result = Promise.resolve(this.tx.run(cypher, params));
    // Observed here as well, so a failure is never unhandled before `flush` gets to it.
    result.catch(() => undefined);
    this.pending.push(result);
    return result;
  }

  async flush(): Promise<void> {
    const settled = await Promise.allSettled(this.pending.splice(0));
    const failed = settled.find((s) => s.status === "rejected");
    if (failed) throw failed.reason;
  }
}

/** One row per distinct key: a batch often holds many events of one trace, session or target. */
function distinctBy<T>(rows: T[], key: (row: T) => string): T[] {
  return [...new Map(rows.map((row) => [key(row), row] as const)).values()];
}

/**
 * Project ledger records into the graph in one write transaction. Every write MERGEs on ids,
 * so projecting the same records again (a redelivered job) changes nothing.
 */
export async function projectRecords(tx: ManagedTransaction, all: PlainRecord[]): Promise<void> {
  const statements = new StatementPipeline(tx);
  try {
    queueProjection(statements, all);
  } catch (error) {
    // What was sent is answered before this returns, even when building a later statement's rows threw.
    await statements.flush().catch(() => undefined);
    throw error;
  }
  await statements.flush();
}

/** The statements that project `all`, queued on `statements` in the order they must run. */
export function queueProjection(statements: StatementPipeline, all: PlainRecord[]): void {
  const records = all.filter((r): r is UserRecord => !isSystemEvent(r.event));
  const traces = new Map<string, { firstEventId: string; recordedAt: string; lastRecordedAt: string } & Record<string, unknown>>();
  for (const r of records) {
    const { user, agent } = r.event.identity;
    const key = canonicalJson([user.tenantId, r.event.traceId]);
    const seen = traces.get(key);
    if (seen) {
      if (r.event.eventId < seen.firstEventId) seen.firstEventId = r.event.eventId;
      if (r.recordedAt < seen.recordedAt) seen.recordedAt = r.recordedAt;
      if (r.recordedAt > seen.lastRecordedAt) seen.lastRecordedAt = r.recordedAt;
      continue;
    }
    traces.set(key, {
      traceId: r.event.traceId,
      tenantId: user.tenantId,
      userId: user.id,
      subject: subjectRef(user.tenantId, user.id),
      agentId: agent.id,
      agentName: agent.name,
      agentVersion: agent.version,
      sessionId: r.event.sessionId,
      firstEventId: r.event.eventId,
      recordedAt: r.recordedAt,
      lastRecordedAt: r.recordedAt,
    });
  }
  const run = (cypher: string, rows: unknown[]) => {
    if (rows.length > 0) void statements.run(cypher, { rows });
  };
  run(TRACES, [...traces.values()]);
  run(
    REPLAY_OF,
    distinctBy(
      records.flatMap((r) =>
        (r.event.tags ?? [])
          .filter((tag) => tag.startsWith(REPLAY_TAG_PREFIX))
          .map((tag) => ({ tenantId: r.event.identity.user.tenantId, traceId: r.event.traceId, originalTraceId: tag.slice(REPLAY_TAG_PREFIX.length) })),
      ),
      (row) => canonicalJson(row),
    ),
  );
  run(
    REVIEWS,
    ofType(records, "custom")
      .filter((r) => r.event.payload.name === REVIEW_EVENT_NAME && isReviewData(r.event.payload.data))
      .map((r) => ({ ...(r.event.payload.data as Record<string, unknown>), tenantId: r.event.identity.user.tenantId, eventId: r.event.eventId, recordedAt: r.recordedAt })),
  );
  // A session's last activity is the latest record of it in the batch, of any of its traces: the
  // graph keeps the greatest over batches, so the value does not depend on where batches are cut
  // (a worker's jobs, a catch-up's ledger reads, a rebuild's batches).
  const sessions = new Map<string, { tenantId: unknown; sessionId: unknown; recordedAt: string }>();
  for (const t of traces.values()) {
    if (!t.sessionId) continue;
    const key = canonicalJson([t.tenantId, t.sessionId]);
    const seen = sessions.get(key);
    if (!seen) sessions.set(key, { tenantId: t.tenantId, sessionId: t.sessionId, recordedAt: t.lastRecordedAt });
    else if (t.lastRecordedAt > seen.recordedAt) seen.recordedAt = t.lastRecordedAt;
  }
  run(SESSION_ORDER, [...sessions.values()]);
  run(SESSION_NEXT, [...sessions.values()]);

  const roots = records.filter((r) => r.event.parentRunId === null);
  run(
    ROOT_START,
    ofType(roots, "chain.start").map((r) => ({ ...base(r), name: r.event.name ?? null, input: json(r.event.payload.inputs) })),
  );
  run(
    ROOT_END,
    ofType(roots, "chain.end", "chain.error").map((r) => ({
      ...base(r),
      status: r.event.type === "chain.end" ? "ok" : "error",
      output: r.event.type === "chain.end" ? json(r.event.payload.outputs) : null,
      error: r.event.type === "chain.error" ? json(r.event.payload.error) : null,
    })),
  );
  run(
    LLM_START,
    ofType(records, "llm.start").map((r) => {
      // The messages are an array, so their property text is their canonical JSON: hashed as it is
      // (what hashCanonical would give), not serialised a second time.
      const messages = json(r.event.payload.messages);
      return {
        ...base(r),
        provider: r.event.model.provider,
        model: r.event.model.name,
        params: json(r.event.model.params),
        // Hashed here, not in the agent: it is the same for every reader and costs the agent nothing.
        promptHash: sha256Hex(messages),
        messages,
        templateHash: r.event.payload.templateHash ?? null,
      };
    }),
  );
  run(
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
      // Cost sits beside usage since schema v2 (null when the handler had no price for the model).
      costCurrency: r.event.cost?.currency ?? null,
      costTotal: r.event.cost?.total ?? null,
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
  run(REASONING_STEPS, reasoning);
  // Only the keys: the steps' text went with REASONING_STEPS, and would only be sent again.
  run(
    REASONING_ORDER,
    reasoning.map((r) => ({ tenantId: r.tenantId, steps: r.steps.map(({ id, prevId }) => ({ id, prevId })) })),
  );
  run(LLM_ERROR, ofType(records, "llm.error").map((r) => ({ ...base(r), error: json(r.event.payload.error) })));
  run(
    TOOL_START,
    ofType(records, "tool.start").map((r) => ({
      ...base(r),
      callId: callIdOf(r, r.event.payload.toolCallId),
      name: r.event.name ?? "unknown",
      input: json(r.event.payload.input),
    })),
  );
  run(
    TOOL_END,
    ofType(records, "tool.end", "tool.error").map((r) => ({
      ...base(r),
      callId: callIdOf(r, r.event.payload.toolCallId),
      status: r.event.type === "tool.end" ? "ok" : "error",
      output: r.event.type === "tool.end" ? json(r.event.payload.output) : null,
      error: r.event.type === "tool.error" ? json(r.event.payload.error) : null,
    })),
  );
  run(
    RETRIEVER_START,
    ofType(records, "retriever.start").map((r) => ({ ...base(r), name: r.event.name ?? null, query: r.event.payload.query })),
  );
  const retrieved = ofType(records, "retriever.end").map((r) => ({ ...base(r), documents: documentRows(r.event.payload.documents) }));
  run(RETRIEVER_END, retrieved);
  run(RETRIEVAL_USED_BY, retrieved);
  run(RETRIEVER_ERROR, ofType(records, "retriever.error").map((r) => ({ ...base(r), error: json(r.event.payload.error) })));

  const deployments = ofType(all, "deployment").map((r) => {
    const p = r.event.payload;
    return {
      tenantId: r.event.tenantId,
      id: r.event.eventId,
      props: {
        target: p.target,
        action: p.action,
        environment: p.environment ?? DEFAULT_ENVIRONMENT,
        version: p.version,
        agentId: p.target === "agent" ? p.agentId : null,
        agentName: p.target === "agent" ? (p.agentName ?? null) : null,
        provider: p.target === "model" ? p.provider : null,
        model: p.target === "model" ? p.name : null,
        previousVersion: p.previousVersion ?? null,
        reason: p.reason ?? null,
        by: p.by ?? null,
        // The worker's time counts, as for outputs: "live when an output was produced" compares the two.
        at: r.recordedAt,
        occurredAt: r.event.occurredAt,
        streamId: r.streamId,
        position: neo4j.int(r.position),
      },
    };
  });
  run(DEPLOYMENTS, deployments);
  const targets = deployments.map((d) => ({ tenantId: d.tenantId, ...d.props }));
  run(
    AGENT_DEPLOYMENT_CHAIN,
    distinctBy(
      targets.filter((t) => t.target === "agent"),
      (t) => canonicalJson([t.tenantId, t.agentId, t.environment]),
    ).map(({ tenantId, agentId, environment }) => ({ tenantId, agentId, environment })),
  );
  run(
    MODEL_DEPLOYMENT_CHAIN,
    distinctBy(
      targets.filter((t) => t.target === "model"),
      (t) => canonicalJson([t.tenantId, t.provider, t.model, t.environment]),
    ).map(({ tenantId, provider, model, environment }) => ({ tenantId, provider, model, environment })),
  );

  const flags = ofType(records, "policy.flag").map((r) => {
    const p = r.event.payload;
    // The documents the evidence points at (payload.documents.N...), by their rank in the retrieval.
    const ranks = [...new Set(p.evidence.fields.flatMap((f) => /^payload\.documents\.(\d+)(\.|$)/.exec(f)?.[1] ?? []))].map((n) => neo4j.int(Number(n)));
    return {
      tenantId: r.event.identity.user.tenantId,
      id: r.event.eventId,
      policyKey: `${p.policyId}@${p.policyVersion}`,
      kind: p.concerns.kind,
      eventId: p.concerns.eventId ?? null,
      runId: p.concerns.runId,
      traceId: r.event.traceId,
      ranks,
      props: {
        policyId: p.policyId,
        policyVersion: p.policyVersion,
        policySetHash: p.policySetHash,
        severity: p.severity,
        action: p.action,
        outcome: p.outcome,
        decision: p.decision ?? null,
        reason: p.reason,
        kind: p.concerns.kind,
        concernsEventId: p.concerns.eventId ?? null,
        runId: p.concerns.runId,
        traceId: r.event.traceId,
        evidence: json(p.evidence),
        // The worker's time counts, as for outputs: flag rates per day bucket by it.
        at: r.recordedAt,
        occurredAt: r.event.occurredAt,
        streamId: r.streamId,
        position: neo4j.int(r.position),
      },
    };
  });
  run(FLAGS, flags);
  run(FLAG_TARGETS, flags);
  run(
    ESCALATIONS,
    ofType(all, "escalation.opened").map((r) => {
      const p = r.event.payload;
      return {
        tenantId: r.event.tenantId,
        id: p.escalationId,
        flagIds: p.flagEventIds,
        props: {
          severity: p.severity,
          policyId: p.policyId,
          policyVersion: p.policyVersion,
          policySetHash: p.policySetHash,
          reason: p.reason,
          traceId: p.concerns.traceId,
          concernKind: p.concerns.kind,
          concernsEventId: p.concerns.eventId ?? null,
          holdId: p.holdId ?? null,
          openedAt: r.recordedAt,
          position: neo4j.int(r.position),
        },
      };
    }),
  );
  const transitions = ofType(all, "escalation.transition")
    .sort((a, b) => (a.streamId === b.streamId ? a.position - b.position : a.streamId < b.streamId ? -1 : 1))
    .map((r) => {
      const p = r.event.payload;
      return {
        tenantId: r.event.tenantId,
        id: r.event.eventId,
        escalationId: p.escalationId,
        props: {
          from: p.from,
          to: p.to,
          reviewerId: p.reviewer.id,
          reviewerName: p.reviewer.name ?? null,
          reason: p.reason,
          holdDecision: p.holdDecision ?? null,
          at: r.recordedAt,
          position: neo4j.int(r.position),
        },
      };
    });
  run(ESCALATION_TRANSITIONS, transitions);
  for (const t of transitions) run(ESCALATION_STATE, [t]);
  run(
    ESCALATION_NOTIFICATIONS,
    ofType(all, "escalation.notification").map((r) => {
      const p = r.event.payload;
      return {
        tenantId: r.event.tenantId,
        id: r.event.eventId,
        escalationId: p.escalationId,
        props: {
          deliveryId: p.deliveryId,
          channel: p.channel,
          attempt: neo4j.int(p.attempt),
          status: p.status,
          httpStatus: p.httpStatus === undefined ? null : neo4j.int(p.httpStatus),
          error: p.error ?? null,
          at: p.at,
          nextRetryAt: p.nextRetryAt ?? null,
          position: neo4j.int(r.position),
        },
      };
    }),
  );

  // After this batch's own events, so that what a batch projects before its erasure is erased too.
  const erasures = ofType(all, "subject.erased").map((r) => ({
    tenantId: r.event.tenantId,
    subject: r.event.subject,
    keyId: r.event.payload.keyId,
    erasedAt: r.event.payload.erasedAt,
  }));
  for (const cypher of [
    ERASED_TRACES,
    ERASED_CALLS,
    ERASED_PROMPTS,
    ERASED_OUTPUTS,
    ERASED_STEPS,
    ERASED_TOOL_RUNS,
    ERASED_TOOL_REQUESTS,
    ERASED_RETRIEVALS,
    ERASED_USERS,
  ])
    run(cypher, erasures);
}
