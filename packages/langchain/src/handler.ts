import { performance } from "node:perf_hooks";
import { BaseCallbackHandler } from "@langchain/core/callbacks/base";
import type { AgentAction, AgentFinish } from "@langchain/core/agents";
import type { DocumentInterface } from "@langchain/core/documents";
import type { Serialized } from "@langchain/core/load/serializable";
import { ToolMessage, type BaseMessage } from "@langchain/core/messages";
import type { ChatGeneration, LLMResult } from "@langchain/core/outputs";
import type { ChainValues } from "@langchain/core/utils/types";
import { pino, type Logger } from "pino";
import { z } from "zod";
import {
  AgentIdentitySchema,
  SCHEMA_VERSION,
  SeveritySchema,
  UserIdentitySchema,
  ValidationError,
  newEventId,
  parseWith,
  type AuditEvent,
  type Cost,
  type EventType,
  type Identity,
  type Message,
  type Model,
  type Severity,
  type Usage,
} from "@auditgraph/core";
import { InlineEnforcer, PolicyRefusal, flagPayload, type HoldDecider, type InlineOutcome, type InlineVerdict, type PolicySet, type PolicyState } from "@auditgraph/policy";
import { paramsOf, reasoningOf, toolDefinitionOf, usageOf } from "./capture.js";
import { toJson, toMessage, toolCallsOf } from "./serialize.js";
import type { Transport } from "./transport.js";

/**
 * Keys read from `config.metadata` of an invocation (LangChain passes metadata down to every
 * child run). They override the handler's defaults for that invocation.
 */
export const METADATA_KEYS = {
  userId: "auditgraph_user_id",
  tenantId: "auditgraph_tenant_id",
  userRoles: "auditgraph_user_roles",
  sessionId: "auditgraph_session_id",
  agentId: "auditgraph_agent_id",
  agentName: "auditgraph_agent_name",
  agentVersion: "auditgraph_agent_version",
  /** The hash (or version id) of the prompt template behind the model call's messages. */
  promptTemplateHash: "auditgraph_prompt_template_hash",
} as const;

/** Price of a model per million tokens. */
export const PriceSchema = z.object({
  input: z.number().nonnegative(),
  output: z.number().nonnegative(),
  /** Price of input tokens read from the provider's cache; defaults to `input`. */
  cachedInput: z.number().nonnegative().optional(),
  currency: z.string().length(3).default("USD"),
});

export const HandlerOptionsSchema = z.object({
  /** The agent that acts: required, an agent is the one thing a handler always knows. */
  agent: AgentIdentitySchema,
  /** Default user; per invocation `auditgraph_user_id` / `auditgraph_tenant_id` in metadata win. */
  user: UserIdentitySchema.optional(),
  sessionId: z.string().min(1).optional(),
  /** Refuse (throw from the callback, failing the run) any run without a user identity. */
  strict: z.boolean().default(false),
  /** One `llm.token` event per streamed token (otherwise tokens are only counted and timed). */
  captureTokens: z.boolean().default(false),
  /** Prices by model name (served version first, then requested name), for the cost on `llm.end`. */
  prices: z.record(z.string(), PriceSchema).default({}),
  /**
   * Fail-closed tools: their `tool.start` returns only once the event is in Redis or the
   * spool on disk, and fails the tool call if it cannot be recorded.
   */
  highImpactTools: z.array(z.string().min(1)).default([]),
  /** Rethrow the handler's own errors into the agent (default: count and log them, never break the agent). */
  raiseError: z.boolean().default(false),
});
export type HandlerOptions = z.input<typeof HandlerOptionsSchema> & {
  /** Applied to every event before it leaves the handler (see Redactor in @auditgraph/core). */
  redactor?: { redactEvent(event: AuditEvent): AuditEvent };
  logger?: Logger;
  /**
   * Policies enforced in this process, before a tool or model call runs: its `block` rules fail
   * the call, its `hold` rules make it wait for `decider` (required when there are any). Each
   * finding is recorded as a `policy.flag` event. `flag` and `escalate` rules are the worker's.
   * `state` holds the counters (budgets, tool errors) of this process; default: in memory.
   * `escalateAt` (escalation-first): an event on which a `flag`/`escalate` rule of this severity
   * or above finds something, or a call a hold rule of that severity holds, is sent at once and
   * ahead of ordinary events (`Transport.expedite`), so its escalation opens without waiting in line.
   */
  inlinePolicies?: { set: PolicySet; decider?: HoldDecider; state?: PolicyState; escalateAt?: Severity };
};

