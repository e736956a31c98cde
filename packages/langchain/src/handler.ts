import { performance } from "node:perf_hooks";
import { BaseCallbackHandler } from "@langchain/core/callbacks/base";
import type { AgentAction, AgentFinish } from "@langchain/core/agents";
import type { DocumentInterface } from "@langchain/core/documents";
import type { Serialized } from "@langchain/core/load/serializable";
import { ToolMessage, type BaseMessage } from "@langchain/core/messages";
import type { LLMResult } from "@langchain/core/outputs";
import type { ChainValues } from "@langchain/core/utils/types";
import { pino, type Logger } from "pino";
import type { z } from "zod";
import { logLevelOf, parseWith, type AuditEvent, type EventType, type Message } from "@auditgraph/core";
import { Redactor } from "@auditgraph/redaction";
import { HandlerOptionsSchema, type EventRedactor, type HandlerOptions } from "./handler-options.js";
import { AUDIT_REFUSAL_CODES, AuditRefusal, isRefusal } from "./errors.js";
import { buildEvent, errorInfo, llmEndOf, llmStartOf, timing, type EventExtra, type RunContext } from "./events.js";
import { identityRequired, resolveIdentity, str } from "./identity.js";
import { InlineGate } from "./inline-gate.js";
import { toJson, toMessage } from "./serialize.js";
import { QueueTransport } from "./transport.js";
import type { Transport } from "./transport-contract.js";

export { METADATA_KEYS } from "./identity.js";

export interface HandlerMetrics {
  /** Events handed to the transport. */
  events: number;
  /** Callbacks that failed inside the handler (the agent was not affected unless raiseError). */
  errors: number;
  /** Runs refused in strict mode. */
  refused: number;
}

