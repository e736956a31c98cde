import { z } from "zod";
import { AIMessage, HumanMessage, SystemMessage, ToolMessage, type BaseMessage } from "@langchain/core/messages";
import {
  AuditgraphError,
  canonicalJson,
  openRecords,
  upcastEvent,
  isSealed,
  type AuditEvent,
  type LedgerRecord,
  type Message,
  type SubjectKeyStore,
} from "@auditgraph/core";
import type { SnapshotTrace } from "./snapshot.js";

/** One tool call as the trace made it: the tool, its arguments (canonical JSON) and what it returned. */
export const ToolStepSchema = z.object({
  name: z.string(),
  args: z.string(),
  output: z.string().optional(),
  error: z.string().optional(),
});
export type ToolStep = z.infer<typeof ToolStepSchema>;

/** What the review compares of a trace, read from its events. */
export const TraceSummarySchema = z.object({
  traceId: z.string(),
  /** The user's tenant (the review is recorded in it). */
  tenantId: z.string().optional(),
  agentId: z.string().optional(),
  agentVersion: z.string().optional(),
  finalOutput: z.string(),
  tools: z.array(ToolStepSchema),
  llmCalls: z.number().int().nonnegative(),
  tokens: z.number().int().nonnegative(),
  cost: z.number().nonnegative(),
  latencyMs: z.number().nonnegative(),
  errors: z.number().int().nonnegative(),
  flags: z.number().int().nonnegative(),
  escalations: z.number().int().nonnegative(),
});
export type TraceSummary = z.infer<typeof TraceSummarySchema>;

/** A snapshot trace opened for replay: its events in the clear, current schema version, in recorded order. */
export interface RecordedTrace {
  traceId: string;
  events: AuditEvent[];
}

/** Opens a snapshot trace's records (sealed ones with the key store); an erased subject's trace cannot be replayed. */
export async function openTrace(trace: SnapshotTrace, keyStore?: Pick<SubjectKeyStore, "byId">): Promise<RecordedTrace> {
  const records = trace.records.map((r) => r.record as unknown as LedgerRecord);
  if (!keyStore && records.some((r) => isSealed(r.event)))
    throw new AuditgraphError("AUDITGRAPH_E_TRACE_SEALED", `trace ${trace.traceId} is sealed: replaying it needs the key store (keyStore)`);
  const opened = keyStore ? await openRecords(records, keyStore) : records.map((record) => ({ erased: false as const, record }));
  const events: AuditEvent[] = [];
  for (const o of opened) {
    if (o.erased) throw new AuditgraphError("AUDITGRAPH_E_TRACE_ERASED", `trace ${trace.traceId}: its subject's key was erased, the trace cannot be replayed`);
    events.push(upcastEvent(o.record.event));
  }
  return { traceId: trace.traceId, events };
}

/** Tool input as recorded (often the arguments' JSON text) or as called (an object), in one comparable form. */
export function canonicalArgs(input: unknown): string {
  if (typeof input === "string") {
    try {
      return canonicalJson(JSON.parse(input));
    } catch {
      return canonicalJson(input);
    }
  }
  return canonicalJson(input ?? null);
}

const text = (value: unknown): string => (typeof value === "string" ? value : canonicalJson(value ?? null));

/** The tool calls of a trace, in the order they started, with their results. */
export function toolSteps(events: readonly AuditEvent[]): ToolStep[] {
  // The model's tool call carries the arguments as an object; the tool's input is often their text.
  const argsById = new Map<string, unknown>();
  for (const e of events) if (e.type === "llm.end") for (const call of e.payload.output.toolCalls) if (call.id) argsById.set(call.id, call.args);
  const steps = new Map<string, ToolStep>();
  for (const e of events) {
    if (e.type === "tool.start") {
      const id = e.payload.toolCallId;
      steps.set(e.runId, { name: e.name ?? "tool", args: canonicalArgs(id && argsById.has(id) ? argsById.get(id) : e.payload.input) });
    } else if (e.type === "tool.end") {
      const step = steps.get(e.runId);
      if (step) step.output = text(e.payload.output);
    } else if (e.type === "tool.error") {
      const step = steps.get(e.runId);
      if (step) step.error = e.payload.error.message;
    }
  }
  return [...steps.values()];
}