export interface HandlerMetrics {
  /** Events handed to the transport. */
  events: number;
  /** Callbacks that failed inside the handler (the agent was not affected unless raiseError). */
  errors: number;
  /** Runs refused in strict mode. */
  refused: number;
}

/** What a run inherits from its parent and what its end event needs again. */
interface RunContext {
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

/** A refusal the handler means to raise, as opposed to its own failure. */
class AuditRefusal extends Error {
  override readonly name = "AuditRefusal";
}

const ANONYMOUS: Identity["user"] = { id: "anonymous", tenantId: "default" };

const str = (v: unknown): string | undefined => (typeof v === "string" && v.length > 0 ? v : undefined);

const rolesOf = (v: unknown): string[] | undefined =>
  Array.isArray(v) ? v.filter((r): r is string => typeof r === "string" && r.length > 0) : typeof v === "string" && v ? v.split(",").map((r) => r.trim()).filter(Boolean) : undefined;

const errorInfo = (err: unknown) =>
  err instanceof Error ? { name: err.name, message: err.message } : { name: "Error", message: String(err) };

const round = (n: number) => Math.round(n * 1e9) / 1e9;

/**
 * A LangChain callback handler that turns each callback into an audit event and hands it to a
 * transport. Its callbacks do no I/O and never throw into the agent, except where asked to:
 * strict identity, fail-closed tools, inline policies (`block`, `hold`), or `raiseError`.
 */
export class AuditCallbackHandler extends BaseCallbackHandler {
  name = "auditgraph";
  readonly metrics: HandlerMetrics = { events: 0, errors: 0, refused: 0 };
  private readonly runs = new Map<string, RunContext>();
  /** Per trace, the LLM run that ended last: an agent action was parsed from its output. */
  private readonly lastLlmRun = new Map<string, string>();
  private readonly options: z.output<typeof HandlerOptionsSchema>;
  private readonly redactor: HandlerOptions["redactor"];
  private readonly log: Logger;
  private readonly highImpact: Set<string>;
  private readonly rethrowAll: boolean;
  private readonly inline: InlineEnforcer | undefined;

  constructor(
    options: HandlerOptions,
    private readonly transport: Transport & { flush(): Promise<void> },
  ) {
    // Our callbacks are synchronous and cheap: awaiting them costs the agent a microtask and
    // keeps them off LangChain's shared background queue, where a slow peer handler would delay
    // them and an early exit would lose them.
    super({ _awaitHandler: true });
    this.options = parseWith(HandlerOptionsSchema, options, "AuditCallbackHandler options");
    this.redactor = options.redactor;
    this.log = options.logger ?? pino({ name: "auditgraph-handler", level: "warn" }, pino.destination(2));
    this.highImpact = new Set(this.options.highImpactTools);
    this.rethrowAll = this.options.raiseError;
    if (options.inlinePolicies) {
      const { set, decider, state, escalateAt } = options.inlinePolicies;
      if (escalateAt !== undefined && !SeveritySchema.safeParse(escalateAt).success)
        throw new ValidationError("AuditCallbackHandler options", [{ path: "inlinePolicies.escalateAt", message: `must be one of ${SeveritySchema.options.join(", ")}` }]);
      const expedite = transport.expedite?.bind(transport);
      const escalation = escalateAt && expedite ? { minSeverity: escalateAt, onUrgent: expedite } : undefined;
      try {
        this.inline = new InlineEnforcer({ set, ...(decider ? { decider } : {}), ...(state ? { state } : {}), ...(escalation ? { escalation } : {}) });
      } catch (error) {
        throw new ValidationError("AuditCallbackHandler options", [{ path: "inlinePolicies.decider", message: (error as Error).message }]);
      }
    }
    // Deliberate refusals must reach the agent; the handler's own errors are caught before that.
    this.raiseError = true;
    this.awaitHandlers = true;
  }

