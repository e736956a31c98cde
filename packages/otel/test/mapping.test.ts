import { describe, expect, it } from "vitest";
import { SpanStatusCode, context, trace, type Span, type Tracer } from "@opentelemetry/api";
import { JsonTraceSerializer, ProtobufTraceSerializer } from "@opentelemetry/otlp-transformer";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from "@opentelemetry/sdk-trace-base";
import type { AuditEvent, EventOf } from "@auditgraph/core";
import { decodeJsonRequest, decodeProtobufRequest, mapRequest } from "@auditgraph/otel";

// OpenInference's attributes and the GenAI operations the agent run of receiver.test.ts does not
// use (retrieval, embeddings, create_agent, an LLM error), from SDK spans through the protobuf
// decoder to events; and the refusals, each naming its attribute.

function run(emit: (tracer: Tracer) => void): { events: AuditEvent[]; rejected: { spanId: string; reason: string }[] } {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ "service.name": "svc" }),
    spanProcessors: [new SimpleSpanProcessor(exporter)],
  });
  emit(provider.getTracer("mapping-test"));
  const bytes = ProtobufTraceSerializer.serializeRequest(exporter.getFinishedSpans() as ReadableSpan[])!;
  return mapRequest(decodeProtobufRequest(bytes), "tenant-m");
}

const span = (tracer: Tracer, name: string, attributes: Record<string, unknown>, parent?: Span) => {
  const s = tracer.startSpan(name, { attributes: attributes as never }, parent ? trace.setSpan(context.active(), parent) : context.active());
  return s;
};
const of = <T extends AuditEvent["type"]>(events: AuditEvent[], type: T) => events.filter((e) => e.type === type) as EventOf<T>[];

describe("OpenInference spans", () => {
  it("maps an LLM span's flattened messages, tool calls, token counts, invocation parameters, session, user and tags", () => {
    const { events, rejected } = run((tracer) => {
      const agent = span(tracer, "agent", { "openinference.span.kind": "AGENT", "session.id": "s-1", "user.id": "u-1", "agent.name": "helper" });
      span(
        tracer,
        "ChatOpenAI",
        {
          "openinference.span.kind": "LLM",
          "llm.model_name": "gpt-4o-mini",
          "llm.provider": "openai",
          "llm.invocation_parameters": JSON.stringify({ temperature: 0.1, stop: ["\n"] }),
          "llm.input_messages.0.message.role": "system",
          "llm.input_messages.0.message.content": "Be kind.",
          "llm.input_messages.1.message.role": "user",
          "llm.input_messages.1.message.contents.0.message_content.type": "text",
          "llm.input_messages.1.message.contents.0.message_content.text": "Find x",
          "llm.output_messages.0.message.role": "assistant",
          "llm.output_messages.0.message.content": "",
          "llm.output_messages.0.message.tool_calls.0.tool_call.id": "c1",
          "llm.output_messages.0.message.tool_calls.0.tool_call.function.name": "search",
          "llm.output_messages.0.message.tool_calls.0.tool_call.function.arguments": JSON.stringify({ q: "x" }),
          "llm.token_count.prompt": 10,
          "llm.token_count.completion": 5,
          "llm.token_count.total": 16,
          "llm.token_count.prompt_details.cache_read": 4,
          "tag.tags": ["beta", "eu"],
          metadata: JSON.stringify({ experiment: 7 }),
        },
        agent,
      ).end();
      span(
        tracer,
        "search",
        { "openinference.span.kind": "TOOL", "tool.name": "search", "tool_call.id": "c1", "input.value": '{"q":"x"}', "output.value": "found" },
        agent,
      ).end();
      span(
        tracer,
        "retriever",
        {
          "openinference.span.kind": "RETRIEVER",
          "input.value": "what is x",
          "retrieval.documents.0.document.id": "d1",
          "retrieval.documents.0.document.content": "x is y",
          "retrieval.documents.0.document.score": 0.9,
          "retrieval.documents.0.document.metadata": JSON.stringify({ source: "kb" }),
        },
        agent,
      ).end();
      agent.end();
    });
    expect(rejected).toEqual([]);
    for (const e of events)
      expect(e).toMatchObject({ sessionId: "s-1", identity: { user: { id: "u-1" }, agent: { id: "helper", name: "helper", version: "unknown" } } });
    const [start] = of(events, "llm.start");
    expect(start!.model).toEqual({ provider: "openai", name: "gpt-4o-mini", params: { temperature: 0.1, stop: ["\n"] } });
    expect(start!.payload.messages).toEqual([
      { role: "system", content: "Be kind." },
      { role: "user", content: "Find x" },
    ]);
    expect(start!.tags).toEqual(["beta", "eu"]);
    const [end] = of(events, "llm.end");
    expect(end!.usage).toEqual({ inputTokens: 10, outputTokens: 5, totalTokens: 16, cacheReadTokens: 4 });
    expect(end!.payload.output.toolCalls).toEqual([{ id: "c1", name: "search", args: { q: "x" } }]);
    expect(of(events, "tool.start")[0]).toMatchObject({ name: "search", payload: { toolCallId: "c1", input: { q: "x" } } });
    expect(of(events, "tool.end")[0]!.payload).toMatchObject({ toolCallId: "c1", output: "found" });
    expect(of(events, "retriever.start")[0]!.payload).toEqual({ query: "what is x" });
    expect(of(events, "retriever.end")[0]!.payload.documents).toEqual([{ id: "d1", pageContent: "x is y", metadata: { source: "kb", score: 0.9 } }]);
    const llmExtra = of(events, "custom").find((e) => e.runId === start!.runId)!;
    expect((llmExtra.payload.data as { attributes: object }).attributes).toEqual({ metadata: JSON.stringify({ experiment: 7 }) });
    expect(of(events, "chain.start")).toHaveLength(1);
  });
});

