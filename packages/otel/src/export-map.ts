import { SpanKind, type Attributes } from "@opentelemetry/api";
import { isSystemEvent, tenantIdOf, type AuditEvent, type EventOf, type EventType } from "@auditgraph/core";
import { AUDITGRAPH, GEN_AI, GEN_AI_OPERATIONS, GENERAL, OPENINFERENCE, OPENINFERENCE_SPAN_KINDS } from "./attributes.js";
import { AUDITGRAPH_EXPORT } from "./attributes.js";
import { documentsOf, inputMessagesOf, jsonText, outputMessagesOf, requestParamsOf, toolDefinitionsOf } from "./export-messages.js";

// Which span each event type becomes, in one table complete by type: a new event type does not
// compile until it says how it is exported. Four roles:
//   start / end / error  a run's (chain, llm, tool, retriever) start and its end make one span;
//   annotation           an event inside a run (a streamed token, an agent's action, free text, a
//                        correction): a span event on its run's span while that span is open, else a
//                        span of its own under the run;
//   standalone           an event about a run or a tenant, recorded by the worker or an operator
//                        (a flag, an escalation, a deployment, a read, an erasure): always a span of
//                        its own, under the run it concerns. They are appended after the run's end
//                        (the policies run once the job's events are in the ledger), when the run's
//                        span is gone already, and each is a ledger record a viewer links back to.

/** Whether content (messages, tool arguments and results, queries, documents, inputs, outputs) is exported, or only its metadata. */
export type ExportContent = "full" | "metadata";

export type RunKind = "chain" | "llm" | "tool" | "retriever";

export type EventSpanRule<T extends EventType> =
  | { role: "start"; run: RunKind; attributes(event: EventOf<T>, content: boolean): Attributes }
  | { role: "end"; run: RunKind; attributes(event: EventOf<T>, content: boolean): Attributes }
  | { role: "error"; run: RunKind }
  | { role: "annotation"; attributes(event: EventOf<T>, content: boolean): Attributes }
  | { role: "standalone"; name(event: EventOf<T>): string; attributes(event: EventOf<T>): Attributes };

/** A non-run event's payload as recorded (JSON). */
const payloadOf = (event: AuditEvent): Attributes => ({ [AUDITGRAPH_EXPORT.payload]: JSON.stringify(event.payload) });
const when = (content: boolean, attributes: Attributes): Attributes => (content ? attributes : {});

/** Complete by type: `Record<EventType, rule>`, each rule typed for its own event type. */
export type EventSpanTable = { [T in EventType]: EventSpanRule<T> };