  flush(): Promise<void> {
    return this.transport.flush();
  }

  close(): Promise<void> {
    return this.transport.close();
  }

  /** Runs a callback body: the handler's own failures are counted and logged, never thrown (unless raiseError). */
  private guard<T>(callback: string, body: () => T): T | undefined {
    try {
      return body();
    } catch (error) {
      if (error instanceof AuditRefusal || error instanceof PolicyRefusal) throw error;
      this.metrics.errors += 1;
      // The message only: an error's text can hold payload values, so no event content is logged.
      this.log.warn({ callback, error: (error as Error).name }, "audit callback failed; the agent goes on");
      if (this.rethrowAll) throw error;
      return undefined;
    }
  }

  private begin(runId: string, parentRunId: string | undefined, metadata: Record<string, unknown> | undefined, name: string | undefined): RunContext {
    const parent = parentRunId ? this.runs.get(parentRunId) : undefined;
    const m = metadata ?? {};
    const base = parent?.identity ?? { user: this.options.user ?? ANONYMOUS, agent: this.options.agent };
    const userId = str(m[METADATA_KEYS.userId]);
    const roles = rolesOf(m[METADATA_KEYS.userRoles]) ?? base.user.roles;
    const anonymous = !userId && (parent ? parent.anonymous : !this.options.user);
    if (anonymous && this.options.strict) {
      this.metrics.refused += 1;
      throw new AuditRefusal(
        `auditgraph (strict): no user identity for this run; set config.metadata.${METADATA_KEYS.userId} and ${METADATA_KEYS.tenantId} on the invocation, or the handler's \`user\` option`,
      );
    }
    const identity: Identity = {
      user: {
        id: userId ?? base.user.id,
        tenantId: str(m[METADATA_KEYS.tenantId]) ?? base.user.tenantId,
        ...(roles?.length ? { roles } : {}),
      },
      agent: {
        id: str(m[METADATA_KEYS.agentId]) ?? base.agent.id,
        name: str(m[METADATA_KEYS.agentName]) ?? base.agent.name,
        version: str(m[METADATA_KEYS.agentVersion]) ?? base.agent.version,
      },
    };
    const context: RunContext = {
      // A parent we never saw (the handler was attached below the root) still groups its children.
      traceId: parent?.traceId ?? parentRunId ?? runId,
      parentRunId: parentRunId ?? null,
      sessionId: str(m[METADATA_KEYS.sessionId]) ?? str(m.thread_id) ?? parent?.sessionId ?? this.options.sessionId ?? null,
      identity,
      anonymous,
      name,
      startedAt: performance.now(),
    };
    this.runs.set(runId, context);
    return context;
  }

  private event(
    type: EventType,
    runId: string,
    payload: unknown,
    extra: { model?: Model; usage?: Usage | undefined; cost?: Cost | undefined; tags?: string[] | undefined } = {},
    end = false,
  ): AuditEvent {
    const context = this.runs.get(runId) ?? this.begin(runId, undefined, undefined, undefined);
    if (end) this.runs.delete(runId);
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
    return this.redactor ? this.redactor.redactEvent(event) : event;
  }