describe("GenAI operations and refusals", () => {
  it("maps retrieval, embeddings and create_agent spans, an LLM span with ERROR status, and keeps an unknown operation name", () => {
    const { events, rejected } = run((tracer) => {
      span(tracer, "retrieval kb", {
        "gen_ai.operation.name": "retrieval",
        "gen_ai.data_source.id": "kb-1",
        "gen_ai.retrieval.query.text": "refund policy",
        "gen_ai.retrieval.documents": JSON.stringify([{ id: "doc-9", score: 0.5 }]),
      }).end();
      span(tracer, "embeddings", { "gen_ai.operation.name": "embeddings", "gen_ai.request.model": "text-embedding-3-small" }).end();
      span(tracer, "create_agent", { "gen_ai.operation.name": "create_agent", "gen_ai.agent.name": "maker" }).end();
      const failing = span(tracer, "chat", {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "anthropic",
        "gen_ai.request.model": "claude",
        "error.type": "rate_limited",
      });
      failing.setStatus({ code: SpanStatusCode.ERROR, message: "429 Too Many Requests" });
      failing.end();
      span(tracer, "odd", { "gen_ai.operation.name": "summon" }).end();
    });
    expect(rejected).toEqual([]);
    expect(of(events, "retriever.start")[0]).toMatchObject({ name: "kb-1", payload: { query: "refund policy" } });
    expect(of(events, "retriever.end")[0]!.payload.documents).toEqual([{ id: "doc-9", pageContent: "", metadata: { score: 0.5 } }]);
    expect(of(events, "chain.start").map((e) => e.name)).toEqual(["embeddings", "maker", "odd"]);
    expect(of(events, "llm.start")[0]!.model).toMatchObject({ provider: "anthropic", name: "claude" });
    expect(of(events, "llm.error")[0]!.payload.error).toEqual({ name: "rate_limited", message: "429 Too Many Requests" });
    expect(of(events, "llm.end")).toEqual([]);
    const odd = of(events, "custom").find((e) => (e.payload.data as { spanName: string }).spanName === "odd")!;
    expect((odd.payload.data as { attributes: object }).attributes).toEqual({ "gen_ai.operation.name": "summon" });
  });

  it("refuses each bad span naming its attribute or field, and keeps the good ones", () => {
    const ids: Record<string, string> = {};
    const { events, rejected } = run((tracer) => {
      const bad = (key: string, attributes: Record<string, unknown>) => {
        const s = span(tracer, key, attributes);
        ids[key] = s.spanContext().spanId;
        s.end();
      };
      bad("temperature", { "gen_ai.operation.name": "chat", "gen_ai.request.temperature": "hot" });
      bad("params", { "openinference.span.kind": "LLM", "llm.invocation_parameters": "[1, 2]" });
      bad("model", { "gen_ai.operation.name": "chat", "gen_ai.request.model": "m".repeat(300) });
      bad("docs", { "gen_ai.operation.name": "retrieval", "gen_ai.retrieval.documents": "{}" });
      span(tracer, "good", { "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "ok" }).end();
    });
    expect(rejected).toEqual([
      { spanId: ids.temperature, reason: `span ${ids.temperature}: gen_ai.request.temperature: must be a number` },
      { spanId: ids.params, reason: `span ${ids.params}: llm.invocation_parameters: must be a JSON object` },
      { spanId: ids.model, reason: expect.stringMatching(new RegExp(`^span ${ids.model}: llm.start model.name: .*256`)) },
      { spanId: ids.docs, reason: `span ${ids.docs}: gen_ai.retrieval.documents: must be a JSON array` },
    ]);
    expect(events.map((e) => e.type)).toEqual(["tool.start", "custom", "tool.end"]);
  });
});

describe("OTLP JSON encoding", () => {
  it("reads int64 fields and values as decimal strings or as numbers alike, ids in hex", () => {
    const exporter = new InMemorySpanExporter();
    const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
    // Times on a 4 ms grid: their nanoseconds are multiples of 256, which a double holds exactly past 2^53.
    const t0 = Math.floor(Date.now() / 4) * 4;
    const s = provider.getTracer("json").startSpan("chat", { startTime: t0, attributes: { "gen_ai.operation.name": "chat", "gen_ai.usage.input_tokens": 12 } });
    s.end(t0 + 8);
    const spans = exporter.getFinishedSpans() as ReadableSpan[];
    const text = new TextDecoder().decode(JsonTraceSerializer.serializeRequest(spans)!);
    const asStrings = JSON.parse(text, (key, value) =>
      ["startTimeUnixNano", "endTimeUnixNano", "intValue"].includes(key) && typeof value === "number" ? String(value) : value,
    );
    const asNumbers = JSON.parse(text, (key, value) =>
      ["startTimeUnixNano", "endTimeUnixNano", "intValue"].includes(key) && typeof value === "string" ? Number(value) : value,
    );
    const [a, b] = [asStrings, asNumbers].map((body) => mapRequest(decodeJsonRequest(JSON.stringify(body)), "t"));
    expect(JSON.stringify(asStrings)).toContain('"intValue":"12"');
    expect(JSON.stringify(asNumbers)).toContain('"intValue":12');
    expect(a!.rejected).toEqual([]);
    expect(a!.events).toEqual(b!.events);
    expect(a!.events[0]!.runId).toBe(s.spanContext().spanId);
    expect((a!.events.find((e) => e.type === "llm.end") as EventOf<"llm.end">).usage?.inputTokens).toBe(12);
  });
});
