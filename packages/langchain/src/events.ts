import { performance } from "node:perf_hooks";
import { SCHEMA_VERSION, newEventId, type AuditEvent, type Cost, type EventType, type Identity, type Message, type Model, type Usage } from "@auditgraph/core";
import type { Serialized } from "@langchain/core/load/serializable";
import type { ChatGeneration, LLMResult } from "@langchain/core/outputs";
import type { z } from "zod";
import { paramsOf, reasoningOf, toolDefinitionOf, usageOf } from "./capture.js";
import type { EventRedactor, PriceSchema } from "./handler-options.js";
import { METADATA_KEYS, str } from "./identity.js";
import { toJson, toolCallsOf } from "./serialize.js";

/** What a run inherits from its parent and what its end event needs again. */
export interface RunContext {
  traceId: string;
  parentRunId: string | null;
  sessionId: string | null;
  identity: Identity;
  anonymous: boolean;
  name: string | undefined;
  startedAt: number;
  model?: Model;
  toolCallId?: string;
  highImpact?: boolean;
  firstTokenAt?: number;
  tokens?: number;
}

/** The optional parts of an event, and whether it ends its run. */
export interface EventExtra {
  model?: Model;
  usage?: Usage | undefined;
  cost?: Cost | undefined;
  tags?: string[] | undefined;
  /** The run ends with this event: its context is forgotten. */
  end?: boolean;
}

export const errorInfo = (err: unknown) => (err instanceof Error ? { name: err.name, message: err.message } : { name: "Error", message: String(err) });

const round = (n: number) => Math.round(n * 1e9) / 1e9;

/** An event of a run, stamped with the run's identity and place in its trace, then redacted. */
export function buildEvent(
  context: RunContext,
  type: EventType,
  runId: string,
  payload: unknown,
  extra: EventExtra,
  redactor: EventRedactor | undefined,
): AuditEvent {
  const event = {
    eventId: newEventId(),
    schemaVersion: SCHEMA_VERSION,
    type,
    occurredAt: new Date().toISOString(),
    traceId: context.traceId,
    runId,
    parentRunId: context.parentRunId,
    sessionId: context.sessionId,
    identity: context.identity,
    ...(context.name ? { name: context.name } : {}),
    ...(extra.tags?.length ? { tags: extra.tags } : {}),
    ...(extra.model ? { model: extra.model } : {}),
    ...(extra.usage ? { usage: extra.usage } : {}),
    ...(extra.cost ? { cost: extra.cost } : {}),
    payload,
  } as AuditEvent;
  return redactor ? redactor.redactEvent(event) : event;
}

/** Latency (and time to first token) of a run so far. */
export function timing(context: RunContext | undefined) {
  if (!context) return undefined;
  const now = performance.now();
  return {
    latencyMs: round(now - context.startedAt),
    ...(context.firstTokenAt !== undefined ? { timeToFirstTokenMs: round(context.firstTokenAt - context.startedAt) } : {}),
  };
}

/** The cost of a model call, priced by the served model version first, then the requested name. */
export function costOf(
  prices: Record<string, z.output<typeof PriceSchema>>,
  usage: Usage | undefined,
  served: string,
  requested: string | undefined,
): Cost | undefined {
  const price = prices[served] ?? (requested ? prices[requested] : undefined);
  if (!usage || !price) return undefined;
  const cached = usage.cacheReadTokens ?? 0;
  const input = ((usage.inputTokens - cached) * price.input + cached * (price.cachedInput ?? price.input)) / 1e6;
  const output = (usage.outputTokens * price.output) / 1e6;
  return { currency: price.currency, input: round(input), output: round(output), total: round(input + output) };
}

/** The requested model and the `llm.start` payload of a model call. */
export function llmStartOf(
  llm: Serialized,
  messages: Message[],
  extraParams: Record<string, unknown> | undefined,
  metadata: Record<string, unknown> | undefined,
): { model: Model; payload: unknown } {
  const invocation = (extraParams?.invocation_params ?? {}) as Record<string, unknown>;
  const callOptions = (extraParams?.options ?? {}) as Record<string, unknown>;
  const className = llm?.id?.at(-1) ?? "unknown";
  const m = metadata ?? {};
  const model: Model = {
    provider: str(m.ls_provider) ?? className,
    name: str(m.ls_model_name) ?? str(invocation.model) ?? str(invocation.model_name) ?? className,
    params: paramsOf(invocation, m),
  };
  const boundTools = (callOptions.tools ?? invocation.tools) as unknown[] | undefined;
  const tools = Array.isArray(boundTools) ? boundTools.map(toolDefinitionOf).filter((t) => t !== undefined) : [];
  const toolChoice = callOptions.tool_choice ?? invocation.tool_choice;
  const payload = {
    messages,
    ...(tools.length ? { tools } : {}),
    ...(toolChoice !== undefined ? { toolChoice: toJson(toolChoice) } : {}),
    ...(str(m[METADATA_KEYS.promptTemplateHash]) ? { templateHash: str(m[METADATA_KEYS.promptTemplateHash])! } : {}),
  };
  return { model, payload };
}

/** The `llm.end` payload of a model call, with its usage, cost and served model version. */
export function llmEndOf(
  output: LLMResult,
  context: RunContext | undefined,
  prices: Record<string, z.output<typeof PriceSchema>>,
): { payload: unknown; extra: Required<Pick<EventExtra, "model">> & Pick<EventExtra, "usage" | "cost"> } {
  const generation = output.generations.at(-1)?.at(-1) as ChatGeneration | undefined;
  const message = generation?.message;
  const requested = context?.model;
  const meta = (message?.response_metadata ?? {}) as Record<string, unknown>;
  const served = str(meta.model_name) ?? str(meta.model) ?? str(meta.modelId) ?? requested?.name ?? "unknown";
  const fingerprint = str(meta.system_fingerprint);
  const usage = usageOf(message, output.llmOutput);
  const cost = costOf(prices, usage, served, requested?.name);
  const finishReason =
    str(meta.finish_reason) ?? str(meta.stop_reason) ?? str((generation?.generationInfo as Record<string, unknown> | undefined)?.finish_reason);
  const toolCalls = message ? toolCallsOf(message) : [];
  const reasoning = message ? reasoningOf(message, toolCalls) : [];
  const payload = {
    output: {
      text: message ? message.text : (generation?.text ?? ""),
      toolCalls,
      ...(finishReason ? { finishReason } : {}),
    },
    ...(reasoning.length ? { reasoning } : {}),
    timing: timing(context),
    ...(context?.tokens ? { streamed: { tokens: context.tokens } } : {}),
  };
  const model: Model = {
    provider: requested?.provider ?? "unknown",
    name: requested?.name ?? served,
    version: served,
    ...(fingerprint ? { fingerprint } : {}),
    params: {},
  };
  return { payload, extra: { usage, cost, model } };
}