  private emit(...args: Parameters<AuditCallbackHandler["event"]>): AuditEvent {
    const event = this.event(...args);
    this.transport.send(event);
    this.metrics.events += 1;
    // Counters of the inline rules (budgets, tool errors) follow every event; a call's start is
    // evaluated by `enforce` instead, which counts it as well.
    if (this.inline) {
      if (!this.inline.checks(event.type)) this.inline.observe(event);
      // A Set lookup: events no urgent rule looks at cost nothing more.
      if (this.inline.watches(event.type)) this.inline.screen(event);
    }
    return event;
  }

  /** Fail-closed: resolves once the event is in Redis or the spool; a failure refuses the action. */
  private async emitDurably(...args: Parameters<AuditCallbackHandler["event"]>): Promise<AuditEvent> {
    const event = this.emit(...args);
    try {
      await this.transport.flush();
    } catch (error) {
      throw new AuditRefusal(`auditgraph (fail-closed): the audit event could not be made durable, so the action is refused: ${(error as Error).message}`);
    }
    return event;
  }

  /**
   * The inline policies' verdict on a call whose start event was just recorded: its findings
   * become `policy.flag` events; a refused call gets its error event (the run ends there, as
   * LangChain reports no error for a call that never started) and the refusal is thrown.
   * Undefined when no inline rule looks at this event type, so the call is not delayed.
   */
  private enforce(start: AuditEvent, failure: "tool.error" | "llm.error", tags: string[] | undefined): Promise<void> | undefined {
    const inline = this.inline;
    if (!inline?.checks(start.type)) return undefined;
    return (async () => {
      let verdict: InlineVerdict;
      try {
        verdict = await inline.check(start, { onHeld: (held) => this.held(start.runId, held, tags) });
      } catch (error) {
        // Fail closed: these rules guard calls that must not run unchecked.
        verdict = {
          outcomes: [],
          refusal: error instanceof PolicyRefusal ? error : new PolicyRefusal("auditgraph inline policies failed, so the call is refused", []),
        };
      }
      this.guard("policy.flag", () => {
        for (const outcome of verdict.outcomes) this.emit("policy.flag", start.runId, flagPayload(outcome), { tags });
      });
      const refusal = verdict.refusal;
      if (!refusal) return;
      const context = this.runs.get(start.runId);
      const payload = { ...(failure === "tool.error" && context?.toolCallId ? { toolCallId: context.toolCallId } : {}), error: errorInfo(refusal) };
      if (context?.highImpact) await this.emitDurably(failure, start.runId, payload, { tags }, true).catch(() => undefined);
      else this.guard(failure, () => this.emit(failure, start.runId, payload, { tags }, true));
      throw refusal;
    })();
  }

  /**
   * A call is about to wait for a reviewer: its `held` flags go out now, ahead of the linger, so
   * that the worker opens the escalation a reviewer answers while the agent waits. The final
   * `held-*` flag follows once the hold is decided.
   */
  private held(runId: string, held: InlineOutcome[], tags: string[] | undefined): void {
    this.guard("policy.flag", () => {
      let last: AuditEvent | undefined;
      for (const outcome of held) last = this.emit("policy.flag", runId, flagPayload(outcome), { tags });
      if (last) this.transport.expedite?.(last);
    });
  }

  private timing(context: RunContext | undefined) {
    if (!context) return undefined;
    const now = performance.now();
    return {
      latencyMs: round(now - context.startedAt),
      ...(context.firstTokenAt !== undefined ? { timeToFirstTokenMs: round(context.firstTokenAt - context.startedAt) } : {}),
    };
  }