export function summarise(traceId: string, events: readonly AuditEvent[]): TraceSummary {
  const llmEnds = events.filter((e) => e.type === "llm.end");
  const root = events.find((e) => e.type === "chain.start" && e.parentRunId === null);
  const rootEnd = root && events.find((e) => (e.type === "chain.end" || e.type === "chain.error") && e.runId === root.runId);
  const times = events.map((e) => Date.parse(e.occurredAt));
  const answer = [...llmEnds].reverse().find((e) => e.payload.output.toolCalls.length === 0);
  const identity = events.find((e) => "identity" in e);
  return {
    traceId,
    ...(identity && "identity" in identity
      ? { tenantId: identity.identity.user.tenantId, agentId: identity.identity.agent.id, agentVersion: identity.identity.agent.version }
      : {}),
    finalOutput: answer ? answer.payload.output.text : rootEnd?.type === "chain.end" ? text(rootEnd.payload.outputs) : "",
    tools: toolSteps(events),
    llmCalls: llmEnds.length,
    tokens: llmEnds.reduce((n, e) => n + (e.usage?.totalTokens ?? 0), 0),
    cost: llmEnds.reduce((n, e) => n + (e.cost?.total ?? 0), 0),
    latencyMs: root && rootEnd ? Date.parse(rootEnd.occurredAt) - Date.parse(root.occurredAt) : times.length ? Math.max(...times) - Math.min(...times) : 0,
    errors: events.filter((e) => e.type.endsWith(".error")).length,
    flags: events.filter((e) => e.type === "policy.flag").length,
    escalations: events.filter((e) => e.type === "escalation.opened").length,
  };
}

/** A recorded message as a LangChain message, so the candidate gets what the original got. */
export function toLangChain(message: Message): BaseMessage {
  const content = message.content as string;
  const name = message.name ? { name: message.name } : {};
  switch (message.role) {
    case "system":
      return new SystemMessage({ content, ...name });
    case "assistant":
      return new AIMessage({
        content,
        ...name,
        tool_calls: (message.toolCalls ?? []).map((c) => ({ id: c.id, name: c.name, args: c.args as Record<string, unknown>, type: "tool_call" as const })),
      });
    case "tool":
      return new ToolMessage({ content, tool_call_id: message.toolCallId ?? "", ...name });
    default:
      return new HumanMessage({ content, ...name });
  }
}

const isMessage = (v: unknown): v is Message => typeof v === "object" && v !== null && typeof (v as Message).role === "string" && "content" in v;

/**
 * The trace's original input: the root run's inputs (its messages, session history included,
 * as LangChain messages), else the first model call's messages with the system prompt left to
 * the candidate (a new prompt is often what is under test).
 */
export function originalInput(trace: RecordedTrace): Record<string, unknown> {
  const root = trace.events.find((e) => e.type === "chain.start" && e.parentRunId === null);
  if (root?.type === "chain.start" && typeof root.payload.inputs === "object" && root.payload.inputs !== null && !Array.isArray(root.payload.inputs)) {
    const inputs = root.payload.inputs as Record<string, unknown>;
    const messages = inputs.messages;
    if (Array.isArray(messages) && messages.every(isMessage)) return { ...inputs, messages: messages.map(toLangChain) };
    return inputs;
  }
  const llm = trace.events.find((e) => e.type === "llm.start");
  if (llm?.type === "llm.start") return { messages: llm.payload.messages.filter((m) => m.role !== "system").map(toLangChain) };
  throw new AuditgraphError("AUDITGRAPH_E_TRACE_NO_INPUT", `trace ${trace.traceId} has neither a root chain.start nor an llm.start: no input to replay`);
}

/** Who the original trace acted for, and in which session: the replay acts for the same user. */
export function originalContext(trace: RecordedTrace): { userId?: string; tenantId?: string; sessionId?: string } {
  const e = trace.events.find((x) => "identity" in x);
  if (!e || !("identity" in e)) return {};
  return { userId: e.identity.user.id, tenantId: e.identity.user.tenantId, ...(e.sessionId ? { sessionId: e.sessionId } : {}) };
}
