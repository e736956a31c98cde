import { execFileSync } from "node:child_process";
import { mkdir, open, rm, statfs } from "node:fs/promises";
import { join } from "node:path";
import { randomUUID } from "node:crypto";
import { afterAll, describe, expect, it } from "vitest";
import { AuditWorker, waitUntilIdle } from "@auditgraph/worker";
import { capturedLogger, eventually, isolatedConfig, readAll, startPipeline } from "../helpers.js";
import { startAgentLoad } from "../load.js";

/**
 * The ledger on a small file system of its own (a tmpfs), which the test fills up and then
 * remounts read-only, under a sustained load of real agents. Mounting needs root (CAP_SYS_ADMIN),
 * which CI has; elsewhere the file is skipped, and says so.
 */
const mountable = (() => {
  if (process.getuid?.() !== 0) return false;
  try {
    execFileSync("mount", ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
})();
if (!mountable) console.warn("test/faults/disk.test.ts: skipped: mounting a tmpfs needs root");

const mounted: string[] = [];
afterAll(() => {
  for (const dir of mounted) execFileSync("umount", ["-l", dir]);
});

/** Fills the file system of `dir` to the last byte; the file returned frees it again. */
async function fill(dir: string): Promise<string> {
  const path = join(dir, "filler");
  const handle = await open(path, "w");
  const chunk = Buffer.alloc(256 * 1024, 0x61);
  try {
    for (;;) {
      const { bavail, bsize } = await statfs(dir);
      const room = bavail * bsize;
      if (room === 0) break;
      await handle.write(chunk, 0, Math.min(chunk.length, room));
    }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOSPC") throw error;
  } finally {
    await handle.close();
  }
  return path;
}

describe.skipIf(!mountable)("a full or read-only ledger disk", () => {
  it("stops acknowledging, says why, and resumes without loss when it can write again", async () => {
    const config = await isolatedConfig();
    const disk = join(config.spoolDir, "..", "ledger-disk");
    await mkdir(disk, { recursive: true });
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=48m", "tmpfs", disk]);
    mounted.push(disk);
    config.ledgerDir = join(disk, "ledger");

    const { logger, lines } = capturedLogger();
    const pipeline = await startPipeline(config, { start: false });
    const worker = new AuditWorker({
      connection: config.redis,
      queueName: config.queueName,
      ledger: pipeline.ledger,
      graph: pipeline.graph,
      logger,
      ledgerRetryMaxMs: 500,
    });
    await worker.waitUntilReady();
    const tenantId = `disk-${randomUUID().slice(0, 8)}`;
    const load = startAgentLoad(config, { tenantId });
    const count = async () => (await readAll(pipeline.ledger)).length;
    /** While the disk refuses writes: nothing is appended, nothing failed, the captured events wait in Redis. */
    const stalled = async (reason: RegExp) => {
      const health = await eventually(async () => (worker.ledgerHealth().writable ? undefined : worker.ledgerHealth()));
      expect(health.reason).toMatch(reason);
      const [before, capturedBefore, refusedBefore] = [await count(), load.captured.size, health.refused ?? 0];
      // What happens instead of an append: the held batch is tried again and refused, while the agents go on.
      await eventually(async () => ((worker.ledgerHealth().refused ?? 0) >= refusedBefore + 3 && load.captured.size > capturedBefore + 100 ? true : undefined));
      expect(await count()).toBe(before);
      expect(load.captured.size).toBeGreaterThan(capturedBefore + 100);
      expect(await pipeline.queue.getFailedCount()).toBe(0);
      expect(await pipeline.queue.getJobCounts("waiting", "prioritized")).toSatisfy((c: Record<string, number>) => c.waiting! + c.prioritized! > 0);
      expect(lines.join("")).toContain("the ledger cannot be written: holding this batch unacknowledged");
      return before;
    };
    const resumed = async (after: number) => {
      await eventually(async () => (worker.ledgerHealth().writable && (await count()) > after + 100 ? true : undefined));
      expect(lines.join("")).toContain("the ledger takes writes again: resuming");
    };
    try {
      await eventually(async () => ((await count()) > 300 ? true : undefined));

      // Full: a write cut short leaves a torn tail, which the next lease cuts off.
      const filler = await fill(disk);
      const fullAt = await stalled(/^ENOSPC: no space left/);
      await rm(filler);
      await resumed(fullAt);

      // Read-only: Linux refuses to remount a file system with files open for writing, so the
      // load pauses until the worker's lease on the stream lapses and its files are closed.
      lines.length = 0;
      await load.pause();
      await eventually(async () => {
        try {
          execFileSync("mount", ["-o", "remount,ro", disk], { stdio: "ignore" });
          return true;
        } catch {
          return undefined;
        }
      });
      load.resume();
      const readOnlyAt = await stalled(/^(EROFS|ECOMPROMISED)/);
      execFileSync("mount", ["-o", "remount,rw", disk]);
      await resumed(readOnlyAt);

      await load.stop();
      await waitUntilIdle(pipeline.queue, 120_000);
      const records = await readAll(pipeline.ledger);
      // Everything captured is in the ledger once: nothing lost while the disk refused it, nothing doubled by the retries.
      expect(records.map((r) => r.event.eventId).sort()).toEqual([...load.captured.keys()].sort());
      expect(await pipeline.ledger.verify()).toMatchObject({ ok: true, count: load.captured.size });
      expect(await pipeline.queue.getFailedCount()).toBe(0);
      // No payload in the log: ids, counts and reasons only.
      expect(lines.join("")).not.toContain("KB-ERGO");
    } finally {
      await load.stop().catch(() => undefined);
      await worker.close();
      await pipeline.ledger.close();
      await pipeline.stop();
    }
  }, 180_000);
});
