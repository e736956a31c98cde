import { randomUUID } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import { Queue } from "bullmq";
import { BATCH_JOB_NAME, streamIdFor } from "@auditgraph/core";
import { Graph } from "@auditgraph/graph";
import { SegmentLedger } from "@auditgraph/ledger";
import { AuditWorker, waitUntilIdle } from "@auditgraph/worker";
import { runDemo, type Config } from "@auditgraph/cli";
import { dumpTenant } from "./graph-dump.js";
import { capturedLogger, cliEnvOf, eventually, isolatedConfig, readAll, runCli, sampleTrace } from "./helpers.js";

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

/** One ledger (a segment directory of its own) with its queue and an in-process worker, all projecting into the one shared graph. */
async function ledgerSide(graph: Graph) {
  const config: Config = await isolatedConfig();
  const ledger = new SegmentLedger(config.ledgerDir);
  const queue = new Queue(config.queueName, { connection: config.redis });
  const log = capturedLogger();
  const worker = new AuditWorker({
    connection: config.redis,
    queueName: config.queueName,
    ledger,
    graph,
    logger: log.logger,
    // A refused stream is looked at again after retryMaxMs: short here, so the hand-over is seen soon.
    projection: { retryMinMs: 20, retryMaxMs: 200 },
  });
  cleanups.push(async () => {
    await worker.close();
    await queue.obliterate({ force: true }).catch(() => undefined);
    await queue.close();
    await ledger.close();
  });
  await worker.waitUntilReady();
  /** Sends one trace of `tenantId` through the queue; resolves once its job is acknowledged (projection or not) and its events are in this ledger. */
  const send = async (tenantId: string) => {
    const events = sampleTrace(tenantId);
    await queue.add(BATCH_JOB_NAME, { events });
    await waitUntilIdle(queue, 30_000, { projection: false });
    // Acknowledged, not failed: a recorded batch leaves Redis at once, so the ledger is where it shows.
    expect(await queue.getJobCounts("failed", "waiting", "active", "delayed")).toEqual({ failed: 0, waiting: 0, active: 0, delayed: 0 });
    const ids = new Set((await readAll(ledger)).map((r) => r.event.eventId));
    expect(events.every((e) => ids.has(e.eventId))).toBe(true);
    return events[0]!.traceId;
  };
  return { config, ledger, queue, worker, log, send };
}

const traceIdsOf = async (graph: Graph, tenantId: string) =>
  (await graph.read("MATCH (t:Trace {tenantId: $tenantId}) RETURN t.id AS id ORDER BY id", { tenantId })).map((r) => r.id);