  // @langchain/core declares (…, runId, runType, tags, metadata, runName, parentRunId) but its
  // CallbackManager calls (…, runId, parentRunId, tags, metadata, runType, runName): we follow the call.
  override handleChainStart(
    chain: Serialized,
    inputs: ChainValues,
    runId: string,
    parentRunId?: string,
    tags?: string[],
    metadata?: Record<string, unknown>,
    _runType?: string,
    runName?: string,
  ): void {
    this.guard("handleChainStart", () => {
      this.begin(runId, parentRunId, metadata, runName ?? chain?.id?.at(-1));
      const node = str(metadata?.langgraph_node);
      const step = metadata?.langgraph_step;
      const graph = node ? { node, ...(typeof step === "number" ? { step } : {}) } : undefined;
      this.emit("chain.start", runId, { inputs: toJson(inputs), ...(graph ? { graph } : {}) }, { tags });
    });
  }

  override handleChainEnd(outputs: ChainValues, runId: string, _parentRunId?: string, tags?: string[]): void {
    this.guard("handleChainEnd", () => {
      this.lastLlmRun.delete(runId);
      this.emit("chain.end", runId, { outputs: toJson(outputs) }, { tags }, true);
    });
  }

  override handleChainError(err: unknown, runId: string, _parentRunId?: string, tags?: string[]): void {
    this.guard("handleChainError", () => {
      this.lastLlmRun.delete(runId);
      this.emit("chain.error", runId, { error: errorInfo(err) }, { tags }, true);
    });
  }

  override handleChatModelStart(
    llm: Serialized,
    messages: BaseMessage[][],
    runId: string,
    parentRunId?: string,
    extraParams?: Record<string, unknown>,
    tags?: string[],
    metadata?: Record<string, unknown>,
    runName?: string,
  ): void | Promise<void> {
    return this.guard("handleChatModelStart", () =>
      this.startLLM(llm, messages.flat().map(toMessage), runId, parentRunId, extraParams, tags, metadata, runName),
    );
  }

  override handleLLMStart(
    llm: Serialized,
    prompts: string[],
    runId: string,
    parentRunId?: string,
    extraParams?: Record<string, unknown>,
    tags?: string[],
    metadata?: Record<string, unknown>,
    runName?: string,
  ): void | Promise<void> {
    return this.guard("handleLLMStart", () =>
      this.startLLM(llm, prompts.map((content) => ({ role: "user", content })), runId, parentRunId, extraParams, tags, metadata, runName),
    );
  }

  private startLLM(
    llm: Serialized,
    messages: Message[],
    runId: string,
    parentRunId: string | undefined,
    extraParams: Record<string, unknown> | undefined,
    tags: string[] | undefined,
    metadata: Record<string, unknown> | undefined,
    runName: string | undefined,
  ): Promise<void> | undefined {
    const context = this.begin(runId, parentRunId, metadata, runName);
    const invocation = (extraParams?.invocation_params ?? {}) as Record<string, unknown>;
    const callOptions = (extraParams?.options ?? {}) as Record<string, unknown>;
    const className = llm?.id?.at(-1) ?? "unknown";
    const m = metadata ?? {};
    context.model = {
      provider: str(m.ls_provider) ?? className,
      name: str(m.ls_model_name) ?? str(invocation.model) ?? str(invocation.model_name) ?? className,
      params: paramsOf(invocation, m),
    };
    const boundTools = (callOptions.tools ?? invocation.tools) as unknown[] | undefined;
    const tools = Array.isArray(boundTools) ? boundTools.map(toolDefinitionOf).filter((t) => t !== undefined) : [];
    const toolChoice = callOptions.tool_choice ?? invocation.tool_choice;
    const start = this.emit(
      "llm.start",
      runId,
      {
        messages,
        ...(tools.length ? { tools } : {}),
        ...(toolChoice !== undefined ? { toolChoice: toJson(toolChoice) } : {}),
        ...(str(m[METADATA_KEYS.promptTemplateHash]) ? { templateHash: str(m[METADATA_KEYS.promptTemplateHash])! } : {}),
      },
      { model: context.model, tags },
    );
    return this.enforce(start, "llm.error", tags);
  }