export const EVENT_SPANS = {
  "chain.start": {
    role: "start",
    run: "chain",
    attributes: (e, content) => ({
      ...when(content, { [OPENINFERENCE.inputValue]: jsonText(e.payload.inputs), [OPENINFERENCE.inputMimeType]: "application/json" }),
      ...(e.payload.graph ? { [OPENINFERENCE.graphNodeName]: e.payload.graph.node } : {}),
    }),
  },
  "chain.end": {
    role: "end",
    run: "chain",
    attributes: (e, content) => when(content, { [OPENINFERENCE.outputValue]: jsonText(e.payload.outputs), [OPENINFERENCE.outputMimeType]: "application/json" }),
  },
  "chain.error": { role: "error", run: "chain" },
  "llm.start": {
    role: "start",
    run: "llm",
    attributes: (e, content) => ({
      [GEN_AI.providerName]: e.model.provider,
      [GEN_AI.requestModel]: e.model.name,
      ...requestParamsOf(e.model.params),
      ...when(content, {
        [GEN_AI.inputMessages]: inputMessagesOf(e.payload.messages),
        ...(e.payload.tools?.length ? { [GEN_AI.toolDefinitions]: toolDefinitionsOf(e.payload.tools) } : {}),
      }),
    }),
  },
  "llm.token": {
    role: "annotation",
    attributes: (e, content) => ({ index: e.payload.index, ...when(content, { token: e.payload.token }) }),
  },
  "llm.end": {
    role: "end",
    run: "llm",
    attributes: (e, content) => ({
      [GEN_AI.providerName]: e.model.provider,
      // The served model: its version (a dated snapshot, say) when the provider told it.
      [GEN_AI.responseModel]: e.model.version ?? e.model.name,
      ...(e.model.fingerprint ? { [GEN_AI.openaiSystemFingerprint]: e.model.fingerprint } : {}),
      ...(e.payload.output.finishReason ? { [GEN_AI.responseFinishReasons]: [e.payload.output.finishReason] } : {}),
      ...(e.usage
        ? {
            [GEN_AI.usageInputTokens]: e.usage.inputTokens,
            [GEN_AI.usageOutputTokens]: e.usage.outputTokens,
            [OPENINFERENCE.llmTokenCountTotal]: e.usage.totalTokens,
            ...(e.usage.cacheReadTokens !== undefined ? { [GEN_AI.usageCacheReadInputTokens]: e.usage.cacheReadTokens } : {}),
            ...(e.usage.cacheCreationTokens !== undefined ? { [GEN_AI.usageCacheCreationInputTokens]: e.usage.cacheCreationTokens } : {}),
            ...(e.usage.reasoningTokens !== undefined ? { [GEN_AI.usageReasoningOutputTokens]: e.usage.reasoningTokens } : {}),
          }
        : {}),
      ...(e.payload.timing?.timeToFirstTokenMs !== undefined ? { [GEN_AI.responseTimeToFirstChunk]: e.payload.timing.timeToFirstTokenMs / 1_000 } : {}),
      ...when(content, { [GEN_AI.outputMessages]: outputMessagesOf(e.payload) }),
    }),
  },
  "llm.error": { role: "error", run: "llm" },
  "tool.start": {
    role: "start",
    run: "tool",
    attributes: (e, content) => ({
      [GEN_AI.toolType]: "function",
      ...(e.name ? { [GEN_AI.toolName]: e.name } : {}),
      ...(e.payload.toolCallId ? { [GEN_AI.toolCallId]: e.payload.toolCallId } : {}),
      ...when(content, { [GEN_AI.toolCallArguments]: jsonText(e.payload.input) }),
    }),
  },
  "tool.end": {
    role: "end",
    run: "tool",
    attributes: (e, content) => ({
      ...(e.name ? { [GEN_AI.toolName]: e.name } : {}),
      ...(e.payload.toolCallId ? { [GEN_AI.toolCallId]: e.payload.toolCallId } : {}),
      ...when(content, { [GEN_AI.toolCallResult]: jsonText(e.payload.output) }),
    }),
  },
  "tool.error": { role: "error", run: "tool" },
  "retriever.start": {
    role: "start",
    run: "retriever",
    attributes: (e, content) => when(content, { [GEN_AI.retrievalQueryText]: e.payload.query }),
  },
  "retriever.end": {
    role: "end",
    run: "retriever",
    attributes: (e, content) => when(content, { [GEN_AI.retrievalDocuments]: documentsOf(e.payload.documents) }),
  },
  "retriever.error": { role: "error", run: "retriever" },
  "agent.action": {
    role: "annotation",
    attributes: (e, content) => ({
      [GEN_AI.toolName]: e.payload.tool,
      ...when(content, { [GEN_AI.toolCallArguments]: jsonText(e.payload.toolInput), log: e.payload.log }),
    }),
  },
  "agent.finish": {
    role: "annotation",
    attributes: (e, content) => when(content, { [OPENINFERENCE.outputValue]: jsonText(e.payload.returnValues), log: e.payload.log }),
  },
  text: { role: "annotation", attributes: (e, content) => when(content, { text: e.payload.text }) },
  custom: { role: "annotation", attributes: (e, content) => ({ name: e.payload.name, ...when(content, { data: jsonText(e.payload.data) }) }) },
  correction: {
    role: "annotation",
    attributes: (e, content) => ({
      "corrects.event.id": e.payload.correctsEventId,
      ...when(content, { reason: e.payload.reason, correction: jsonText(e.payload.correction) }),
    }),
  },
  "subject.erased": { role: "standalone", name: () => "subject.erased", attributes: payloadOf },
  deployment: {
    role: "standalone",
    name: (e) => `deployment ${e.payload.target === "agent" ? e.payload.agentId : `${e.payload.provider}/${e.payload.name}`} ${e.payload.version}`,
    attributes: payloadOf,
  },
  "shards.changed": { role: "standalone", name: (e) => `shards.changed ${e.payload.from} -> ${e.payload.to}`, attributes: payloadOf },
  "policy.flag": {
    role: "standalone",
    name: (e) => `policy.flag ${e.payload.policyId}`,
    attributes: (e) => ({
      ...payloadOf(e),
      [AUDITGRAPH_EXPORT.policyId]: e.payload.policyId,
      [AUDITGRAPH_EXPORT.policySeverity]: e.payload.severity,
      [AUDITGRAPH_EXPORT.policyOutcome]: e.payload.outcome,
    }),
  },
  "escalation.opened": {
    role: "standalone",
    name: (e) => `escalation.opened ${e.payload.policyId}`,
    attributes: (e) => ({
      ...payloadOf(e),
      [AUDITGRAPH_EXPORT.escalationId]: e.payload.escalationId,
      [AUDITGRAPH_EXPORT.policyId]: e.payload.policyId,
      [AUDITGRAPH_EXPORT.policySeverity]: e.payload.severity,
    }),
  },
  "escalation.transition": {
    role: "standalone",
    name: (e) => `escalation.transition ${e.payload.from} -> ${e.payload.to}`,
    attributes: (e) => ({ ...payloadOf(e), [AUDITGRAPH_EXPORT.escalationId]: e.payload.escalationId }),
  },
  "escalation.notification": {
    role: "standalone",
    name: (e) => `escalation.notification ${e.payload.channel} ${e.payload.status}`,
    attributes: (e) => ({ ...payloadOf(e), [AUDITGRAPH_EXPORT.escalationId]: e.payload.escalationId }),
  },
  access: { role: "standalone", name: (e) => `access ${e.payload.action}`, attributes: payloadOf },
} satisfies EventSpanTable;

