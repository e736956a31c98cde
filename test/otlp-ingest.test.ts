import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Queue } from "bullmq";
import { OTLPTraceExporter as ProtoExporter } from "@opentelemetry/exporter-trace-otlp-proto";
import { OTLPTraceExporter as JsonExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { CompressionAlgorithm } from "@opentelemetry/otlp-exporter-base";
import { ExportResultCode, type ExportResult } from "@opentelemetry/core";
import { ProtobufTraceSerializer } from "@opentelemetry/otlp-transformer";
import { resourceFromAttributes } from "@opentelemetry/resources";
import {
  BasicTracerProvider,
  BatchSpanProcessor,
  InMemorySpanExporter,
  SimpleSpanProcessor,
  type ReadableSpan,
  type SpanExporter,
} from "@opentelemetry/sdk-trace-base";
import { isStreamOfTenant, shardOf, streamIdFor, type AuditEvent, type EventOf } from "@auditgraph/core";
import { Graph } from "@auditgraph/graph";
import { SegmentLedger } from "@auditgraph/ledger";
import { SPAN_EXTRA_EVENT, decodeProtobufResponse, newOtlpToken } from "@auditgraph/otel";
import { AuditWorker, loadWorkerPolicies, startWorkerHttp, waitUntilIdle, type WorkerHttp } from "@auditgraph/worker";
import { loadConfig } from "@auditgraph/cli";
import { CURRENT, LEGACY, emitCurrentRun, emitLegacyRun, idOf, traceOf } from "../packages/otel/test/genai-spans.js";
import { capturedLogger, inClear, readAll } from "./helpers.js";

/**
 * The OTLP/HTTP receiver for real: the OpenTelemetry JS SDK's own OTLP exporters (protobuf, and
 * JSON with gzip) send GenAI spans to a real AuditWorker's HTTP port, on the environment's Redis,
 * a segment ledger in a temporary directory and the shared Neo4j; the events are read back from the ledger.
 */

const cleanup: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  for (const step of cleanup.reverse()) await step().catch(() => undefined);
});

const tenant = `otlp-${randomUUID().slice(0, 8)}`;
const other = `otlp-other-${randomUUID().slice(0, 8)}`;
const { token, entry } = newOtlpToken(tenant);
const unused = newOtlpToken(other);
// A tenant whose events spread over 4 shards (the worker's AUDITGRAPH_SHARDS, as OTLP jobs carry no producer's count).
const sharded = `otlp-sharded-${randomUUID().slice(0, 8)}`;
const shardedToken = newOtlpToken(sharded);
let http: WorkerHttp;
let ledger: SegmentLedger;
let queue: Queue;
const captured = capturedLogger();

beforeAll(async () => {
  const connection = loadConfig().redis;
  const queueName = `otlp-${randomUUID().slice(0, 8)}`;
  ledger = new SegmentLedger(join(await mkdtemp(join(tmpdir(), "auditgraph-otlp-")), "ledger"));
  const graph = new Graph(loadConfig().neo4j);
  cleanup.push(() => graph.close());
  const worker = new AuditWorker({
    connection,
    queueName,
    ledger,
    graph,
    policies: await loadWorkerPolicies(undefined),
    logger: captured.logger,
    shards: `${sharded}:4`,
  });
  cleanup.push(() => worker.close());
  http = await startWorkerHttp(worker, { port: 0, host: "127.0.0.1", processMetrics: false, otlpTokens: `${unused.entry},${entry},${shardedToken.entry}` });
  cleanup.push(() => http.close());
  queue = new Queue(queueName, { connection });
  queue.on("error", () => undefined);
  cleanup.push(async () => {
    await queue.obliterate({ force: true });
    await queue.close();
  });
  await worker.waitUntilReady();
});

/** Spans of a fresh SDK, emitted by `emit`, sent through `exporter` (a BatchSpanProcessor, flushed). */
async function viaSdk(exporter: SpanExporter, emit: (tracer: ReturnType<BasicTracerProvider["getTracer"]>) => void, service = "weather-svc") {
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ "service.name": service, "service.version": "9.9.9" }),
    spanProcessors: [new BatchSpanProcessor(exporter)],
  });
  emit(provider.getTracer("genai-it"));
  await provider.forceFlush();
  await provider.shutdown();
}

/** Finished spans of a fresh SDK, for a direct export whose result the test reads. */
function finished(emit: (tracer: ReturnType<BasicTracerProvider["getTracer"]>) => void): ReadableSpan[] {
  const memory = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ "service.name": "weather-svc" }),
    spanProcessors: [new SimpleSpanProcessor(memory)],
  });
  emit(provider.getTracer("genai-it"));
  return memory.getFinishedSpans() as ReadableSpan[];
}

