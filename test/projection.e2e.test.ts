import { randomUUID } from "node:crypto";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { Queue } from "bullmq";
import { awaitAllCallbacks } from "@langchain/core/callbacks/promises";
import { BATCH_JOB_NAME, GENESIS_HASH, isSealed, sha256Hex, streamIdFor, type LedgerRecord } from "@auditgraph/core";
import { Graph } from "@auditgraph/graph";
import { SegmentLedger } from "@auditgraph/ledger";
import { AuditCallbackHandler, METADATA_KEYS, QueueTransport } from "@auditgraph/langchain";
import { AuditWorker, openRange, processBatch, rebuildGraph, waitUntilIdle, type ProjectionGraph } from "@auditgraph/worker";
import { DEMO_IDENTITY, DEMO_QUESTION, demoAgent, eraseSubject, keyStoreOf, loadConfig, type Config } from "@auditgraph/cli";
import { dumpTenant, withoutErased } from "./graph-dump.js";
import { eventually, isolatedConfig, readAll, sampleTrace } from "./helpers.js";

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

const graph = new Graph(loadConfig().neo4j);
afterAll(() => graph.close());

/** A queue and a ledger of their own, for workers the test makes. */
async function stores() {
  const config = await isolatedConfig();
  await graph.migrate();
  const ledger = new SegmentLedger(config.ledgerDir);
  const queue = new Queue(config.queueName, { connection: config.redis });
  cleanups.push(async () => {
    await queue.obliterate({ force: true }).catch(() => undefined);
    await queue.close();
    await ledger.close();
  });
  return { config, ledger, queue };
}

function workerOf(config: Config, ledger: SegmentLedger, projectionGraph: ProjectionGraph, options: { concurrency?: number; keyStore?: boolean } = {}) {
  const worker = new AuditWorker({
    connection: config.redis,
    queueName: config.queueName,
    ledger,
    graph: projectionGraph,
    concurrency: options.concurrency ?? 1,
    projection: { retryMinMs: 20, retryMaxMs: 100, batchSize: 4 },
    ...(options.keyStore ? { keyStore: keyStoreOf(config) } : {}),
  });
  cleanups.push(() => worker.close());
  return worker;
}

