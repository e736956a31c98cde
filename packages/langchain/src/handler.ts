import { BaseCallbackHandler } from "@langchain/core/callbacks/base";
import type { Serialized } from "@langchain/core/load/serializable";
import { ToolMessage, type BaseMessage } from "@langchain/core/messages";
import type { LLMResult, ChatGeneration } from "@langchain/core/outputs";
import type { ChainValues } from "@langchain/core/utils/types";
import { z } from "zod";
import {
  AgentIdentitySchema,
  SCHEMA_VERSION,
  UserIdentitySchema,
  hashCanonical,
  newEventId,
  parseWith,
  type AuditEvent,
  type EventType,
  type Identity,
  type Model,
} from "@auditgraph/core";
import { toJson, toMessage, toolCallsOf } from "./serialize.js";
import type { Transport } from "./transport.js";

/**
 * Keys read from `config.metadata` of an invocation (LangChain passes metadata down to every
 * child run). They override the handler's defaults for that invocation.
 */
export const METADATA_KEYS = {
  userId: "auditgraph_user_id",
  tenantId: "auditgraph_tenant_id",
  sessionId: "auditgraph_session_id",
  agentId: "auditgraph_agent_id",
  agentName: "auditgraph_agent_name",
  agentVersion: "auditgraph_agent_version",
} as const;

export const HandlerOptionsSchema = z.object({
  /** The agent that acts: required, an agent is the one thing a handler always knows. */
  agent: AgentIdentitySchema,
  /** Default user; per invocation `auditgraph_user_id` / `auditgraph_tenant_id` in metadata win. */
  user: UserIdentitySchema.optional(),
  sessionId: z.string().min(1).optional(),
});
export type HandlerOptions = z.input<typeof HandlerOptionsSchema>;

/** What a run inherits from its parent and what its end event needs again. */
interface RunContext {
  traceId: string;
  parentRunId: string | null;
  sessionId: string | null;
  identity: Identity;
  name: string | undefined;
  model?: Model;
  toolCallId?: string;
}

const ANONYMOUS = { id: "anonymous", tenantId: "default" };

const str = (v: unknown): string | undefined => (typeof v === "string" && v.length > 0 ? v : undefined);

const errorInfo = (err: unknown) =>
  err instanceof Error ? { name: err.name, message: err.message } : { name: "Error", message: String(err) };

/**
 * A LangChain callback handler that turns each callback into an audit event and hands it to a
 * transport. It never awaits I/O: `send` pushes to memory and returns.
 */
export class AuditCallbackHandler extends BaseCallbackHandler {
  name = "auditgraph";
  private readonly runs = new Map<string, RunContext>();
  private readonly options: z.output<typeof HandlerOptionsSchema>;

  constructor(
    options: HandlerOptions,
    private readonly transport: Transport,
  ) {
    super();
    this.options = parseWith(HandlerOptionsSchema, options, "AuditCallbackHandler options");
  }

  flush(): Promise<void> {
    return this.transport.flush();
  }

  close(): Promise<void> {
    return this.transport.close();
  }

  private begin(
    runId: string,
    parentRunId: string | undefined,
    metadata: Record<string, unknown> | undefined,
    name: string | undefined,
  ): RunContext {
    const parent = parentRunId ? this.runs.get(parentRunId) : undefined;
    const m = metadata ?? {};
    const inherited = parent?.identity ?? {
      user: this.options.user ?? ANONYMOUS,
      agent: this.options.agent,
    };
    const identity: Identity = {
      user: {
        id: str(m[METADATA_KEYS.userId]) ?? inherited.user.id,
        tenantId: str(m[METADATA_KEYS.tenantId]) ?? inherited.user.tenantId,
      },
      agent: {
        id: str(m[METADATA_KEYS.agentId]) ?? inherited.agent.id,
        name: str(m[METADATA_KEYS.agentName]) ?? inherited.agent.name,
        version: str(m[METADATA_KEYS.agentVersion]) ?? inherited.agent.version,
      },
    };
    const context: RunContext = {
      // A parent we never saw (the handler was attached below the root) still groups its children.
      traceId: parent?.traceId ?? parentRunId ?? runId,
      parentRunId: parentRunId ?? null,
      sessionId:
        str(m[METADATA_KEYS.sessionId]) ?? str(m.thread_id) ?? parent?.sessionId ?? this.options.sessionId ?? null,
      identity,
      name,
    };
    this.runs.set(runId, context);
    return context;
  }