/** A model call's start, as both LangChain callbacks (chat model and text LLM) report it. */
interface LlmStart {
  llm: Serialized;
  messages: Message[];
  runId: string;
  parentRunId: string | undefined;
  extraParams: Record<string, unknown> | undefined;
  tags: string[] | undefined;
  metadata: Record<string, unknown> | undefined;
  runName: string | undefined;
}

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
  private readonly redactor: EventRedactor | undefined;
  private readonly log: Logger;
  private readonly highImpact: Set<string>;
  /**
   * The `raiseError` option: rethrow the handler's own failures into the agent. (LangChain's
   * `this.raiseError` is always true here, so that deliberate refusals reach the agent.)
   */
  private readonly rethrowOwnErrors: boolean;
  private readonly gate: InlineGate | undefined;
  private readonly transport: Transport;

  /**
   * `transport` defaults to a `QueueTransport` configured from the environment (the worker's
   * AUDITGRAPH_REDIS_URL, AUDITGRAPH_QUEUE, ...), made only once the options are valid.
   */
  constructor(options: HandlerOptions, transport?: Transport) {
    // Our callbacks are synchronous and cheap: awaiting them costs the agent a microtask and
    // keeps them off LangChain's shared background queue, where a slow peer handler would delay
    // them and an early exit would lose them.
    super({ _awaitHandler: true });
    this.options = parseWith(HandlerOptionsSchema, options, "AuditCallbackHandler options");
    this.transport = transport ?? new QueueTransport();
    // Secrets never leave in clear by default; only an explicit `false` sends events as captured.
    this.redactor = this.options.redactor === false ? undefined : (this.options.redactor ?? new Redactor());
    this.log = this.options.logger ?? pino({ name: "auditgraph-handler", level: logLevelOf() }, pino.destination(2));
    this.highImpact = new Set(this.options.highImpactTools);
    this.rethrowOwnErrors = this.options.raiseError;
    if (this.options.inlinePolicies) {
      this.gate = new InlineGate(this.options.inlinePolicies, this.transport, {
        emit: (type, runId, payload, extra) => this.emit(type, runId, payload, extra),
        emitDurably: (type, runId, payload, extra) => this.emitDurably(type, runId, payload, extra),
        guard: (callback, body) => this.guard(callback, body),
        context: (runId) => this.runs.get(runId),
      });
    }
    // Deliberate refusals must reach the agent; the handler's own errors are caught before that.
    this.raiseError = true;
    this.awaitHandlers = true;
  }

  /** Resolves once every event recorded so far is durable, after the inline rules' screening of them (which may expedite some). */
  async flush(): Promise<void> {
    await this.gate?.settled();
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
      if (isRefusal(error)) throw error;
      this.metrics.errors += 1;
      // The message only: an error's text can hold payload values, so no event content is logged.
      this.log.warn({ callback, error: (error as Error).name }, "audit callback failed; the agent goes on");
      if (this.rethrowOwnErrors) throw error;
      return undefined;
    }
  }

  private begin(runId: string, parentRunId: string | undefined, metadata: Record<string, unknown> | undefined, name: string | undefined): RunContext {
    const parent = parentRunId ? this.runs.get(parentRunId) : undefined;
    const { identity, anonymous, sessionId } = resolveIdentity(parent, metadata, this.options);
    if (anonymous && this.options.strict) {
      this.metrics.refused += 1;
      throw identityRequired();
    }
    const context: RunContext = {
      // A parent we never saw (the handler was attached below the root) still groups its children.
      traceId: parent?.traceId ?? parentRunId ?? runId,
      parentRunId: parentRunId ?? null,
      sessionId,
      identity,
      anonymous,
      name,
      startedAt: performance.now(),
    };
    this.runs.set(runId, context);
    return context;
  }

  private event(type: EventType, runId: string, payload: unknown, extra: EventExtra = {}): AuditEvent {
    const context = this.runs.get(runId) ?? this.begin(runId, undefined, undefined, undefined);
    if (extra.end) this.runs.delete(runId);
    return buildEvent(context, type, runId, payload, extra, this.redactor);
  }

  private emit(type: EventType, runId: string, payload: unknown, extra: EventExtra = {}): AuditEvent {
    const event = this.event(type, runId, payload, extra);
    this.transport.send(event);
    this.metrics.events += 1;
    this.gate?.observe(event);
    return event;
  }

  /** Fail-closed: resolves once the event is in Redis or the spool; a failure refuses the action. */
  private async emitDurably(type: EventType, runId: string, payload: unknown, extra: EventExtra = {}): Promise<AuditEvent> {
    const event = this.emit(type, runId, payload, extra);
    try {
      await this.transport.flush();
    } catch (error) {
      throw new AuditRefusal(
        AUDIT_REFUSAL_CODES.notDurable,
        `auditgraph (fail-closed): the audit event could not be made durable, so the action is refused: ${(error as Error).message}`,
      );
    }
    return event;
  }

  /** The inline policies' verdict on a call whose start event was just recorded (see `InlineGate.enforce`). */
  private enforce(start: AuditEvent, failure: "tool.error" | "llm.error", tags: string[] | undefined): Promise<void> | undefined {
    return this.gate?.enforce(start, failure, tags);
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
      this.emit("chain.end", runId, { outputs: toJson(outputs) }, { tags, end: true });
    });
  }

  override handleChainError(err: unknown, runId: string, _parentRunId?: string, tags?: string[]): void {
    this.guard("handleChainError", () => {
      this.lastLlmRun.delete(runId);
      this.emit("chain.error", runId, { error: errorInfo(err) }, { tags, end: true });
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
      this.startLLM({ llm, messages: messages.flat().map(toMessage), runId, parentRunId, extraParams, tags, metadata, runName }),
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
      this.startLLM({ llm, messages: prompts.map((content) => ({ role: "user", content })), runId, parentRunId, extraParams, tags, metadata, runName }),
    );
  }

  private startLLM({ llm, messages, runId, parentRunId, extraParams, tags, metadata, runName }: LlmStart): Promise<void> | undefined {
    const context = this.begin(runId, parentRunId, metadata, runName);
    const { model, payload } = llmStartOf(llm, messages, extraParams, metadata);
    context.model = model;
    const start = this.emit("llm.start", runId, payload, { model, tags });
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
      const { payload, extra } = llmEndOf(output, context, this.options.prices);
      if (context) this.lastLlmRun.set(context.traceId, runId);
      this.emit("llm.end", runId, payload, { ...extra, tags, end: true });
    });
  }

  override handleLLMError(err: unknown, runId: string, _parentRunId?: string, tags?: string[]): void {
    this.guard("handleLLMError", () => this.emit("llm.error", runId, { error: errorInfo(err) }, { tags, end: true }));
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
      const payload = { ...(context?.toolCallId ? { toolCallId: context.toolCallId } : {}), output: toJson(value), timing: timing(context) };
      if (context?.highImpact) return this.emitDurably("tool.end", runId, payload, { tags, end: true }).then(() => undefined);
      this.emit("tool.end", runId, payload, { tags, end: true });
      return undefined;
    });
  }

  override handleToolError(err: unknown, runId: string, _parentRunId?: string, tags?: string[]): void | Promise<void> {
    return this.guard("handleToolError", () => {
      const context = this.runs.get(runId);
      const payload = { ...(context?.toolCallId ? { toolCallId: context.toolCallId } : {}), error: errorInfo(err) };
      if (context?.highImpact) return this.emitDurably("tool.error", runId, payload, { tags, end: true }).then(() => undefined);
      this.emit("tool.error", runId, payload, { tags, end: true });
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
      this.emit("retriever.end", runId, { documents: docs, timing: timing(this.runs.get(runId)) }, { tags, end: true });
    });
  }

  override handleRetrieverError(err: unknown, runId: string, _parentRunId?: string, tags?: string[]): void {
    this.guard("handleRetrieverError", () => this.emit("retriever.error", runId, { error: errorInfo(err) }, { tags, end: true }));
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
    this.guard("handleAgentEnd", () => this.emit("agent.finish", runId, { returnValues: toJson(action.returnValues), log: action.log }, { tags }));
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
