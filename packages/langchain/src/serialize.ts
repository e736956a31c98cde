import { AIMessage, BaseMessage, ToolMessage } from "@langchain/core/messages";
import type { Message, ToolCallRequest } from "@auditgraph/core";

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

const ROLES: Record<string, string> = { human: "user", ai: "assistant", system: "system", tool: "tool", generic: "user" };

export function toolCallsOf(message: BaseMessage): ToolCallRequest[] {
  if (!AIMessage.isInstance(message)) return [];
  return (message.tool_calls ?? []).map((tc) => ({
    ...(tc.id ? { id: tc.id } : {}),
    name: tc.name,
    args: toJson(tc.args),
  }));
}

// An agent's state carries the same message objects through every step and every chain
// event; each is converted once.
const converted = new WeakMap<BaseMessage, Message>();

/** A LangChain message in the event schema's provider-neutral form. */
export function toMessage(message: BaseMessage): Message {
  let cached = converted.get(message);
  if (!cached) {
    cached = convert(message);
    converted.set(message, cached);
  }
  return cached;
}

function convert(message: BaseMessage): Message {
  const toolCalls = toolCallsOf(message);
  return {
    role: ROLES[message.type] ?? message.type,
    content: toJson(message.content),
    ...(message.name ? { name: message.name } : {}),
    ...(ToolMessage.isInstance(message) ? { toolCallId: message.tool_call_id } : {}),
    ...(toolCalls.length ? { toolCalls } : {}),
  };
}

/**
 * Any callback argument as JSON: messages in the schema's form, dates as ISO text, cycles
 * and functions cut, so that what is captured always fits the event schema.
 */
export function toJson(value: unknown, depth = 0, seen = new WeakSet<object>()): Json {
  if (value === null || value === undefined) return null;
  switch (typeof value) {
    case "string":
    case "boolean":
      return value;
    case "number":
      return Number.isFinite(value) ? value : String(value);
    case "bigint":
      return value.toString();
    case "function":
    case "symbol":
      return null;
  }
  if (depth > 32) return "[too deep]";
  if (BaseMessage.isInstance(value)) return toMessage(value) as Json;
  if (value instanceof Date) return value.toISOString();
  if (value instanceof Error) return { name: value.name, message: value.message };
  const object = value as object;
  if (seen.has(object)) return "[circular]";
  seen.add(object);
  try {
    if (Array.isArray(object)) return object.map((v) => toJson(v, depth + 1, seen));
    if (object instanceof Map) return toJson(Object.fromEntries(object), depth + 1, seen);
    if (object instanceof Set) return toJson([...object], depth + 1, seen);
    const out: Record<string, Json> = {};
    for (const [key, v] of Object.entries(object)) {
      if (v !== undefined && typeof v !== "function") out[key] = toJson(v, depth + 1, seen);
    }
    return out;
  } finally {
    seen.delete(object);
  }
}