describe("the projection cursor: a range is projected only where it extends the cursor, on its hash chain", () => {
  const streamId = `test-cursor-${randomUUID().slice(0, 8)}`;
  const h = (s: string) => sha256Hex(`${streamId}/${s}`);
  afterAll(() => graph.driver.executeQuery("MATCH (c:ProjectionCursor {streamId: $streamId}) DELETE c", { streamId }));

  const ledgerId = randomUUID();

  it("refuses a gap, moves over a range that extends it, reports a repeat, another chain, and a cursor further on", async () => {
    await graph.migrate();
    const range = (from: number, prevHash: string, hashes: string[], restart = false) =>
      graph.projectRange({ ledgerId, streamId, from, prevHash, hashes, restart }, []);
    expect(await range(1, h("0"), [h("1")])).toEqual({ status: "gap", position: -1, hash: GENESIS_HASH });
    expect(await range(0, GENESIS_HASH, [h("0"), h("1")])).toEqual({ status: "projected", position: 1, hash: h("1"), projected: 0 });
    expect(await range(0, GENESIS_HASH, [h("0"), h("1")])).toEqual({ status: "behind", position: 1, hash: h("1") });
    // Overlapping: only what lies past the cursor is new.
    expect(await range(1, h("0"), [h("1"), h("2")])).toMatchObject({ status: "projected", position: 2 });
    expect(await range(3, h("other"), [h("3")])).toEqual({ status: "mismatch", position: 2, hash: h("2") });
    expect(await range(0, GENESIS_HASH, [h("0")])).toEqual({ status: "ahead", position: 2, hash: h("2") });
    expect(await graph.cursors(streamId)).toEqual([{ ledgerId, streamId, position: 2, hash: h("2") }]);
    // A restart (a rebuild, or this ledger's cursor found off its chain) takes the cursor over, even lower.
    expect(await range(0, GENESIS_HASH, [h("x0")], true)).toMatchObject({ status: "projected", position: 0, hash: h("x0") });
    expect(await graph.cursors(streamId)).toEqual([{ ledgerId, streamId, position: 0, hash: h("x0") }]);
  });

  it("refuses every range of another ledger, even a restart, until a hand-over; a cursor from before ledger ids is claimed on its chain only", async () => {
    const other = randomUUID();
    const foreign = { status: "foreign", position: 0, hash: h("x0"), ledgerId };
    for (const restart of [false, true])
      expect(await graph.projectRange({ ledgerId: other, streamId, from: 1, prevHash: h("x0"), hashes: [h("x1")], restart }, [])).toEqual(foreign);
    expect(await graph.cursors(streamId)).toEqual([{ ledgerId, streamId, position: 0, hash: h("x0") }]);
    // The hand-over (rebuild-graph --replace): the other ledger's from now on, and this one's refused.
    expect(await graph.projectRange({ ledgerId: other, streamId, from: 0, prevHash: GENESIS_HASH, hashes: [h("y0")], handOver: true }, [])).toMatchObject({
      status: "projected",
      position: 0,
    });
    expect(await graph.cursors(streamId)).toEqual([{ ledgerId: other, streamId, position: 0, hash: h("y0") }]);
    expect(await graph.projectRange({ ledgerId, streamId, from: 1, prevHash: h("y0"), hashes: [h("y1")] }, [])).toEqual({
      status: "foreign",
      position: 0,
      hash: h("y0"),
      ledgerId: other,
    });

    // A cursor as 0006 made them, with no ledger id: another chain is refused, the cursor's own chain claims it.
    await graph.driver.executeQuery("MATCH (c:ProjectionCursor {streamId: $streamId}) REMOVE c.ledgerId", { streamId });
    expect(await graph.cursors(streamId)).toEqual([{ streamId, position: 0, hash: h("y0") }]);
    expect(await graph.projectRange({ ledgerId, streamId, from: 1, prevHash: h("z0"), hashes: [h("z1")] }, [])).toEqual({
      status: "foreign",
      position: 0,
      hash: h("y0"),
      ledgerId: null,
    });
    expect(await graph.projectRange({ ledgerId, streamId, from: 1, prevHash: h("y0"), hashes: [h("y1")] }, [])).toMatchObject({
      status: "projected",
      position: 1,
    });
    expect(await graph.cursors(streamId)).toEqual([{ ledgerId, streamId, position: 1, hash: h("y1") }]);
  });
});

describe("idempotent projection", () => {
  it("projecting the same records again, through any path, changes nothing in the graph or the cursor", async () => {
    const { config, ledger, queue } = await stores();
    const worker = workerOf(config, ledger, graph);
    await worker.waitUntilReady();
    const tenantId = `idem-${randomUUID().slice(0, 8)}`;
    const traces = [sampleTrace(tenantId), sampleTrace(tenantId)];
    for (const events of traces) await queue.add(BATCH_JOB_NAME, { events });
    await waitUntilIdle(queue);
    const before = await dumpTenant(graph, tenantId);
    const [cursor] = await graph.cursors(streamIdFor(tenantId));
    expect(before.nodes.length).toBeGreaterThan(10);
    expect(cursor).toMatchObject({ position: 11 });

    const records = await readAll(ledger);
    const { range, records: plain } = await openRange(records);
    await graph.project(plain);
    const ledgerId = await ledger.id();
    expect(cursor).toMatchObject({ ledgerId });
    expect(await graph.projectRange({ ...range, ledgerId }, plain)).toEqual({ status: "behind", position: 11, hash: cursor!.hash });
    // A restart projects every record again, over what is there.
    expect(await graph.projectRange({ ...range, ledgerId, restart: true }, plain)).toMatchObject({ status: "projected", position: 11, projected: 12 });
    await processBatch(ledger, graph, "again", { events: traces.flat() });
    await queue.add(BATCH_JOB_NAME, { events: traces[1] });
    await waitUntilIdle(queue);

    expect(await dumpTenant(graph, tenantId)).toEqual(before);
    expect(await graph.cursors(streamIdFor(tenantId))).toEqual([cursor]);
    expect(await readAll(ledger)).toHaveLength(12);
  });
});

