import { AIMessage, type BaseMessage } from "@langchain/core/messages";
import type { ReasoningStep, ToolCallRequest, ToolDefinition, Usage } from "@auditgraph/core";
import { toJson } from "./serialize.js";

type Json = ReturnType<typeof toJson>;
const str = (v: unknown): string | undefined => (typeof v === "string" && v.length > 0 ? v : undefined);
const num = (v: unknown): number | undefined => (typeof v === "number" && Number.isFinite(v) ? v : undefined);

/**
 * The model's reasoning in the order it was produced: reasoning/thinking content blocks,
 * `additional_kwargs.reasoning_content`, then the tool calls it asked for.
 */
export function reasoningOf(message: BaseMessage, toolCalls: ToolCallRequest[]): ReasoningStep[] {
  const steps: ReasoningStep[] = [];
  const push = (step: Omit<ReasoningStep, "index">) => steps.push({ index: steps.length, ...step });
  if (Array.isArray(message.content)) {
    for (const block of message.content as Record<string, unknown>[]) {
      const text = block.type === "reasoning" ? (str(block.reasoning) ?? str(block.text)) : block.type === "thinking" ? str(block.thinking) : undefined;
      if (text) push({ kind: "reasoning", text });
    }
  }
  const kwargs = message.additional_kwargs as Record<string, unknown> | undefined;
  const extra = str(kwargs?.reasoning_content) ?? str((kwargs?.reasoning as Record<string, unknown> | undefined)?.summary);
  if (extra && !steps.some((s) => s.text === extra)) push({ kind: "reasoning", text: extra });
  for (const toolCall of toolCalls) push({ kind: "tool_call", toolCall });
  return steps;
}

/** Token usage from `usage_metadata` (with cache and reasoning details), else `llmOutput.tokenUsage`. */
export function usageOf(message: BaseMessage | undefined, llmOutput: Record<string, unknown> | undefined): Usage | undefined {
  const meta = message && AIMessage.isInstance(message) ? message.usage_metadata : undefined;
  if (meta) {
    const cacheRead = num(meta.input_token_details?.cache_read);
    const cacheCreation = num(meta.input_token_details?.cache_creation);
    const reasoning = num(meta.output_token_details?.reasoning);
    return {
      inputTokens: meta.input_tokens,
      outputTokens: meta.output_tokens,
      totalTokens: meta.total_tokens ?? meta.input_tokens + meta.output_tokens,
      ...(cacheRead !== undefined ? { cacheReadTokens: cacheRead } : {}),
      ...(cacheCreation !== undefined ? { cacheCreationTokens: cacheCreation } : {}),
      ...(reasoning !== undefined ? { reasoningTokens: reasoning } : {}),
    };
  }
  const t = llmOutput?.tokenUsage as Record<string, unknown> | undefined;
  const input = num(t?.promptTokens);
  const output = num(t?.completionTokens);
  if (input === undefined && output === undefined) return undefined;
  return { inputTokens: input ?? 0, outputTokens: output ?? 0, totalTokens: num(t?.totalTokens) ?? (input ?? 0) + (output ?? 0) };
}

/** A bound tool in any provider's format (OpenAI, Anthropic, Bedrock, a LangChain tool) as name, description, JSON schema. */
export function toolDefinitionOf(tool: unknown): ToolDefinition | undefined {
  if (!tool || typeof tool !== "object") return undefined;
  const t = tool as Record<string, unknown>;
  const fn = (t.function ?? (t.toolSpec as Record<string, unknown> | undefined) ?? t) as Record<string, unknown>;
  const name = str(fn.name);
  if (!name) return undefined;
  const parameters = fn.parameters ?? fn.input_schema ?? fn.inputSchema ?? (t.schema && typeof t.schema === "object" ? schemaOf(t.schema) : undefined);
  return {
    name,
    ...(str(fn.description) ? { description: str(fn.description)! } : {}),
    ...(parameters !== undefined ? { parameters: toJson(parameters) } : {}),
  };
}

function schemaOf(schema: object): Json {
  // zod 4 schemas describe themselves; older ones and plain JSON schemas go through as JSON.
  const z4 = schema as { toJSONSchema?: () => unknown };
  try {
    return toJson(typeof z4.toJSONSchema === "function" ? z4.toJSONSchema() : schema);
  } catch {
    return null;
  }
}

const SAMPLING: Record<string, string> = {
  ls_temperature: "temperature",
  ls_max_tokens: "max_tokens",
  ls_stop: "stop",
};

/**
 * Invocation parameters as the model reports them, with LangSmith's `ls_*` sampling hints
 * filled in where the model did not report them; tools and tool choice are taken out (they
 * are recorded on their own).
 */
export function paramsOf(invocation: Record<string, unknown>, metadata: Record<string, unknown>): Record<string, Json> {
  const params: Record<string, Json> = {};
  for (const [key, value] of Object.entries(invocation)) {
    if (key !== "tools" && key !== "tool_choice" && value !== undefined) params[key] = toJson(value);
  }
  for (const [hint, key] of Object.entries(SAMPLING)) {
    if (params[key] === undefined && metadata[hint] !== undefined) params[key] = toJson(metadata[hint]);
  }
  return params;
}