describe("two ledgers sharing one Neo4j", { timeout: 180_000 }, () => {
  it("never mix: the second ledger's worker appends and acks but refuses the tenant's graph, naming both ledgers, until rebuild-graph --replace hands it over", async () => {
    const graph = new Graph((await isolatedConfig()).neo4j);
    cleanups.push(() => graph.close());
    await graph.migrate();
    const tenantId = `shared-${randomUUID().slice(0, 8)}`;
    const streamId = streamIdFor(tenantId);
    const a = await ledgerSide(graph);
    const b = await ledgerSide(graph);
    const [idA, idB] = [await a.ledger.id(), await b.ledger.id()];
    expect(idA).not.toBe(idB);

    const traceA = await a.send(tenantId);
    await a.worker.projected(30_000);
    const projectedFromA = await dumpTenant(graph, tenantId);
    const lineageA = await graph.lineage(traceA);
    expect(lineageA).not.toBeNull();
    expect(await graph.cursors(streamId)).toEqual([{ ledgerId: idA, streamId, position: 5, hash: (await readAll(a.ledger)).at(-1)!.hash }]);

    // Ledger B: the events are in B's ledger and the job is acknowledged (ledger first), ...
    const traceB = await b.send(tenantId);
    const inB = await readAll(b.ledger);
    expect(inB.map((r) => r.event.traceId)).toEqual(Array(6).fill(traceB));
    // ... and the refusal is said once, naming both ledgers and what to do.
    const refusal = await eventually(async () =>
      b.log.lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.code === "AUDITGRAPH_PROJECTION_FOREIGN"),
    );
    expect(refusal).toMatchObject({ level: 50, streamId, ledgerId: idB, ownerLedgerId: idA });
    expect(refusal.msg).toBe(
      `stream ${streamId} (tenant "${tenantId}"): this graph database holds its projection from ledger ${idA}, not from this ledger ${idB}; not projecting it (appends go on, into this ledger). ` +
        `Give this ledger its own graph database (NEO4J_DATABASE), or hand the tenant's graph over to this ledger with \`auditgraph rebuild-graph --tenant ${tenantId} --replace\``,
    );
    await expect(b.worker.projected(10_000)).rejects.toThrow(/the projection is refused: stream .* from ledger .*, not from this ledger/);
    // The graph holds exactly A's projection: A's lineage as it was, nothing of B's trace.
    expect(await dumpTenant(graph, tenantId)).toEqual(projectedFromA);
    expect(await graph.lineage(traceA)).toEqual(lineageA);
    expect(await graph.lineage(traceB)).toBeNull();
    expect((await graph.cursors(streamId))[0]).toMatchObject({ ledgerId: idA, position: 5 });

    // The hand-over, from B: the tenant's graph is B's projection from now on, and B's worker takes it up.
    const handOver = await runCli(cliEnvOf(b.config), "rebuild-graph", "--tenant", tenantId, "--replace");
    expect(handOver.stderr).not.toMatch(/auditgraph: /);
    expect(handOver.code).toBe(0);
    // Tried again now and then meanwhile, quietly: one line for the refusal, not one per try.
    expect(b.log.lines.filter((l) => l.includes("AUDITGRAPH_PROJECTION_FOREIGN"))).toHaveLength(1);
    expect(await traceIdsOf(graph, tenantId)).toEqual([traceB]);
    expect(await graph.lineage(traceA)).toBeNull();
    expect((await graph.lineage(traceB))?.trace).toMatchObject({ id: traceB });
    expect((await graph.cursors(streamId))[0]).toMatchObject({ ledgerId: idB, position: 5 });
    const traceB2 = await b.send(tenantId);
    await eventually(async () => ((await traceIdsOf(graph, tenantId)).includes(traceB2) ? true : undefined));
    expect(await traceIdsOf(graph, tenantId)).toEqual([traceB, traceB2].sort());
    await b.worker.projected(10_000);

    // Now A is the other ledger: its next trace is in A's ledger, acknowledged, and refused the graph.
    const traceA2 = await a.send(tenantId);
    expect((await readAll(a.ledger)).at(-1)!.event.traceId).toBe(traceA2);
    await eventually(async () => (a.log.text().includes(`"ownerLedgerId":"${idB}"`) ? true : undefined));
    expect(await traceIdsOf(graph, tenantId)).toEqual([traceB, traceB2].sort());
    expect(b.log.text()).toContain("the stream's graph is this ledger's now (handed over): projecting it");
  });
});

describe("the demo, whose sample tenant every fresh checkout's ledger projects", { timeout: 180_000 }, () => {
  it("hands the tenant over to its own ledger with a printed line, and reads its own lineage back", async () => {
    const first = await isolatedConfig();
    await runDemo(first, () => undefined);
    const second = await isolatedConfig();
    const printed: string[] = [];
    const result = await runDemo(second, (line) => printed.push(line));
    const idSecond = await new SegmentLedger(second.ledgerDir).id();
    expect(printed.join("\n")).toMatch(
      new RegExp(
        `ⓘ sample tenant "acme": its graph was projected from another ledger \\(${await new SegmentLedger(first.ledgerDir).id()}\\); handed over to this demo's ledger ${idSecond} \\(\\d+ nodes replaced\\)`,
      ),
    );
    expect(result.lineage.output.text).toBe(result.answer);
    const graph = new Graph(second.neo4j);
    cleanups.push(() => graph.close());
    expect((await graph.cursors(streamIdFor("acme")))[0]).toMatchObject({ ledgerId: idSecond });
  });
});
