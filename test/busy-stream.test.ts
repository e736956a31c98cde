import { randomUUID } from "node:crypto";
import { join } from "node:path";
import { Queue } from "bullmq";
import { afterEach, describe, expect, it } from "vitest";
import { BATCH_JOB_NAME, lockDir, streamIdFor } from "@auditgraph/core";
import { Graph } from "@auditgraph/graph";
import { SegmentLedger } from "@auditgraph/ledger";
import { AuditWorker, waitUntilIdle } from "@auditgraph/worker";
import { capturedLogger, eventually, isolatedConfig, readAll, sampleTrace } from "./helpers.js";

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!().catch(() => undefined);
});

describe("a job whose stream another worker writes", () => {
  it("goes back to the queue without spending an attempt while the stream is held, and is recorded once it is free", async () => {
    const config = await isolatedConfig();
    const tenantId = `busy-${randomUUID().slice(0, 8)}`;
    const [first, ...rest] = sampleTrace(tenantId);
    const seed = new SegmentLedger(config.ledgerDir);
    await seed.append(streamIdFor(tenantId), [first!]);
    await seed.close();
    // Another process's writer, mid-batch as far as this worker can tell: it never hands the lock over.
    const release = await lockDir(join(config.ledgerDir, "streams", streamIdFor(tenantId)), { name: "writer" });
    cleanups.push(release);
    // As `auditgraph worker` opens it: a held stream is not waited for.
    const ledger = new SegmentLedger(config.ledgerDir, { lockWaitMs: 0 });
    cleanups.push(() => ledger.close());
    const graph = new Graph(config.neo4j);
    cleanups.push(() => graph.close());
    const worker = new AuditWorker({
      connection: config.redis,
      queueName: config.queueName,
      ledger,
      graph,
      logger: capturedLogger().logger,
      busyStreamReturnMs: 30_000,
    });
    cleanups.push(() => worker.close());
    const queue = new Queue(config.queueName, { connection: config.redis });
    cleanups.push(async () => (await queue.obliterate({ force: true }), await queue.close()));

    const job = await queue.add(BATCH_JOB_NAME, { events: rest }, { attempts: 2 });
    // Returned again and again while held: never failed, no attempt spent.
    await eventually(async () => (worker.busyStreams.returned >= 5 ? true : undefined));
    // And /metrics says so.
    const scraped = await worker.metrics.registry.getSingleMetricAsString("auditgraph_jobs_returned_busy_total");
    expect(Number(/^auditgraph_jobs_returned_busy_total (\d+)$/m.exec(scraped)?.[1])).toBeGreaterThanOrEqual(5);
    const held = await queue.getJob(job.id!);
    expect(held!.attemptsMade).toBe(0);
    expect(await queue.getFailedCount()).toBe(0);
    expect(await ledger.readDeadLetters()).toEqual([]);

    await release();
    await waitUntilIdle(queue, 30_000, { projection: false });
    expect((await readAll(ledger)).map((r) => r.event.eventId)).toEqual([first!, ...rest].map((e) => e.eventId));
    expect(await queue.getFailedCount()).toBe(0);
  });
});
