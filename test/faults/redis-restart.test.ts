import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { waitUntilIdle } from "@auditgraph/worker";
import { capturedLogger, eventually, isolatedConfig, readAll, startPipeline } from "../helpers.js";
import { startAgentLoad } from "../load.js";
import { RedisProcess, freePort } from "../redis-process.js";

/**
 * A Redis of the test's own, killed (SIGKILL) and started again under a sustained load of real
 * agents: with AOF it keeps every job; without persistence it comes back empty, and the loss
 * must be found and reported (and, for batches their producer still holds, made good).
 */
async function setUp(aof: boolean) {
  const port = await freePort();
  const redis = new RedisProcess(port, aof ? await mkdtemp(join(tmpdir(), "auditgraph-aof-")) : undefined);
  await redis.start();
  const config = { ...(await isolatedConfig()), redis: { host: "127.0.0.1", port } };
  const pipeline = await startPipeline(config, { start: false });
  const worker = capturedLogger();
  await pipeline.start({ logger: worker.logger, lockDurationMs: 2_000 });
  const transport = capturedLogger();
  const load = startAgentLoad(config, { tenantId: `redis-${randomUUID().slice(0, 8)}`, logger: transport.logger });
  const count = async () => (await readAll(pipeline.ledger)).length;
  /** Everything captured is in the ledger exactly once, and the chain verifies. */
  const recordedOnce = async () => {
    const ids = (await readAll(pipeline.ledger)).map((r) => r.event.eventId);
    expect(ids.sort()).toEqual([...load.captured.keys()].sort());
    expect(await pipeline.ledger.verify()).toMatchObject({ ok: true, count: load.captured.size });
  };
  const tearDown = async () => {
    await load.stop().catch(() => undefined);
    await pipeline.stop();
    await pipeline.ledger.close();
    await redis.stop();
  };
  return { redis, pipeline, load, count, recordedOnce, tearDown, workerLog: worker, transportLog: transport };
}

describe("Redis killed and started again under load", () => {
  it("with AOF: nothing is lost, and nothing needed sending again", async () => {
    const t = await setUp(true);
    try {
      await eventually(async () => ((await t.count()) > 200 ? true : undefined));
      await t.redis.stop();
      // The load goes on meanwhile: its batches go to the spool.
      await eventually(async () => (t.load.transport.spooling && t.load.transport.metrics.spooled > 0 ? true : undefined));
      await t.redis.start();
      await eventually(async () => (t.load.transport.spooling ? undefined : true));
      const grown = (await t.count()) + 200;
      await eventually(async () => ((await t.count()) > grown ? true : undefined));

      await t.load.pause();
      await eventually(async () => (t.load.transport.unrecorded === 0 ? true : undefined), 60_000);
      await waitUntilIdle(t.pipeline.queue, 60_000);
      await t.recordedOnce();
      expect(t.load.transport.metrics.spooled).toBeGreaterThan(0);
      // The AOF had every job: none vanished, and Redis's data was never found lost.
      expect(t.load.transport.metrics.resent).toBe(0);
      expect(t.pipeline.worker!.redisLosses).toEqual([]);
    } finally {
      await t.tearDown();
    }
  }, 120_000);

  it("without persistence: the loss is reported by the worker and the transport, and what the transport held is sent again", async () => {
    const t = await setUp(false);
    try {
      await eventually(async () => ((await t.count()) > 200 ? true : undefined));
      // The worker stops taking jobs, so that Redis holds a backlog when it dies.
      await t.pipeline.worker!.worker.pause();
      await eventually(async () => ((await t.pipeline.queue.getJobCounts("prioritized")).prioritized! >= 5 ? true : undefined));
      const before = await t.count();
      await t.redis.stop();
      await t.redis.start();
      t.pipeline.worker!.worker.resume();

      await eventually(async () => (t.pipeline.worker!.redisLosses.length > 0 ? true : undefined));
      expect(t.workerLog.text()).toContain("Redis lost its data (restarted without persistence, or flushed)");
      await t.load.pause();
      await eventually(async () => (t.load.transport.unrecorded === 0 ? true : undefined), 60_000);
      await waitUntilIdle(t.pipeline.queue, 60_000);
      expect(t.load.transport.metrics.resent).toBeGreaterThan(0);
      expect(t.transportLog.text()).toContain("Redis lost batches no worker had recorded");
      expect(await t.count()).toBeGreaterThan(before);
      await t.recordedOnce();
    } finally {
      await t.tearDown();
    }
  }, 120_000);
});
