import type { Message, ToolCallRequest } from "@auditgraph/core";
import {
  GEN_AI,
  GEN_AI_LEGACY,
  GEN_AI_LEGACY_EVENTS,
  GEN_AI_LEGACY_EVENT_FIELDS as EF,
  GEN_AI_LEGACY_INDEXED as LI,
  OPENINFERENCE,
  OPENINFERENCE_INDEXED as OI,
} from "./attributes.js";
import type { AttributeValue } from "./model.js";
import { jsonOrText, sublist, type SpanReader } from "./read.js";

// The messages of an LLM span, in whichever of the three vocabularies it carries them: the current
// conventions' `gen_ai.input.messages` / `output.messages` (role + typed parts), semconv 1.36's
// `gen_ai.prompt` / `completion` (text, JSON, flattened `.<i>.role`, or one span event per
// message), OpenInference's flattened `llm.input_messages.<i>.message.*`. The first found wins.

export interface LlmOutput {
  text: string;
  toolCalls: ToolCallRequest[];
  finishReason?: string;
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);
const text = (v: unknown) => (typeof v === "string" ? v : v === undefined || v === null ? "" : JSON.stringify(v));
const argsOf = (v: unknown) => jsonOrText((v ?? {}) as AttributeValue);

function toolCall(id: unknown, name: unknown, args: unknown): ToolCallRequest {
  return { ...(typeof id === "string" && id ? { id } : {}), name: text(name) || "unknown", args: (argsOf(args) ?? {}) as ToolCallRequest["args"] };
}

/** One current-convention message (`{ role, parts: [...] }`) as ours. */
function fromParts(m: Obj): Message {
  const parts = Array.isArray(m.parts) ? m.parts.filter(isObj) : [];
  const texts = parts.filter((p) => p.type === "text").map((p) => text(p.content));
  const calls = parts.filter((p) => p.type === "tool_call").map((p) => toolCall(p.id, p.name, p.arguments));
  const response = parts.find((p) => p.type === "tool_call_response");
  // Text and tool calls have fields of their own; any other part (reasoning, media) keeps the parts as sent.
  const onlyText = texts.length + calls.length === parts.length;
  const content = response ? (response.response ?? response.result ?? "") : onlyText ? texts.join("") : parts;
  return {
    role: text(m.role) || "user",
    content: content as Message["content"],
    ...(typeof m.name === "string" ? { name: m.name } : {}),
    ...(response && typeof response.id === "string" ? { toolCallId: response.id } : {}),
    ...(calls.length > 0 ? { toolCalls: calls } : {}),
  };
}

/** A message as OpenAI-style JSON (`{ role, content, tool_calls }`), as 1.36 producers write it. */
function fromChatJson(m: Obj): Message {
  if (Array.isArray(m.parts)) return fromParts(m);
  const calls = Array.isArray(m.tool_calls)
    ? m.tool_calls.filter(isObj).map((c) => {
        const fn = isObj(c.function) ? c.function : c;
        return toolCall(c.id, fn.name, fn.arguments);
      })
    : [];
  return {
    role: text(m.role) || "user",
    content: (m.content ?? "") as Message["content"],
    ...(typeof m.name === "string" ? { name: m.name } : {}),
    ...(typeof m.tool_call_id === "string" ? { toolCallId: m.tool_call_id } : {}),
    ...(calls.length > 0 ? { toolCalls: calls } : {}),
  };
}

/** A text-or-JSON prompt attribute as messages: a JSON list of messages, one message, or plain text from `role`. */
function fromLoose(value: unknown, role: string): Message[] {
  if (Array.isArray(value)) return value.map((m) => (isObj(m) ? fromChatJson(m) : { role, content: text(m) }));
  if (isObj(value)) return [fromChatJson(value)];
  return [{ role, content: text(value) }];
}

/** OpenInference's `message.*` keys of one flattened message. */
function fromOpenInference(m: Record<string, AttributeValue>): Message {
  const calls = sublist(m, OI.messageToolCallsPrefix).map((c) => toolCall(c[OI.toolCallId], c[OI.toolCallFunctionName], c[OI.toolCallFunctionArguments]));
  const contents = sublist(m, OI.messageContentsPrefix);
  const content = m[OI.messageContent] ?? contents.map((c) => text(c[OI.messageContentText])).join("");
  const name = m[OI.messageName];
  const toolCallId = m[OI.messageToolCallId];
  return {
    role: text(m[OI.messageRole]) || "user",
    content: content as Message["content"],
    ...(typeof name === "string" ? { name } : {}),
    ...(typeof toolCallId === "string" ? { toolCallId } : {}),
    ...(calls.length > 0 ? { toolCalls: calls } : {}),
  };
}

