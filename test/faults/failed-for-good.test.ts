import { randomUUID } from "node:crypto";
import { Queue } from "bullmq";
import { describe, expect, it } from "vitest";
import { BATCH_JOB_NAME, streamIdFor } from "@auditgraph/core";
import { Graph } from "@auditgraph/graph";
import { SegmentLedger } from "@auditgraph/ledger";
import { AuditWorker, waitUntilIdle } from "@auditgraph/worker";
import { replayDeadLetters } from "@auditgraph/cli";
import { capturedLogger, eventually, holdStream, isolatedConfig, readAll, sampleTrace } from "../helpers.js";

describe("a batch that fails every attempt", () => {
  it("is dead-lettered whole with the reason, and a replay records it once the cause is gone", async () => {
    const config = await isolatedConfig();
    const tenantId = `failed-${randomUUID().slice(0, 8)}`;
    const events = sampleTrace(tenantId);
    // Another writer holds the tenant's stream and does not let go: this worker's appends time out.
    const release = await holdStream(config.ledgerDir, streamIdFor(tenantId), sampleTrace(tenantId)[0]!);
    const ledger = new SegmentLedger(config.ledgerDir, { lockWaitMs: 100 });
    const graph = new Graph(config.neo4j);
    await graph.migrate();
    const queue = new Queue(config.queueName, { connection: config.redis });
    const log = capturedLogger();
    const worker = new AuditWorker({ connection: config.redis, queueName: config.queueName, ledger, graph, logger: log.logger });
    try {
      const job = await queue.add(BATCH_JOB_NAME, { events }, { attempts: 2, backoff: { type: "fixed", delay: 50 } });
      const [letter] = await eventually(async () => {
        const letters = await ledger.readDeadLetters();
        return letters.length > 0 ? letters : undefined;
      });
      expect(letter).toMatchObject({ id: job.id, jobId: job.id, input: { events } });
      expect(letter!.reason).toMatch(/^failed for good after 2 attempts: .*is locked by another writer/);
      expect(log.text()).toContain("batch failed for good: dead-lettered");

      await release();
      const [replay] = await replayDeadLetters(config, [job.id!], { by: "ops" });
      expect(replay).toMatchObject({ deadLetterId: job.id, by: "ops" });
      await waitUntilIdle(queue, 30_000);
      const stored = (await readAll(ledger)).map((r) => r.event.eventId);
      expect(stored).toEqual(expect.arrayContaining(events.map((e) => e.eventId)));
    } finally {
      await worker.close();
      await release();
      await ledger.close();
      await queue.obliterate({ force: true }).catch(() => undefined);
      await queue.close();
      await graph.close();
    }
  }, 60_000);
});
