/**
 * Issue 17, export, when things go wrong: an endpoint that refuses (500) or is down never fails a
 * job (its events are in the ledger and the graph) and is counted; runs still open at close go out
 * marked incomplete; an erased subject's plaintext, still in hand, never goes out; options and
 * settings that do not fit are refused, naming them, and the headers (secrets) are never echoed.
 */
import { randomUUID } from "node:crypto";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { awaitAllCallbacks } from "@langchain/core/callbacks/promises";
import { AIMessage } from "@langchain/core/messages";
import { fakeModel } from "@langchain/core/testing";
import { createAgent } from "langchain";
import { BATCH_JOB_NAME, FileKeyStore, isSealed, streamIdFor, subjectRef, type UserEvent } from "@auditgraph/core";
import { SegmentLedger } from "@auditgraph/ledger";
import { AuditCallbackHandler, QueueTransport } from "@auditgraph/langchain";
import { AuditWorker, EventRecorder, WorkerMetrics, WorkerOtlpExport, waitUntilIdle, type AuditWorkerOptions } from "@auditgraph/worker";
import { loadConfig } from "@auditgraph/cli";
import { capturedLogger, eventually, isolatedConfig, readAll, sampleTrace, startPipeline } from "./helpers.js";
import { counterValue, deadOtlpUrl, startOtlpReceiver } from "./otlp-export-receiver.js";

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!().catch(() => undefined);
});

const SECRET = "Basic c2VjcmV0LXRva2VuLTQy";

/** A worker exporting to `otlpExport`, logging into `logger`, and one real agent run (fake model) through it. */
async function agentRunWith(otlpExport: AuditWorkerOptions["otlpExport"], logger = capturedLogger().logger) {
  const config = await isolatedConfig();
  const tenantId = `otlp-fault-${randomUUID().slice(0, 8)}`;
  const pipeline = await startPipeline(config, { start: false });
  cleanups.push(() => pipeline.stop());
  await pipeline.start({ otlpExport, logger });
  const transport = new QueueTransport({ connection: config.redis, queueName: config.queueName, spoolDir: config.spoolDir });
  cleanups.push(() => transport.close());
  const handler = new AuditCallbackHandler({ agent: { id: "a", name: "Faulty", version: "1" }, user: { id: "u", tenantId } }, transport);
  await createAgent({ model: fakeModel().respond(new AIMessage("done")), tools: [] }).invoke(
    { messages: [{ role: "user", content: "go" }] },
    { callbacks: [handler] },
  );
  await awaitAllCallbacks();
  await handler.flush();
  await waitUntilIdle(pipeline.queue);
  const worker = pipeline.worker!;
  return { tenantId, pipeline, worker };
}

/** The job went through whatever the endpoint did: nothing failed, the trace is in the ledger and the graph. */
async function recordedAnyway({ tenantId, pipeline, worker }: Awaited<ReturnType<typeof agentRunWith>>) {
  expect((await pipeline.queue.getJobCounts("failed")).failed).toBe(0);
  const events = (await readAll(pipeline.ledger)).filter((r) => r.streamId === streamIdFor(tenantId));
  expect(events.map((r) => r.event.type)).toContain("llm.end");
  await worker.projected();
  const [row] = await pipeline.graph.read("MATCH (c:LLMCall {tenantId: $tenantId}) RETURN count(c) AS n", { tenantId });
  expect(Number(row!.n)).toBe(1);
}