/** 1.36's flattened `gen_ai.prompt.<i>.*` / `gen_ai.completion.<i>.*` keys of one message. */
function fromLegacyIndexed(m: Record<string, AttributeValue>, role: string): Message {
  const calls = sublist(m, LI.toolCallsPrefix).map((c) => toolCall(c[LI.toolCallIdInCall], c[LI.toolCallName], c[LI.toolCallArguments]));
  const toolCallId = m[LI.toolCallId];
  return {
    role: text(m[LI.role]) || role,
    content: jsonOrText(m[LI.content] ?? "") as Message["content"],
    ...(typeof toolCallId === "string" ? { toolCallId } : {}),
    ...(calls.length > 0 ? { toolCalls: calls } : {}),
  };
}

const ROLE_OF_EVENT: Record<string, string> = {
  [GEN_AI_LEGACY_EVENTS.systemMessage]: "system",
  [GEN_AI_LEGACY_EVENTS.userMessage]: "user",
  [GEN_AI_LEGACY_EVENTS.assistantMessage]: "assistant",
  [GEN_AI_LEGACY_EVENTS.toolMessage]: "tool",
};

/** A 1.36 message event's attributes as a message (its fields at the top, or JSON in `content`). */
function fromEvent(attrs: Record<string, AttributeValue>, role: string): Message {
  const body: Obj = { ...attrs };
  if (body[EF.role] === undefined) body[EF.role] = role;
  if (body[EF.id] !== undefined && role === "tool") body.tool_call_id = body[EF.id];
  if (typeof body[EF.toolCalls] === "string") body[EF.toolCalls] = jsonOrText(body[EF.toolCalls] as string);
  return fromChatJson(body);
}

/** The messages sent to the model (system instructions first), or [] when the span has none. */
export function inputMessages(r: SpanReader): Message[] {
  const system = r.json(GEN_AI.systemInstructions);
  const systemMessages: Message[] =
    system === undefined
      ? []
      : [{ role: "system", content: (Array.isArray(system) ? fromParts({ parts: system }).content : text(system)) as Message["content"] }];
  const current = r.json(GEN_AI.inputMessages);
  if (current !== undefined) return [...systemMessages, ...fromLoose(current, "user")];
  const oi = r.indexed(OPENINFERENCE.llmInputMessages);
  if (oi.length > 0) return [...systemMessages, ...oi.map(fromOpenInference)];
  const legacy = r.indexed(LI.promptPrefix);
  if (legacy.length > 0) return [...systemMessages, ...legacy.map((m) => fromLegacyIndexed(m, "user"))];
  const prompt = r.json(GEN_AI_LEGACY.prompt);
  if (prompt !== undefined) return [...systemMessages, ...fromLoose(prompt, "user")];
  const events = r.span.events.filter((e) => ROLE_OF_EVENT[e.name] !== undefined).map((e) => fromEvent(e.attributes, ROLE_OF_EVENT[e.name]!));
  if (events.length > 0) return [...systemMessages, ...events];
  // OpenInference without messages: the raw input.
  const input = r.json(OPENINFERENCE.inputValue);
  return input === undefined ? systemMessages : [...systemMessages, ...fromLoose(input, "user")];
}

function outputOfMessages(messages: Message[], finishReason: string | undefined): LlmOutput {
  const texts = messages.map((m) => (typeof m.content === "string" ? m.content : JSON.stringify(m.content))).filter((t) => t !== "" && t !== "[]");
  return { text: texts.join("\n"), toolCalls: messages.flatMap((m) => m.toolCalls ?? []), ...(finishReason ? { finishReason } : {}) };
}

