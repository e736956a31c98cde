import { SpanStatusCode, context, trace, type Span, type Tracer } from "@opentelemetry/api";

// GenAI spans as an instrumented application emits them through the OpenTelemetry JS SDK: an
// agent run (invoke_agent -> chat -> execute_tool -> chat) in the current conventions' names,
// and the same kind of run in semantic conventions 1.36's names (gen_ai.system, flattened
// gen_ai.prompt/completion, prompt/completion token counts, message span events). Shared by the
// package's unit test and the receiver's integration test.

export const CURRENT = {
  agentId: "agent-weather-7",
  agentName: "weather-agent",
  agentVersion: "2.3.1",
  userId: "user-ada",
  conversationId: "conv-42",
  toolCallId: "call_wx_1",
} as const;

export const LEGACY = { userId: "user-bob", sessionId: "sess-legacy-1" } as const;

const child = (tracer: Tracer, parent: Span, name: string, startTime: number, attributes: Record<string, unknown>) =>
  tracer.startSpan(name, { startTime, attributes: attributes as never }, trace.setSpan(context.active(), parent));

/** Ends `span` at `start + ms` (explicit times: the mapping's latency is then known). */
const endAt = (span: Span, start: number, ms: number) => span.end(start + ms);

/** An agent run in the current GenAI names; returns the spans' ids by role. */
export function emitCurrentRun(tracer: Tracer, t0 = Date.now()): { root: Span; chat1: Span; tool: Span; chat2: Span } {
  const root = tracer.startSpan(
    `invoke_agent ${CURRENT.agentName}`,
    {
      startTime: t0,
      attributes: {
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.provider.name": "openai",
        "gen_ai.agent.id": CURRENT.agentId,
        "gen_ai.agent.name": CURRENT.agentName,
        "gen_ai.agent.version": CURRENT.agentVersion,
        "gen_ai.conversation.id": CURRENT.conversationId,
        "user.id": CURRENT.userId,
        // Attributes of no convention: kept, typed.
        "app.tier": "gold",
        "app.retries": 3,
        "app.ratio": 0.25,
        "app.beta": true,
        "app.labels": ["north", "eu"],
      },
    },
    context.active(),
  );
  const chat1 = child(tracer, root, "chat gpt-4o", t0 + 10, {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "gpt-4o",
    "gen_ai.response.model": "gpt-4o-2024-08-06",
    "gen_ai.response.id": "chatcmpl-1",
    "gen_ai.request.temperature": 0.2,
    "gen_ai.request.max_tokens": 256,
    "gen_ai.system_instructions": JSON.stringify([{ type: "text", content: "You are a weather assistant." }]),
    "gen_ai.input.messages": JSON.stringify([{ role: "user", parts: [{ type: "text", content: "Weather in Paris?" }] }]),
    "gen_ai.output.messages": JSON.stringify([
      {
        role: "assistant",
        parts: [{ type: "tool_call", id: CURRENT.toolCallId, name: "get_weather", arguments: { city: "Paris" } }],
        finish_reason: "tool_call",
      },
    ]),
    "gen_ai.response.finish_reasons": ["tool_calls"],
    "gen_ai.usage.input_tokens": 42,
    "gen_ai.usage.output_tokens": 7,
  });
  endAt(chat1, t0, 120);
  const tool = child(tracer, root, "execute_tool get_weather", t0 + 125, {
    "gen_ai.operation.name": "execute_tool",
    "gen_ai.tool.name": "get_weather",
    "gen_ai.tool.call.id": CURRENT.toolCallId,
    "gen_ai.tool.call.arguments": JSON.stringify({ city: "Paris" }),
    "gen_ai.tool.call.result": JSON.stringify({ tempC: 18 }),
  });
  endAt(tool, t0, 150);
  const chat2 = child(tracer, root, "chat gpt-4o", t0 + 160, {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "gpt-4o",
    "gen_ai.input.messages": JSON.stringify([
      { role: "user", parts: [{ type: "text", content: "Weather in Paris?" }] },
      { role: "tool", parts: [{ type: "tool_call_response", id: CURRENT.toolCallId, response: { tempC: 18 } }] },
    ]),
    "gen_ai.output.messages": JSON.stringify([{ role: "assistant", parts: [{ type: "text", content: "It is 18°C in Paris." }], finish_reason: "stop" }]),
    "gen_ai.usage.input_tokens": 60,
    "gen_ai.usage.output_tokens": 9,
  });
  endAt(chat2, t0, 300);
  endAt(root, t0, 320);
  return { root, chat1, tool, chat2 };
}

/** A run in semconv 1.36's names (as OpenLLMetry and older instrumentations emit them), with a failing tool. */
export function emitLegacyRun(tracer: Tracer, t0 = Date.now()): { root: Span; chat: Span; chatEvents: Span; tool: Span } {
  const root = tracer.startSpan("workflow", { startTime: t0, attributes: { "user.id": LEGACY.userId, "session.id": LEGACY.sessionId } }, context.active());
  const chat = child(tracer, root, "openai.chat", t0 + 5, {
    "gen_ai.system": "openai",
    "gen_ai.request.model": "gpt-3.5-turbo",
    "gen_ai.prompt.0.role": "system",
    "gen_ai.prompt.0.content": "Be brief.",
    "gen_ai.prompt.1.role": "user",
    "gen_ai.prompt.1.content": "Capital of France?",
    "gen_ai.completion.0.role": "assistant",
    "gen_ai.completion.0.content": "Paris.",
    "gen_ai.completion.0.finish_reason": "stop",
    "gen_ai.usage.prompt_tokens": 11,
    "gen_ai.usage.completion_tokens": 2,
  });
  endAt(chat, t0, 50);
  const chatEvents = child(tracer, root, "chat gpt-3.5-turbo", t0 + 55, {
    "gen_ai.operation.name": "chat",
    "gen_ai.system": "openai",
    "gen_ai.request.model": "gpt-3.5-turbo",
  });
  chatEvents.addEvent("gen_ai.user.message", { content: "And of Italy?" });
  chatEvents.addEvent("gen_ai.choice", { index: 0, finish_reason: "stop", message: JSON.stringify({ role: "assistant", content: "Rome." }) });
  endAt(chatEvents, t0, 80);
  const tool = child(tracer, root, "execute_tool lookup", t0 + 85, {
    "gen_ai.operation.name": "execute_tool",
    "gen_ai.tool.name": "lookup",
    "gen_ai.tool.call.id": "call_lookup_1",
  });
  tool.recordException(new TypeError("lookup table missing"));
  tool.setStatus({ code: SpanStatusCode.ERROR, message: "lookup table missing" });
  endAt(tool, t0, 90);
  endAt(root, t0, 100);
  return { root, chat, chatEvents, tool };
}

export const idOf = (span: Span) => span.spanContext().spanId;
export const traceOf = (span: Span) => span.spanContext().traceId;