describe("the graph down and back, for one running worker", () => {
  it("acks every job at once, retries the projection with backoff, and catches up in order once the graph answers", async () => {
    const { config, ledger, queue } = await stores();
    let down = true;
    let attempts = 0;
    const outage = () => Promise.reject(new Error("Neo4j unreachable (test)"));
    const flaky: ProjectionGraph = {
      projectRange: (range, records) => (attempts++, down ? outage() : graph.projectRange(range, records)),
      cursors: (streamId) => (down ? outage() : graph.cursors(streamId)),
    };
    const worker = workerOf(config, ledger, flaky);
    await worker.waitUntilReady();
    const tenantId = `flaky-${randomUUID().slice(0, 8)}`;
    const traces = Array.from({ length: 3 }, () => sampleTrace(tenantId));
    for (const events of traces) await queue.add(BATCH_JOB_NAME, { events });
    await waitUntilIdle(queue, 30_000, { projection: false });
    // Acknowledged: nothing left in the queue, nothing failed (completed jobs leave Redis at once).
    expect(await queue.getJobCounts("waiting", "active", "delayed", "prioritized", "failed", "completed")).toEqual({
      waiting: 0,
      active: 0,
      delayed: 0,
      prioritized: 0,
      failed: 0,
      completed: 0,
    });
    expect(await readAll(ledger)).toHaveLength(18);
    await eventually(async () => ((worker.projectionLag()[0]?.failures ?? 0) >= 3 ? true : undefined));
    expect(await dumpTenant(graph, tenantId)).toEqual({ nodes: [], relationships: [] });

    down = false;
    const tried = attempts;
    await worker.projected(30_000);
    const last = (await readAll(ledger)).at(-1)!;
    expect(await graph.cursors(streamIdFor(tenantId))).toEqual([
      { ledgerId: await ledger.id(), streamId: streamIdFor(tenantId), position: 17, hash: last.hash },
    ]);
    const traceIds = await graph.read(`MATCH (t:Trace {tenantId: $tenantId})<-[:PART_OF]-(:LLMCall)-[:GENERATED]->(:Output) RETURN t.id AS id ORDER BY id`, {
      tenantId,
    });
    expect(traceIds.map((r) => r.id)).toEqual(traces.map((t) => t[0]!.traceId).sort());
    // Batches of 4 after the outage: the backlog was read back from the ledger, in ranges.
    expect(attempts - tried).toBeGreaterThanOrEqual(Math.ceil(18 / 4));
  });
});

describe("several workers projecting one stream", () => {
  it("end with every event projected once and the cursor at the stream's end", async () => {
    const { config, ledger, queue } = await stores();
    const a = workerOf(config, ledger, graph, { concurrency: 3 });
    const b = workerOf(config, ledger, graph, { concurrency: 3 });
    await Promise.all([a.waitUntilReady(), b.waitUntilReady()]);
    const tenantId = `many-${randomUUID().slice(0, 8)}`;
    const traces = Array.from({ length: 12 }, () => sampleTrace(tenantId));
    await queue.addBulk(traces.map((events) => ({ name: BATCH_JOB_NAME, data: { events } })));
    await waitUntilIdle(queue);
    const records = await readAll(ledger);
    expect(records).toHaveLength(72);
    expect(await graph.cursors(streamIdFor(tenantId))).toEqual([
      { ledgerId: await ledger.id(), streamId: streamIdFor(tenantId), position: 71, hash: records.at(-1)!.hash },
    ]);
    const [counts] = await graph.read(
      `MATCH (t:Trace {tenantId: $tenantId}) OPTIONAL MATCH (o:Output {tenantId: $tenantId}) OPTIONAL MATCH (x:ToolCall {tenantId: $tenantId})
       RETURN count(DISTINCT t) AS traces, count(DISTINCT o) AS outputs, count(DISTINCT x) AS toolCalls`,
      { tenantId },
    );
    expect(counts).toEqual({ traces: 12, outputs: 12, toolCalls: 12 });
  });
});