  override handleLLMNewToken(token: string, _idx: unknown, runId: string, _parentRunId?: string, tags?: string[]): void {
    this.guard("handleLLMNewToken", () => {
      const context = this.runs.get(runId);
      if (!context) return;
      context.firstTokenAt ??= performance.now();
      const index = context.tokens ?? 0;
      context.tokens = index + 1;
      // Redaction sees one token at a time and would miss a value split across tokens, so with a
      // redactor the token's text stays in the process; llm.end carries the whole, redacted output.
      if (this.options.captureTokens) this.emit("llm.token", runId, { index, token: this.redactor ? "" : token }, { tags });
    });
  }

  override handleLLMEnd(output: LLMResult, runId: string, _parentRunId?: string, tags?: string[]): void {
    this.guard("handleLLMEnd", () => {
      const context = this.runs.get(runId);
      const generation = output.generations.at(-1)?.at(-1) as ChatGeneration | undefined;
      const message = generation?.message;
      const requested = context?.model;
      const meta = (message?.response_metadata ?? {}) as Record<string, unknown>;
      const served = str(meta.model_name) ?? str(meta.model) ?? str(meta.modelId) ?? requested?.name ?? "unknown";
      const fingerprint = str(meta.system_fingerprint);
      const usage = usageOf(message, output.llmOutput);
      const cost = this.costOf(usage, served, requested?.name);
      const finishReason = str(meta.finish_reason) ?? str(meta.stop_reason) ?? str((generation?.generationInfo as Record<string, unknown> | undefined)?.finish_reason);
      if (context) this.lastLlmRun.set(context.traceId, runId);
      const toolCalls = message ? toolCallsOf(message) : [];
      const reasoning = message ? reasoningOf(message, toolCalls) : [];
      this.emit(
        "llm.end",
        runId,
        {
          output: {
            text: message ? message.text : (generation?.text ?? ""),
            toolCalls,
            ...(finishReason ? { finishReason } : {}),
          },
          ...(reasoning.length ? { reasoning } : {}),
          timing: this.timing(context),
          ...(context?.tokens ? { streamed: { tokens: context.tokens } } : {}),
        },
        {
          tags,
          usage,
          cost,
          model: {
            provider: requested?.provider ?? "unknown",
            name: requested?.name ?? served,
            version: served,
            ...(fingerprint ? { fingerprint } : {}),
            params: {},
          },
        },
        true,
      );
    });
  }

  private costOf(usage: Usage | undefined, served: string, requested: string | undefined): Cost | undefined {
    const price = this.options.prices[served] ?? (requested ? this.options.prices[requested] : undefined);
    if (!usage || !price) return undefined;
    const cached = usage.cacheReadTokens ?? 0;
    const input = ((usage.inputTokens - cached) * price.input + cached * (price.cachedInput ?? price.input)) / 1e6;
    const output = (usage.outputTokens * price.output) / 1e6;
    return { currency: price.currency, input: round(input), output: round(output), total: round(input + output) };
  }

  override handleLLMError(err: unknown, runId: string, _parentRunId?: string, tags?: string[]): void {
    this.guard("handleLLMError", () => this.emit("llm.error", runId, { error: errorInfo(err) }, { tags }, true));
  }

  override handleToolStart(
    tool: Serialized,
    input: string,
    runId: string,
    parentRunId?: string,
    tags?: string[],
    metadata?: Record<string, unknown>,
    runName?: string,
    toolCallId?: string,
  ): void | Promise<void> {
    return this.guard("handleToolStart", () => {
      const name = runName ?? tool?.id?.at(-1);
      const context = this.begin(runId, parentRunId, metadata, name);
      if (toolCallId) context.toolCallId = toolCallId;
      const payload = { ...(toolCallId ? { toolCallId } : {}), input: toJson(input) };
      if (name && this.highImpact.has(name)) {
        context.highImpact = true;
        return this.emitDurably("tool.start", runId, payload, { tags }).then((start) => this.enforce(start, "tool.error", tags));
      }
      return this.enforce(this.emit("tool.start", runId, payload, { tags }), "tool.error", tags);
    });
  }