/** What the model answered, or undefined when the span does not say (an error span, say). */
export function llmOutput(r: SpanReader): LlmOutput | undefined {
  const reasons = r.strings(GEN_AI.responseFinishReasons);
  const current = r.json(GEN_AI.outputMessages);
  if (current !== undefined) {
    const list = Array.isArray(current) ? current : [current];
    const reason =
      reasons?.[0] ??
      list
        .filter(isObj)
        .map((m) => m.finish_reason)
        .find((f) => typeof f === "string");
    return outputOfMessages(fromLoose(current, "assistant"), reason as string | undefined);
  }
  const oi = r.indexed(OPENINFERENCE.llmOutputMessages);
  if (oi.length > 0) {
    const output = outputOfMessages(oi.map(fromOpenInference), reasons?.[0] ?? r.str(OPENINFERENCE.llmFinishReason));
    // OpenInference's LangChain instrumentation reads tool calls from OpenAI-style `additional_kwargs`
    // only: a model that puts them in the message's own `tool_calls` has them in `output.value` alone.
    const generated = output.toolCalls.length === 0 ? fromGenerations(r.attributes[OPENINFERENCE.outputValue]) : undefined;
    if (!generated || generated.toolCalls.length === 0) return output;
    r.consume(OPENINFERENCE.outputValue);
    return { ...output, text: output.text || generated.text, toolCalls: generated.toolCalls };
  }
  const legacy = r.indexed(LI.completionPrefix);
  if (legacy.length > 0) {
    const reason = legacy.map((m) => m[LI.finishReason]).find((f) => typeof f === "string");
    return outputOfMessages(
      legacy.map((m) => fromLegacyIndexed(m, "assistant")),
      reasons?.[0] ?? (reason as string | undefined),
    );
  }
  const completion = r.json(GEN_AI_LEGACY.completion);
  if (completion !== undefined) return outputOfMessages(fromLoose(completion, "assistant"), reasons?.[0]);
  const choices = r.span.events.filter((e) => e.name === GEN_AI_LEGACY_EVENTS.choice);
  if (choices.length > 0) {
    const messages = choices.map((e) => {
      const m = jsonOrText(e.attributes[EF.message] ?? "");
      return isObj(m) ? fromChatJson({ role: "assistant", ...m }) : fromEvent(e.attributes, "assistant");
    });
    const reason = choices.map((e) => e.attributes[EF.finishReason]).find((f) => typeof f === "string");
    return outputOfMessages(messages, reasons?.[0] ?? (reason as string | undefined));
  }
  const generated = fromGenerations(r.attributes[OPENINFERENCE.outputValue]);
  if (generated) {
    r.consume(OPENINFERENCE.outputValue);
    return { ...generated, ...(reasons ? { finishReason: reasons[0]! } : {}) };
  }
  const output = r.json(OPENINFERENCE.outputValue);
  return output === undefined ? (reasons ? { text: "", toolCalls: [], finishReason: reasons[0]! } : undefined) : { text: text(output), toolCalls: [] };
}

/**
 * A LangChain LLM result as OpenInference's LangChain instrumentation writes it to `output.value`
 * (`{ generations: [[{ text, message: { kwargs: { content, tool_calls } } }]] }`), or undefined.
 */
function fromGenerations(value: AttributeValue | undefined): LlmOutput | undefined {
  const parsed = value === undefined ? undefined : jsonOrText(value);
  const first = isObj(parsed) && Array.isArray(parsed.generations) ? parsed.generations[0] : undefined;
  if (!Array.isArray(first)) return undefined;
  const texts: string[] = [];
  const toolCalls: ToolCallRequest[] = [];
  for (const g of first.filter(isObj)) {
    const message = isObj(g.message) ? g.message : {};
    const kwargs = isObj(message.kwargs) ? message.kwargs : isObj(message.lc_kwargs) ? message.lc_kwargs : {};
    const t = typeof g.text === "string" && g.text !== "" ? g.text : typeof kwargs.content === "string" ? kwargs.content : "";
    if (t) texts.push(t);
    if (Array.isArray(kwargs.tool_calls)) for (const c of kwargs.tool_calls.filter(isObj)) toolCalls.push(toolCall(c.id, c.name, c.args ?? c.arguments));
  }
  return { text: texts.join("\n"), toolCalls };
}

/** The span events the message readers consume (the rest are kept as extra data). */
export const MESSAGE_EVENTS: ReadonlySet<string> = new Set([...Object.keys(ROLE_OF_EVENT), GEN_AI_LEGACY_EVENTS.choice]);