  private emit(
    type: EventType,
    runId: string,
    payload: unknown,
    extra: { model?: Model; usage?: unknown; tags?: string[] | undefined } = {},
    end = false,
  ): void {
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
      payload,
    } as AuditEvent;
    this.transport.send(event);
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
    this.begin(runId, parentRunId, metadata, runName ?? chain?.id?.at(-1));
    this.emit("chain.start", runId, { inputs: toJson(inputs) }, { tags });
  }

  override handleChainEnd(outputs: ChainValues, runId: string, _parentRunId?: string, tags?: string[]): void {
    this.emit("chain.end", runId, { outputs: toJson(outputs) }, { tags }, true);
  }

  override handleChainError(err: unknown, runId: string, _parentRunId?: string, tags?: string[]): void {
    this.emit("chain.error", runId, { error: errorInfo(err) }, { tags }, true);
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
  ): void {
    this.startLLM(llm, messages.flat().map(toMessage), runId, parentRunId, extraParams, tags, metadata, runName);
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
  ): void {
    const messages = prompts.map((content) => ({ role: "user", content }));
    this.startLLM(llm, messages, runId, parentRunId, extraParams, tags, metadata, runName);
  }

  private startLLM(
    llm: Serialized,
    messages: ReturnType<typeof toMessage>[],
    runId: string,
    parentRunId: string | undefined,
    extraParams: Record<string, unknown> | undefined,
    tags: string[] | undefined,
    metadata: Record<string, unknown> | undefined,
    runName: string | undefined,
  ): void {
    const context = this.begin(runId, parentRunId, metadata, runName);
    const params = (extraParams?.invocation_params ?? {}) as Record<string, unknown>;
    const className = llm?.id?.at(-1) ?? "unknown";
    const m = metadata ?? {};
    context.model = {
      provider: str(m.ls_provider) ?? className,
      name: str(m.ls_model_name) ?? str(params.model) ?? str(params.model_name) ?? className,
      params: toJson(params) as Record<string, never>,
    };
    this.emit("llm.start", runId, { messages, promptHash: hashCanonical(messages) }, { model: context.model, tags });
  }

  override handleLLMEnd(output: LLMResult, runId: string, _parentRunId?: string, tags?: string[]): void {
    const generation = output.generations.at(-1)?.at(-1) as ChatGeneration | undefined;
    const message = generation?.message;
    const requested = this.runs.get(runId)?.model;
    const meta = (message?.response_metadata ?? {}) as Record<string, unknown>;
    const served = str(meta.model_name) ?? str(meta.model) ?? requested?.name ?? "unknown";
    const usage = message && "usage_metadata" in message ? (message.usage_metadata as Record<string, number> | undefined) : undefined;
    const tokenUsage = output.llmOutput?.tokenUsage as Record<string, number> | undefined;
    const inputTokens = usage?.input_tokens ?? tokenUsage?.promptTokens;
    const outputTokens = usage?.output_tokens ?? tokenUsage?.completionTokens;
    this.emit(
      "llm.end",
      runId,
      {
        output: {
          text: message ? message.text : (generation?.text ?? ""),
          toolCalls: message ? toolCallsOf(message) : [],
        },
      },
      {
        tags,
        model: {
          provider: requested?.provider ?? "unknown",
          name: requested?.name ?? served,
          version: served,
          params: {},
        },
        usage:
          inputTokens !== undefined || outputTokens !== undefined
            ? {
                inputTokens: inputTokens ?? 0,
                outputTokens: outputTokens ?? 0,
                totalTokens: usage?.total_tokens ?? tokenUsage?.totalTokens ?? (inputTokens ?? 0) + (outputTokens ?? 0),
              }
            : undefined,
      },
      true,
    );
  }

  override handleLLMError(err: unknown, runId: string, _parentRunId?: string, tags?: string[]): void {
    this.emit("llm.error", runId, { error: errorInfo(err) }, { tags }, true);
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
  ): void {
    const context = this.begin(runId, parentRunId, metadata, runName ?? tool?.id?.at(-1));
    if (toolCallId) context.toolCallId = toolCallId;
    this.emit("tool.start", runId, { ...(toolCallId ? { toolCallId } : {}), input: toJson(input) }, { tags });
  }

  override handleToolEnd(output: unknown, runId: string, _parentRunId?: string, tags?: string[]): void {
    const toolCallId = this.runs.get(runId)?.toolCallId;
    const value = ToolMessage.isInstance(output) ? output.content : output;
    this.emit("tool.end", runId, { ...(toolCallId ? { toolCallId } : {}), output: toJson(value) }, { tags }, true);
  }

  override handleToolError(err: unknown, runId: string, _parentRunId?: string, tags?: string[]): void {
    const toolCallId = this.runs.get(runId)?.toolCallId;
    this.emit("tool.error", runId, { ...(toolCallId ? { toolCallId } : {}), error: errorInfo(err) }, { tags }, true);
  }
}
