import { gzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { JsonTraceSerializer, ProtobufTraceSerializer } from "@opentelemetry/otlp-transformer";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from "@opentelemetry/sdk-trace-base";
import type { AuditEvent, EventOf } from "@auditgraph/core";
import {
  ANONYMOUS_USER,
  UNKNOWN_AGENT,
  SPAN_EXTRA_EVENT,
  decodeProtobufResponse,
  handleOtlpExport,
  newOtlpToken,
  parseOtlpTokens,
  tenantOfBearer,
  type OtlpOutcome,
} from "@auditgraph/otel";
import { CURRENT, LEGACY, emitCurrentRun, emitLegacyRun, idOf, traceOf } from "./genai-spans.js";

// The receiver as a function: spans from the real OpenTelemetry SDK, serialized by the real OTLP
// serializers (the exporters' own), decoded and mapped; no network, no services.

function sdk(resource: Record<string, string> = { "service.name": "weather-svc", "service.version": "9.9.9" }) {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ resource: resourceFromAttributes(resource), spanProcessors: [new SimpleSpanProcessor(exporter)] });
  return { tracer: provider.getTracer("genai-test"), spans: () => exporter.getFinishedSpans() as ReadableSpan[] };
}

const { token, entry } = newOtlpToken("tenant-unit");
const tokens = parseOtlpTokens(`other:${"0".repeat(64)},${entry}`);
const auth = `Bearer ${token}`;

function send(spans: ReadableSpan[], { json = false, gzip = false, authorization = auth } = {}): OtlpOutcome {
  const raw = (json ? JsonTraceSerializer : ProtobufTraceSerializer).serializeRequest(spans)!;
  return handleOtlpExport(
    {
      contentType: json ? "application/json" : "application/x-protobuf",
      contentEncoding: gzip ? "gzip" : undefined,
      authorization,
      body: gzip ? gzipSync(raw) : raw,
    },
    tokens,
  );
}

const ofRun = (events: AuditEvent[], runId: string) => events.filter((e) => e.runId === runId);
const one = <T extends AuditEvent["type"]>(events: AuditEvent[], runId: string, type: T) => {
  const found = ofRun(events, runId).filter((e) => e.type === type);
  expect(found, `${type} of ${runId}`).toHaveLength(1);
  return found[0] as EventOf<T>;
};

describe("tokens", () => {
  it("names the tenant of a known token only, and refuses a malformed entry by position", () => {
    expect(tenantOfBearer(tokens, auth)).toBe("tenant-unit");
    expect(tenantOfBearer(tokens, `Bearer ${token}x`)).toBeUndefined();
    expect(tenantOfBearer(tokens, token)).toBeUndefined();
    expect(tenantOfBearer(tokens, undefined)).toBeUndefined();
    expect(() => parseOtlpTokens("a:b")).toThrow(/entry 1 must be <tenantId>:<sha256 hex/);
  });
});