describe("rebuild-graph equals the live projection", () => {
  it("a real audited agent's tenant, one of its users erased: deleted and rebuilt from the ledger, the graph is the live one without the erased subject's nodes", async () => {
    const { config, ledger, queue } = await stores();
    const worker = workerOf(config, ledger, graph, { keyStore: true });
    await worker.waitUntilReady();
    const transport = new QueueTransport({ connection: config.redis, queueName: config.queueName, spoolDir: config.spoolDir });
    cleanups.push(() => transport.close());
    const handler = new AuditCallbackHandler({ agent: DEMO_IDENTITY.agent }, transport);
    const tag = randomUUID().slice(0, 8);
    const tenantId = `rebuild-${tag}`;
    const ask = async (user: string, question: string) => {
      await demoAgent().invoke(
        { messages: [{ role: "user", content: question }] },
        {
          runId: randomUUID(),
          callbacks: [handler],
          // A session each: one the erased subject shared would name its first trace, which a rebuild cannot read.
          metadata: { [METADATA_KEYS.userId]: user, [METADATA_KEYS.tenantId]: tenantId, [METADATA_KEYS.sessionId]: randomUUID() },
        },
      );
      await awaitAllCallbacks();
      await handler.flush();
      await waitUntilIdle(queue);
    };
    const secret = `alice's first question ${tag}`;
    await ask(`alice-${tag}`, `${DEMO_QUESTION} (${secret})`);
    await ask(`bob-${tag}`, DEMO_QUESTION);
    expect(JSON.stringify(await dumpTenant(graph, tenantId))).toContain(secret);
    await eraseSubject(config, { user: `alice-${tag}`, tenant: tenantId }, () => undefined);
    // The same user again, under a new key, after the erasure.
    await ask(`alice-${tag}`, `${DEMO_QUESTION} (asked again)`);

    const live = await dumpTenant(graph, tenantId);
    const streamId = streamIdFor(tenantId);
    const records: LedgerRecord[] = [];
    for await (const r of ledger.readStream(streamId)) records.push(r);
    expect(await graph.cursors(streamId)).toEqual([{ ledgerId: await ledger.id(), streamId, position: records.length - 1, hash: records.at(-1)!.hash }]);
    expect(JSON.stringify(live)).not.toContain(secret);
    expect(withoutErased(live).nodes.length).toBeLessThan(live.nodes.length);

    expect(await graph.deleteProjection({ tenantId }, { batchSize: 10 })).toBe(live.nodes.length + 1);
    expect(await dumpTenant(graph, tenantId)).toEqual({ nodes: [], relationships: [] });
    expect(await graph.cursors(streamId)).toEqual([]);

    const progress: number[] = [];
    const result = await rebuildGraph(ledger, graph, {
      tenantId,
      keyStore: keyStoreOf(config),
      batchSize: 7,
      onProgress: (p) => p.phase === "projecting" && progress.push(p.done),
    });
    const erasure = records.find((r) => r.event.type === "subject.erased")!.event as { payload: { keyId: string } };
    const erased = records.filter((r) => isSealed(r.event) && r.event.sealed.keyId === erasure.payload.keyId);
    expect(erased.length).toBeGreaterThan(5);
    expect(result).toMatchObject({ records: records.length, erased: erased.length, projected: records.length - erased.length, deleted: 0 });
    expect(progress.at(-1)).toBe(records.length);
    expect(progress.length).toBe(Math.ceil(records.length / 7));

    const rebuilt = await dumpTenant(graph, tenantId);
    expect(rebuilt).toEqual(withoutErased(live));
    expect(JSON.stringify(rebuilt)).not.toContain(secret);
    expect(await graph.cursors(streamId)).toEqual([{ ledgerId: await ledger.id(), streamId, position: records.length - 1, hash: records.at(-1)!.hash }]);

    // Into a tenant that is there already: refused, unless told to replace it.
    await expect(rebuildGraph(ledger, graph, { tenantId, keyStore: keyStoreOf(config) })).rejects.toThrow(
      new RegExp(`the graph is not empty: it holds ${rebuilt.nodes.length + 1} nodes of tenant "${tenantId}"`),
    );
    const again = await rebuildGraph(ledger, graph, { tenantId, keyStore: keyStoreOf(config), replace: true });
    expect(again.deleted).toBe(rebuilt.nodes.length + 1);
    expect(await dumpTenant(graph, tenantId)).toEqual(rebuilt);
  });
});
