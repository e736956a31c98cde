import type { Document, EventOf, Message, Model, ReasoningStep, ToolCallRequest, ToolDefinition } from "@auditgraph/core";
import { GEN_AI } from "./attributes.js";

// Content in the GenAI conventions' JSON schemas (gen-ai-input-messages.json, -output-messages.json,
// -system-instructions.json): a message is `{role, parts: [...]}`, a part `{type: "text", content}`,
// `{type: "tool_call", id, name, arguments}`, `{type: "tool_call_response", id, response}`,
// `{type: "reasoning", content}`, or a generic `{type, ...}` for what a provider sent otherwise.

type Part = Record<string, unknown> & { type: string };
interface GenAiMessage {
  role: string;
  parts: Part[];
  name?: string;
  finish_reason?: string;
}

/** LangChain's roles (`human`, `ai`) under the conventions' names; ours are already `user`, `assistant`. */
const ROLES: Record<string, string> = { human: "user", ai: "assistant", function: "tool", generic: "user" };
const roleOf = (role: string): string => ROLES[role] ?? role;

/** A content block (LangChain's or a provider's) as a part: text as text, anything else kept whole. */
function partOf(block: unknown): Part {
  if (typeof block === "string") return { type: "text", content: block };
  if (typeof block === "object" && block !== null && !Array.isArray(block)) {
    const b = block as Record<string, unknown>;
    if (b.type === "text" && typeof b.text === "string") return { type: "text", content: b.text };
    if ((b.type === "reasoning" || b.type === "thinking") && typeof (b.reasoning ?? b.thinking) === "string")
      return { type: "reasoning", content: (b.reasoning ?? b.thinking) as string };
    return { ...b, type: typeof b.type === "string" ? b.type : "unknown" };
  }
  // null (redacted whole, or empty) and other JSON: no part says nothing was there, so it is kept as text.
  return { type: "text", content: block === null ? "" : JSON.stringify(block) };
}

const contentParts = (content: unknown): Part[] => (Array.isArray(content) ? content.map(partOf) : content === "" ? [] : [partOf(content)]);

const toolCallPart = (call: ToolCallRequest): Part => ({ type: "tool_call", ...(call.id ? { id: call.id } : {}), name: call.name, arguments: call.args });

/** One recorded message: a tool's answer becomes a `tool_call_response` part, the model's calls `tool_call` parts. */
function messageOf(message: Message): GenAiMessage {
  const role = roleOf(message.role);
  const parts =
    role === "tool"
      ? [{ type: "tool_call_response", ...(message.toolCallId ? { id: message.toolCallId } : {}), response: message.content }]
      : contentParts(message.content);
  for (const call of message.toolCalls ?? []) parts.push(toolCallPart(call));
  return { role, parts, ...(message.name ? { name: message.name } : {}) };
}

/** `gen_ai.input.messages` of an `llm.start`: every message as recorded (system ones included, in their place). */
export const inputMessagesOf = (messages: readonly Message[]): string => JSON.stringify(messages.map(messageOf));

/**
 * `gen_ai.output.messages` of an `llm.end`: one assistant message, its reasoning first, then its
 * text and the tool calls it asked for. `finish_reason` is required by the schema: when the
 * producer did not record one it is `tool_call` for a message that asked for tools, else `stop`.
 */
export function outputMessagesOf(payload: EventOf<"llm.end">["payload"]): string {
  const { output, reasoning } = payload;
  const parts: Part[] = reasoningParts(reasoning);
  if (output.text !== "") parts.push({ type: "text", content: output.text });
  for (const call of output.toolCalls) parts.push(toolCallPart(call));
  const finish = output.finishReason ?? (output.toolCalls.length > 0 ? "tool_call" : "stop");
  return JSON.stringify([{ role: "assistant", parts, finish_reason: finish }]);
}

const reasoningParts = (steps: readonly ReasoningStep[] | undefined): Part[] =>
  (steps ?? []).filter((s) => s.kind !== "tool_call" && s.text !== undefined).map((s) => ({ type: "reasoning", content: s.text }));

/** `gen_ai.tool.definitions`: the tools the model was offered, as function definitions. */
export const toolDefinitionsOf = (tools: readonly ToolDefinition[]): string =>
  JSON.stringify(
    tools.map((t) => ({
      type: "function",
      name: t.name,
      ...(t.description ? { description: t.description } : {}),
      ...(t.parameters ? { parameters: t.parameters } : {}),
    })),
  );

/** `gen_ai.retrieval.documents`: each document's id and content as recorded. */
export const documentsOf = (documents: readonly Document[]): string =>
  JSON.stringify(documents.map((d) => ({ ...(d.id ? { id: d.id } : {}), content: d.pageContent, metadata: d.metadata })));

/** A value as an attribute: strings as they are, anything else as JSON (the conventions' "any" is a JSON string on the wire). */
export const jsonText = (value: unknown): string => (typeof value === "string" ? value : JSON.stringify(value ?? null));

const num = (v: unknown): number | undefined => (typeof v === "number" && Number.isFinite(v) ? v : undefined);
const int = (v: unknown): number | undefined => (Number.isInteger(v) ? (v as number) : undefined);

/** The request parameters the conventions name, read from `model.params` under the names LangChain's providers use. */
export function requestParamsOf(params: Model["params"]): Record<string, number | string[]> {
  const p = params as Record<string, unknown>;
  const out: Record<string, number | string[] | undefined> = {
    [GEN_AI.requestTemperature]: num(p.temperature),
    [GEN_AI.requestTopP]: num(p.top_p ?? p.topP),
    [GEN_AI.requestTopK]: num(p.top_k ?? p.topK),
    [GEN_AI.requestMaxTokens]: int(p.max_tokens ?? p.maxTokens ?? p.max_completion_tokens),
    [GEN_AI.requestFrequencyPenalty]: num(p.frequency_penalty ?? p.frequencyPenalty),
    [GEN_AI.requestPresencePenalty]: num(p.presence_penalty ?? p.presencePenalty),
    [GEN_AI.requestSeed]: int(p.seed),
  };
  const stop = p.stop ?? p.stop_sequences ?? p.stopSequences;
  if (Array.isArray(stop) && stop.every((s) => typeof s === "string")) out[GEN_AI.requestStopSequences] = stop;
  else if (typeof stop === "string") out[GEN_AI.requestStopSequences] = [stop];
  return Object.fromEntries(Object.entries(out).filter(([, v]) => v !== undefined)) as Record<string, number | string[]>;
}