describe("OTLP export -> events", () => {
  it("maps an agent run in the current GenAI names: identity, run tree, messages, usage, tool call, unmapped attributes", () => {
    const { tracer, spans } = sdk();
    const run = emitCurrentRun(tracer);
    for (const outcome of [send(spans()), send(spans(), { json: true }), send(spans(), { json: false, gzip: true })]) {
      expect(outcome.status).toBe(200);
      expect(outcome.rejected).toEqual([]);
      expect(outcome.tenantId).toBe("tenant-unit");
      const events = outcome.events;
      // 4 spans: start, custom, end each.
      expect(events).toHaveLength(12);
      for (const e of events) {
        expect(e.traceId).toBe(traceOf(run.root));
        expect(e).toMatchObject({
          sessionId: CURRENT.conversationId,
          identity: {
            user: { id: CURRENT.userId, tenantId: "tenant-unit" },
            agent: { id: CURRENT.agentId, name: CURRENT.agentName, version: CURRENT.agentVersion },
          },
        });
      }
      const root = one(events, idOf(run.root), "chain.start");
      expect(root.parentRunId).toBeNull();
      const start = one(events, idOf(run.chat1), "llm.start");
      expect(start.parentRunId).toBe(idOf(run.root));
      expect(start.model).toMatchObject({ provider: "openai", name: "gpt-4o", params: { temperature: 0.2, max_tokens: 256 } });
      expect(start.payload.messages).toEqual([
        { role: "system", content: "You are a weather assistant." },
        { role: "user", content: "Weather in Paris?" },
      ]);
      const end = one(events, idOf(run.chat1), "llm.end");
      expect(end.model.name).toBe("gpt-4o-2024-08-06");
      expect(end.usage).toEqual({ inputTokens: 42, outputTokens: 7, totalTokens: 49 });
      expect(end.payload.output).toEqual({
        text: "",
        toolCalls: [{ id: CURRENT.toolCallId, name: "get_weather", args: { city: "Paris" } }],
        finishReason: "tool_calls",
      });
      expect(end.payload.timing?.latencyMs).toBe(110);
      const toolStart = one(events, idOf(run.tool), "tool.start");
      expect(toolStart).toMatchObject({ name: "get_weather", payload: { toolCallId: CURRENT.toolCallId, input: { city: "Paris" } } });
      expect(one(events, idOf(run.tool), "tool.end").payload).toMatchObject({ toolCallId: CURRENT.toolCallId, output: { tempC: 18 } });
      const chat2 = one(events, idOf(run.chat2), "llm.start");
      expect(chat2.payload.messages[1]).toEqual({ role: "tool", content: { tempC: 18 }, toolCallId: CURRENT.toolCallId });
      expect(one(events, idOf(run.chat2), "llm.end").payload.output.text).toBe("It is 18°C in Paris.");
      const extra = ofRun(events, idOf(run.root)).find((e) => e.type === "custom") as EventOf<"custom">;
      expect(extra.payload.name).toBe(SPAN_EXTRA_EVENT);
      expect(extra.payload.data).toMatchObject({
        attributes: { "app.tier": "gold", "app.retries": 3, "app.ratio": 0.25, "app.beta": true, "app.labels": ["north", "eu"] },
        resource: { "service.name": "weather-svc" },
      });
      // Mapped attributes are not repeated as extra data.
      expect(Object.keys((extra.payload.data as { attributes: object }).attributes)).not.toContain("gen_ai.agent.id");
      const chatExtra = ofRun(events, idOf(run.chat1)).find((e) => e.type === "custom") as EventOf<"custom">;
      expect((chatExtra.payload.data as { attributes: object }).attributes).toEqual({ "gen_ai.response.id": "chatcmpl-1" });
    }
    // Deterministic: the same spans give the same event ids, whatever the encoding.
    expect(send(spans()).events.map((e) => e.eventId)).toEqual(send(spans(), { json: true }).events.map((e) => e.eventId));
  });

  it("maps semconv 1.36 names: gen_ai.system, flattened prompt/completion, prompt/completion tokens, message events, an ERROR tool span", () => {
    const { tracer, spans } = sdk({ "service.name": "legacy-svc" });
    const run = emitLegacyRun(tracer);
    const { events, rejected } = send(spans());
    expect(rejected).toEqual([]);
    for (const e of events)
      expect(e).toMatchObject({
        sessionId: LEGACY.sessionId,
        identity: { user: { id: LEGACY.userId }, agent: { id: "legacy-svc", name: "legacy-svc", version: "unknown" } },
      });
    const start = one(events, idOf(run.chat), "llm.start");
    expect(start.model).toMatchObject({ provider: "openai", name: "gpt-3.5-turbo" });
    expect(start.payload.messages).toEqual([
      { role: "system", content: "Be brief." },
      { role: "user", content: "Capital of France?" },
    ]);
    const end = one(events, idOf(run.chat), "llm.end");
    expect(end.usage).toEqual({ inputTokens: 11, outputTokens: 2, totalTokens: 13 });
    expect(end.payload.output).toMatchObject({ text: "Paris.", finishReason: "stop" });
    expect(one(events, idOf(run.chatEvents), "llm.start").payload.messages).toEqual([{ role: "user", content: "And of Italy?" }]);
    expect(one(events, idOf(run.chatEvents), "llm.end").payload.output).toMatchObject({ text: "Rome.", finishReason: "stop" });
    const error = one(events, idOf(run.tool), "tool.error");
    expect(error.payload).toEqual({ toolCallId: "call_lookup_1", error: { name: "TypeError", message: "lookup table missing" } });
    expect(ofRun(events, idOf(run.tool)).map((e) => e.type)).toEqual(["tool.start", "custom", "tool.error"]);
    expect(one(events, idOf(run.root), "chain.start").payload).toEqual({ inputs: {} });
  });

  it("refuses a bad span alone, naming the span and the attribute, and keeps the others (partial success)", () => {
    const { tracer, spans } = sdk();
    const run = emitCurrentRun(tracer);
    const bad = tracer.startSpan("chat bad", { attributes: { "gen_ai.operation.name": "chat", "gen_ai.usage.input_tokens": -5 } });
    bad.end();
    const outcome = send(spans());
    expect(outcome.status).toBe(200);
    expect(outcome.acceptedSpans).toBe(4);
    expect(outcome.rejected).toEqual([{ spanId: idOf(bad), reason: `span ${idOf(bad)}: gen_ai.usage.input_tokens: must be a non-negative integer` }]);
    expect(new Set(outcome.events.map((e) => e.runId))).toEqual(new Set([run.root, run.chat1, run.tool, run.chat2].map(idOf)));
    expect(decodeProtobufResponse(outcome.body as Uint8Array)).toEqual({
      partialSuccess: { rejectedSpans: 1, errorMessage: `span ${idOf(bad)}: gen_ai.usage.input_tokens: must be a non-negative integer` },
    });
    expect(JSON.parse(send(spans(), { json: true }).body as string)).toMatchObject({ partialSuccess: { rejectedSpans: "1" } });
  });

  it("answers 401 without a valid token, 415 for another content type, 400 for an undecodable body; a span naming nobody is the anonymous user's", () => {
    const { tracer, spans } = sdk({});
    tracer.startSpan("plain").end();
    expect(send(spans(), { authorization: "Bearer nope" })).toMatchObject({ status: 401, events: [] });
    expect(send(spans(), { authorization: "" })).toMatchObject({ status: 401, events: [] });
    const body = new TextEncoder().encode("hi");
    expect(handleOtlpExport({ contentType: "text/plain", contentEncoding: undefined, authorization: auth, body }, tokens)).toMatchObject({ status: 415 });
    expect(handleOtlpExport({ contentType: "application/json", contentEncoding: undefined, authorization: auth, body }, tokens)).toMatchObject({ status: 400 });
    const garbage = Uint8Array.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]);
    expect(handleOtlpExport({ contentType: "application/x-protobuf", contentEncoding: undefined, authorization: auth, body: garbage }, tokens)).toMatchObject({
      status: 400,
    });
    expect(handleOtlpExport({ contentType: "application/x-protobuf", contentEncoding: "gzip", authorization: auth, body }, tokens)).toMatchObject({
      status: 400,
    });
    const [e] = send(spans()).events;
    expect(e!.identity).toMatchObject({ user: { id: ANONYMOUS_USER }, agent: { id: UNKNOWN_AGENT, version: "unknown" } });
  });
});