/** The rule of an event, typed for the caller that holds an event of any type. */
export const ruleOf = (event: AuditEvent): EventSpanRule<EventType> => EVENT_SPANS[event.type] as EventSpanRule<EventType>;

/** How each run kind is named and kinded (the conventions' span names: `{operation} {target}`). */
export const RUN_SPANS: Record<
  RunKind,
  {
    kind: SpanKind;
    openinference: string;
    operation(e: AuditEvent): string | undefined;
    name(start: AuditEvent | undefined, end: AuditEvent | undefined): string;
  }
> = {
  llm: {
    kind: SpanKind.CLIENT,
    openinference: OPENINFERENCE_SPAN_KINDS.llm,
    operation: () => GEN_AI_OPERATIONS.chat,
    name: (start, end) => `chat ${modelOf(start) ?? modelOf(end) ?? ""}`.trim(),
  },
  tool: {
    kind: SpanKind.INTERNAL,
    openinference: OPENINFERENCE_SPAN_KINDS.tool,
    operation: () => GEN_AI_OPERATIONS.executeTool,
    name: (start, end) => `execute_tool ${start?.name ?? end?.name ?? ""}`.trim(),
  },
  retriever: {
    kind: SpanKind.CLIENT,
    openinference: OPENINFERENCE_SPAN_KINDS.retriever,
    operation: () => GEN_AI_OPERATIONS.retrieval,
    name: (start, end) => `retrieval ${start?.name ?? end?.name ?? ""}`.trim(),
  },
  // A trace's root chain is the agent's invocation; a nested chain (a LangGraph node, a runnable)
  // is a step of it, which no GenAI operation names: it keeps its own name and no operation.
  chain: {
    kind: SpanKind.INTERNAL,
    openinference: OPENINFERENCE_SPAN_KINDS.chain,
    operation: (e) => (e.parentRunId === null ? GEN_AI_OPERATIONS.invokeAgent : undefined),
    name: (start, end) => {
      const e = (start ?? end)!;
      if (e.parentRunId !== null) return start?.name ?? end?.name ?? "chain";
      return `invoke_agent ${"identity" in e ? e.identity.agent.name : ""}`.trim();
    },
  },
};

const modelOf = (e: AuditEvent | undefined): string | undefined => (e && "model" in e ? e.model.name : undefined);

/** What every span of an event says about who and where: tenant, user, agent, conversation, our ids. */
export function contextOf(e: AuditEvent): Attributes {
  const out: Attributes = {
    [AUDITGRAPH_EXPORT.tenantId]: tenantIdOf(e),
    [AUDITGRAPH.traceId]: e.traceId,
    [AUDITGRAPH.runId]: e.runId,
    ...(e.parentRunId !== null ? { [AUDITGRAPH.parentRunId]: e.parentRunId } : {}),
    // The conventions' name, and the one Langfuse and Phoenix group sessions by.
    ...(e.sessionId !== null ? { [GEN_AI.conversationId]: e.sessionId, [OPENINFERENCE.sessionId]: e.sessionId } : {}),
    ...(e.tags?.length ? { [AUDITGRAPH.tags]: e.tags } : {}),
  };
  if (!isSystemEvent(e)) {
    const { user, agent } = e.identity;
    out[GENERAL.userId] = user.id;
    if (user.roles?.length) out[AUDITGRAPH.userRoles] = user.roles;
    out[GEN_AI.agentId] = agent.id;
    out[GEN_AI.agentName] = agent.name;
    out[GEN_AI.agentVersion] = agent.version;
  }
  return out;
}