describe("OTLP export: faults never reach the job", () => {
  it("an endpoint answering 500: the job is recorded, the spans are counted as failed, the secret header is never logged", async () => {
    const receiver = await startOtlpReceiver();
    cleanups.push(() => receiver.close());
    receiver.answer(500);
    const log = capturedLogger();
    const run = await agentRunWith({ url: receiver.url, headers: { Authorization: SECRET }, scheduledDelayMs: 10 }, log.logger);
    await recordedAnyway(run);
    const failed = await eventually(async () => ((await counterValue(run.worker.metrics, "auditgraph_otlp_spans_failed_total")) > 0 ? true : undefined));
    expect(failed).toBe(true);
    expect(receiver.requests.length).toBeGreaterThan(0);
    expect(receiver.requests[0]!.headers.authorization).toBe(SECRET);
    expect(await counterValue(run.worker.metrics, "auditgraph_otlp_spans_exported_total")).toBe(0);
    expect(log.text()).toContain("OTLP export: spans not delivered");
    expect(log.text()).not.toContain(SECRET);
  });

  it("an endpoint that is down: the job is recorded, and the spans are counted as failed once the exporter's retries run out", async () => {
    const run = await agentRunWith({ url: await deadOtlpUrl(), timeoutMs: 300, scheduledDelayMs: 10 });
    await recordedAnyway(run);
    await eventually(async () => ((await counterValue(run.worker.metrics, "auditgraph_otlp_spans_failed_total")) > 0 ? true : undefined));
    expect(await counterValue(run.worker.metrics, "auditgraph_otlp_spans_exported_total")).toBe(0);
  });

  it("on close, the runs still open go out marked incomplete, the runs that ended as they are", async () => {
    const receiver = await startOtlpReceiver();
    cleanups.push(() => receiver.close());
    const config = await isolatedConfig();
    const pipeline = await startPipeline(config, { start: false });
    await pipeline.start({ otlpExport: { url: receiver.url, scheduledDelayMs: 60_000 } });
    const trace = sampleTrace();
    // The root chain's start, and a whole model call: the chain has not ended when the worker closes.
    await pipeline.queue.add(BATCH_JOB_NAME, { events: trace.slice(0, 3) });
    await waitUntilIdle(pipeline.queue);
    expect(receiver.requests).toHaveLength(0);
    await pipeline.stop();
    const spans = receiver.spans();
    expect(spans.map((s) => [s.name, s.attributes["auditgraph.incomplete"]]).sort()).toEqual([
      ["chat fake-model", undefined],
      ["invoke_agent Test agent", true],
    ]);
    const root = spans.find((s) => s.name.startsWith("invoke_agent"))!;
    expect(root.attributes["auditgraph.event.ids"]).toEqual([trace[0]!.eventId]);
  });

  it("an erased subject's events, still in hand when the export takes them, never go out; another subject's do", async () => {
    const receiver = await startOtlpReceiver();
    cleanups.push(() => receiver.close());
    const dir = await mkdtemp(join(tmpdir(), "auditgraph-otlp-sealed-"));
    const ledger = new SegmentLedger(join(dir, "ledger"));
    const keyStore = new FileKeyStore(join(dir, "keystore"));
    const tenantId = `sealed-${randomUUID().slice(0, 8)}`;
    const alice = sampleTrace(tenantId);
    const bob = (JSON.parse(JSON.stringify(sampleTrace(tenantId)).replaceAll("add 1 and 2", "BOB-PRIVATE-QUESTION")) as UserEvent[]).map((e) => ({
      ...e,
      identity: { ...e.identity, user: { ...e.identity.user, id: "bob" } },
    })) as UserEvent[];
    const metrics = new WorkerMetrics({
      projectionLag: () => 0,
      queueCounts: async () => undefined,
      redisUp: () => true,
      ledgerWritable: () => true,
      graphMigrated: () => true,
    });
    const exporter = new WorkerOtlpExport({ url: receiver.url, scheduledDelayMs: 10 }, keyStore, metrics, capturedLogger().logger);
    const appended: Parameters<WorkerOtlpExport["offer"]>[0][] = [];
    const recorder = new EventRecorder({ ledger, keyStore, onAppended: (a) => appended.push(a) });
    await recorder.record(streamIdFor(tenantId), alice);
    await recorder.record(streamIdFor(tenantId), bob);
    // Bob is erased between the append and the export (his key destroyed): his plaintext is still in hand.
    await keyStore.destroy(subjectRef(tenantId, "bob"));
    for (const a of appended) exporter.offer(a);
    await exporter.close();
    await ledger.close?.();

    const records = await readAll(ledger);
    expect(records.filter((r) => isSealed(r.event))).toHaveLength(alice.length + bob.length);
    const spans = receiver.spans();
    expect(spans.map((s) => s.attributes["user.id"])).toEqual(spans.map(() => "u1"));
    expect(spans.map((s) => s.name).sort()).toEqual(["chat fake-model", "execute_tool add", "invoke_agent Test agent"]);
    expect(JSON.parse(spans.find((s) => s.name === "chat fake-model")!.attributes["gen_ai.input.messages"] as string)[0].parts[0].content).toBe("add 1 and 2");
    expect(receiver.requests.map((r) => r.body.toString("latin1")).join("")).not.toContain("BOB-PRIVATE-QUESTION");
    expect(await counterValue(metrics, "auditgraph_otlp_spans_exported_total")).toBe(3);
  });
});