const exportWith = (exporter: SpanExporter, spans: ReadableSpan[]) => new Promise<ExportResult>((resolve) => exporter.export(spans, resolve));
const url = () => `${http.url}/v1/traces`;
const bearer = (t: string) => ({ Authorization: `Bearer ${t}` });

async function ledgerEvents(): Promise<AuditEvent[]> {
  await waitUntilIdle(queue, 60_000, { projection: false });
  return inClear(await readAll(ledger)).map((r) => r.event as AuditEvent);
}
const ofRun = (events: AuditEvent[], runId: string) => events.filter((e) => e.runId === runId);
const one = <T extends AuditEvent["type"]>(events: AuditEvent[], runId: string, type: T) => {
  const found = ofRun(events, runId).filter((e) => e.type === type);
  expect(found, `${type} of ${runId}`).toHaveLength(1);
  return found[0] as EventOf<T>;
};

describe("OTLP/HTTP receiver on the worker's HTTP port", () => {
  it("places a sharded tenant's spans by trace over its shards, the change from one shard recorded first", async () => {
    const runs: ReturnType<typeof emitCurrentRun>[] = [];
    await viaSdk(new ProtoExporter({ url: url(), headers: bearer(shardedToken.token) }), (tracer) => {
      for (let i = 0; i < 8; i++) runs.push(emitCurrentRun(tracer));
    });
    await waitUntilIdle(queue, 60_000, { projection: false });
    const records = (await readAll(ledger)).filter((r) => isStreamOfTenant(r.streamId, sharded));
    const traces = new Set(runs.map((r) => traceOf(r.root)));
    expect(new Set(records.filter((r) => r.event.type !== "shards.changed").map((r) => r.event.traceId))).toEqual(traces);
    for (const r of records.filter((x) => x.event.type !== "shards.changed")) expect(r.streamId).toBe(streamIdFor(sharded, shardOf(r.event.traceId, 4)));
    expect(new Set(records.map((r) => r.streamId)).size).toBeGreaterThan(1);
    const changes = records.filter((r) => r.event.type === "shards.changed");
    expect(changes.map((r) => [r.streamId, (r.event as EventOf<"shards.changed">).payload])).toEqual([
      [streamIdFor(sharded), expect.objectContaining({ from: 1, to: 4, generation: 1 })],
    ]);
  });

  it("records a GenAI agent run exported by the SDK's protobuf exporter: tenant from the token, identity, run tree, messages, usage, extra attributes", async () => {
    let run!: ReturnType<typeof emitCurrentRun>;
    await viaSdk(new ProtoExporter({ url: url(), headers: bearer(token) }), (tracer) => (run = emitCurrentRun(tracer)));
    const events = (await ledgerEvents()).filter((e) => e.traceId === traceOf(run.root));
    expect(events).toHaveLength(12);
    for (const e of events)
      expect(e).toMatchObject({
        sessionId: CURRENT.conversationId,
        identity: { user: { id: CURRENT.userId, tenantId: tenant }, agent: { id: CURRENT.agentId, name: CURRENT.agentName, version: CURRENT.agentVersion } },
      });
    expect((await ledger.streams()).sort()).toContain(streamIdFor(tenant));
    expect(one(events, idOf(run.root), "chain.start").parentRunId).toBeNull();
    for (const span of [run.chat1, run.tool, run.chat2]) expect(ofRun(events, idOf(span)).every((e) => e.parentRunId === idOf(run.root))).toBe(true);
    const start = one(events, idOf(run.chat1), "llm.start");
    expect(start.model).toMatchObject({ provider: "openai", name: "gpt-4o", params: { temperature: 0.2, max_tokens: 256 } });
    expect(start.payload.messages.map((m) => m.content)).toEqual(["You are a weather assistant.", "Weather in Paris?"]);
    const end = one(events, idOf(run.chat1), "llm.end");
    expect(end.usage).toEqual({ inputTokens: 42, outputTokens: 7, totalTokens: 49 });
    expect(end.payload.output.toolCalls).toEqual([{ id: CURRENT.toolCallId, name: "get_weather", args: { city: "Paris" } }]);
    // Times from the span's start and end.
    expect(Date.parse(end.occurredAt) - Date.parse(start.occurredAt)).toBe(110);
    expect(one(events, idOf(run.tool), "tool.end").payload).toMatchObject({ toolCallId: CURRENT.toolCallId, output: { tempC: 18 } });
    expect(one(events, idOf(run.chat2), "llm.end").payload.output.text).toBe("It is 18°C in Paris.");
    const extra = one(events, idOf(run.root), "custom");
    expect(extra.payload).toMatchObject({
      name: SPAN_EXTRA_EVENT,
      data: { attributes: { "app.tier": "gold", "app.retries": 3, "app.ratio": 0.25, "app.beta": true, "app.labels": ["north", "eu"] } },
    });
    // The token is never logged.
    expect(captured.text()).not.toContain(token);
  });

  it("records a semconv 1.36 run exported by the SDK's JSON exporter with gzip, the tool's ERROR span as tool.error", async () => {
    let run!: ReturnType<typeof emitLegacyRun>;
    await viaSdk(
      new JsonExporter({ url: url(), headers: bearer(token), compression: CompressionAlgorithm.GZIP }),
      (tracer) => (run = emitLegacyRun(tracer)),
      "legacy-svc",
    );
    const events = (await ledgerEvents()).filter((e) => e.traceId === traceOf(run.root));
    expect(events).toHaveLength(12);
    for (const e of events)
      expect(e).toMatchObject({
        sessionId: LEGACY.sessionId,
        identity: { user: { id: LEGACY.userId, tenantId: tenant }, agent: { id: "legacy-svc", version: "9.9.9" } },
      });
    expect(one(events, idOf(run.chat), "llm.start").payload.messages).toEqual([
      { role: "system", content: "Be brief." },
      { role: "user", content: "Capital of France?" },
    ]);
    expect(one(events, idOf(run.chat), "llm.end").usage).toEqual({ inputTokens: 11, outputTokens: 2, totalTokens: 13 });
    expect(one(events, idOf(run.chatEvents), "llm.end").payload.output.text).toBe("Rome.");
    expect(one(events, idOf(run.tool), "tool.error").payload.error).toEqual({ name: "TypeError", message: "lookup table missing" });
  });

  it("keeps each event once when the same spans are exported again", async () => {
    let run!: ReturnType<typeof emitCurrentRun>;
    const spans = finished((tracer) => (run = emitCurrentRun(tracer)));
    const exporter = new ProtoExporter({ url: url(), headers: bearer(token) });
    expect((await exportWith(exporter, spans)).code).toBe(ExportResultCode.SUCCESS);
    expect((await exportWith(exporter, spans)).code).toBe(ExportResultCode.SUCCESS);
    await exporter.shutdown();
    const events = (await ledgerEvents()).filter((e) => e.traceId === traceOf(run.root));
    expect(events).toHaveLength(12);
    expect(new Set(events.map((e) => e.eventId)).size).toBe(12);
  });

  it("answers a bad span among good ones with a partial success naming the attribute, and records the others", async () => {
    let run!: ReturnType<typeof emitCurrentRun>;
    let badId = "";
    const spans = finished((tracer) => {
      run = emitCurrentRun(tracer);
      const bad = tracer.startSpan("chat bad", { attributes: { "gen_ai.operation.name": "chat", "gen_ai.usage.output_tokens": 1.5 } });
      bad.end();
      badId = idOf(bad);
    });
    // The SDK's own serializer makes the body; the response is read here, which the exporter does not expose.
    const response = await fetch(url(), {
      method: "POST",
      headers: { ...bearer(token), "content-type": "application/x-protobuf" },
      body: Buffer.from(ProtobufTraceSerializer.serializeRequest(spans)!),
    });
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toContain("application/x-protobuf");
    expect(decodeProtobufResponse(new Uint8Array(await response.arrayBuffer()))).toEqual({
      partialSuccess: { rejectedSpans: 1, errorMessage: `span ${badId}: gen_ai.usage.output_tokens: must be a non-negative integer` },
    });
    const events = await ledgerEvents();
    expect(ofRun(events, badId)).toEqual([]);
    expect(events.filter((e) => e.traceId === traceOf(run.root))).toHaveLength(12);
  });

  it("refuses without a valid token (401, nothing recorded), another content type (415) and an undecodable body (400)", async () => {
    const before = (await ledgerEvents()).length;
    const streams = await ledger.streams();
    const spans = finished((tracer) => emitCurrentRun(tracer));
    for (const headers of [{}, bearer("agotlp_wrong"), bearer(unused.token.slice(0, -1))]) {
      const exporter = new ProtoExporter({ url: url(), headers });
      expect((await exportWith(exporter, spans)).code).toBe(ExportResultCode.FAILED);
      await exporter.shutdown();
    }
    const body = Buffer.from(ProtobufTraceSerializer.serializeRequest(spans)!);
    expect((await fetch(url(), { method: "POST", headers: { "content-type": "application/x-protobuf" }, body })).status).toBe(401);
    expect((await fetch(url(), { method: "POST", headers: { ...bearer(token), "content-type": "text/plain" }, body: "spans" })).status).toBe(415);
    const bad = await fetch(url(), { method: "POST", headers: { ...bearer(token), "content-type": "application/json" }, body: '{"resourceSpans": 7}' });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ message: expect.stringContaining("resourceSpans") });
    // Nothing was queued by a refused request: the route answers after queueing, and queued nothing.
    expect((await ledgerEvents()).length).toBe(before);
    expect(await ledger.streams()).toEqual(streams);
    expect(streams).not.toContain(streamIdFor(other));
  });
});