  override handleToolEnd(output: unknown, runId: string, _parentRunId?: string, tags?: string[]): void | Promise<void> {
    return this.guard("handleToolEnd", () => {
      const context = this.runs.get(runId);
      const value = ToolMessage.isInstance(output) ? output.content : output;
      const payload = { ...(context?.toolCallId ? { toolCallId: context.toolCallId } : {}), output: toJson(value), timing: this.timing(context) };
      if (context?.highImpact) return this.emitDurably("tool.end", runId, payload, { tags }, true).then(() => undefined);
      this.emit("tool.end", runId, payload, { tags }, true);
      return undefined;
    });
  }

  override handleToolError(err: unknown, runId: string, _parentRunId?: string, tags?: string[]): void | Promise<void> {
    return this.guard("handleToolError", () => {
      const context = this.runs.get(runId);
      const payload = { ...(context?.toolCallId ? { toolCallId: context.toolCallId } : {}), error: errorInfo(err) };
      if (context?.highImpact) return this.emitDurably("tool.error", runId, payload, { tags }, true).then(() => undefined);
      this.emit("tool.error", runId, payload, { tags }, true);
      return undefined;
    });
  }

  override handleRetrieverStart(
    retriever: Serialized,
    query: string,
    runId: string,
    parentRunId?: string,
    tags?: string[],
    metadata?: Record<string, unknown>,
    name?: string,
  ): void {
    this.guard("handleRetrieverStart", () => {
      this.begin(runId, parentRunId, metadata, name ?? retriever?.id?.at(-1));
      this.emit("retriever.start", runId, { query }, { tags });
    });
  }

  override handleRetrieverEnd(documents: DocumentInterface[], runId: string, _parentRunId?: string, tags?: string[]): void {
    this.guard("handleRetrieverEnd", () => {
      const docs = documents.map((d) => ({
        ...(d.id ? { id: d.id } : {}),
        pageContent: d.pageContent,
        metadata: toJson(d.metadata ?? {}) as Record<string, never>,
      }));
      this.emit("retriever.end", runId, { documents: docs, timing: this.timing(this.runs.get(runId)) }, { tags }, true);
    });
  }

  override handleRetrieverError(err: unknown, runId: string, _parentRunId?: string, tags?: string[]): void {
    this.guard("handleRetrieverError", () => this.emit("retriever.error", runId, { error: errorInfo(err) }, { tags }, true));
  }

  override handleAgentAction(action: AgentAction, runId: string, _parentRunId?: string, tags?: string[]): void {
    this.guard("handleAgentAction", () => {
      const traceId = this.runs.get(runId)?.traceId;
      const llmRunId = traceId ? this.lastLlmRun.get(traceId) : undefined;
      this.emit(
        "agent.action",
        runId,
        { tool: action.tool, toolInput: toJson(action.toolInput), log: action.log, ...(llmRunId ? { llmRunId } : {}) },
        { tags },
      );
    });
  }

  override handleAgentEnd(action: AgentFinish, runId: string, _parentRunId?: string, tags?: string[]): void {
    this.guard("handleAgentEnd", () =>
      this.emit("agent.finish", runId, { returnValues: toJson(action.returnValues), log: action.log }, { tags }),
    );
  }

  override handleText(text: string, runId: string, _parentRunId?: string, tags?: string[]): void {
    this.guard("handleText", () => this.emit("text", runId, { text }, { tags }));
  }

  override handleCustomEvent(eventName: string, data: unknown, runId: string, tags?: string[], metadata?: Record<string, unknown>): void {
    this.guard("handleCustomEvent", () => {
      if (!this.runs.has(runId)) this.begin(runId, undefined, metadata, undefined);
      this.emit("custom", runId, { name: eventName, data: toJson(data) }, { tags });
    });
  }
}