describe("OTLP export: settings", () => {
  it("refuses an unknown export option, naming it, before the worker connects anywhere", async () => {
    const config = await isolatedConfig();
    const ledger = new SegmentLedger(config.ledgerDir);
    const graph = { projectRange: async () => ({}) } as never;
    const options = { connection: config.redis, queueName: config.queueName, ledger, graph };
    expect(() => new AuditWorker({ ...options, otlpExport: { url: "http://127.0.0.1:4318/v1/traces", batchSize: 10 } as never })).toThrow(
      /otlpExport.*batchSize/,
    );
    expect(() => new AuditWorker({ ...options, otlpExport: { url: "http://127.0.0.1:4318/v1/traces", protocol: "grpc" } as never })).toThrow(
      /otlpExport\.protocol/,
    );
  });

  it("reads AUDITGRAPH_OTLP_EXPORT_* and refuses a bad one, naming the variable and never quoting a header", () => {
    const url = "http://collector:4318/v1/traces";
    expect(loadConfig({ AUDITGRAPH_OTLP_EXPORT_URL: url }).otlpExport).toEqual({ url, headers: {}, protocol: "http/protobuf", content: "full" });
    expect(
      loadConfig({
        AUDITGRAPH_OTLP_EXPORT_URL: url,
        AUDITGRAPH_OTLP_EXPORT_HEADERS: "Authorization=Basic%20cGs6c2s%3D, x-scope-orgid=team-a",
        AUDITGRAPH_OTLP_EXPORT_PROTOCOL: "http/json",
        AUDITGRAPH_OTLP_EXPORT_CONTENT: "metadata",
      }).otlpExport,
    ).toEqual({ url, headers: { Authorization: "Basic cGs6c2s=", "x-scope-orgid": "team-a" }, protocol: "http/json", content: "metadata" });
    expect(loadConfig({}).otlpExport).toBeUndefined();
    expect(() => loadConfig({ AUDITGRAPH_OTLP_EXPORT_URL: "grpc://collector:4317" })).toThrow(/AUDITGRAPH_OTLP_EXPORT_URL/);
    expect(() => loadConfig({ AUDITGRAPH_OTLP_EXPORT_URL: url, AUDITGRAPH_OTLP_EXPORT_PROTOCOL: "grpc" })).toThrow(/AUDITGRAPH_OTLP_EXPORT_PROTOCOL/);
    expect(() => loadConfig({ AUDITGRAPH_OTLP_EXPORT_URL: url, AUDITGRAPH_OTLP_EXPORT_CONTENT: "some" })).toThrow(/AUDITGRAPH_OTLP_EXPORT_CONTENT/);
    let message = "";
    try {
      loadConfig({ AUDITGRAPH_OTLP_EXPORT_URL: url, AUDITGRAPH_OTLP_EXPORT_HEADERS: `x-team=a,${SECRET}` });
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toMatch(/AUDITGRAPH_OTLP_EXPORT_HEADERS: .*pair 2/);
    expect(message).not.toContain("c2VjcmV0");
    expect(() => loadConfig({ AUDITGRAPH_OTLP_EXPORT_HEADERS: "a=b" })).toThrow(/AUDITGRAPH_OTLP_EXPORT_HEADERS: is set but AUDITGRAPH_OTLP_EXPORT_URL is not/);
  });
});
