import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomUUID } from "node:crypto";
import { BATCH_JOB_NAME, MAX_ID_LENGTH } from "@auditgraph/core";
import { waitUntilIdle } from "@auditgraph/worker";
import { capturedLogger, eventually, isolatedConfig, sampleTrace, startPipeline } from "../helpers.js";

/**
 * Poison never stops anything: a job Redis holds that BullMQ cannot parse, and an event the
 * graph could never index, are each dead-lettered whole with their reason, and the jobs and
 * events after them (of the same tenant too) are recorded and projected.
 */
let p: Awaited<ReturnType<typeof startPipeline>>;
const log = capturedLogger();

beforeAll(async () => {
  p = await startPipeline(await isolatedConfig(), { start: false });
});

afterAll(async () => {
  await p.stop();
});

const inNeo4j = async (tenantId: string, traceId: string) =>
  ((await p.graph.read(`MATCH (t:Trace {tenantId: $tenantId, id: $traceId}) RETURN count(t) AS n`, { tenantId, traceId }))[0]!.n as number) === 1;

describe("poison jobs and events", () => {
  it("dead-letters job data that is not JSON whole, with the reason, and goes on with the next job", async () => {
    const before = sampleTrace();
    const after = sampleTrace();
    // Queued before the worker starts, so it takes them in this order. The poison job is written
    // as BullMQ stores a job (a hash whose `data` field is the JSON text), its data then damaged.
    const first = await p.queue.add(BATCH_JOB_NAME, { events: before });
    const poison = await p.queue.add(BATCH_JOB_NAME, { events: [] });
    const raw = `{"events": [{"eventId": "poison-marker-${randomUUID()}", truncated`;
    const client = await p.queue.getBackend().client;
    await client.hset(p.queue.toKey(poison.id!), { data: raw });
    const last = await p.queue.add(BATCH_JOB_NAME, { events: after });
    await p.start({ logger: log.logger, lockDurationMs: 2_000 });

    // Without the containment the poison job stays active, stalls and is taken again: never idle.
    await waitUntilIdle(p.queue, 20_000);
    for (const e of [...before, ...after]) expect((await p.ledger.readEvent(e.eventId))?.event).toEqual(e);
    const letters = await p.ledger.readDeadLetters();
    expect(letters.map((l) => l.id)).toEqual([poison.id]);
    expect(letters[0]).toMatchObject({ jobId: poison.id, input: raw, reason: expect.stringMatching(/data is not valid JSON/) });
    // The reason names the problem, never the content; no log line quotes it either.
    expect(letters[0]!.reason).not.toContain("poison-marker");
    expect(log.text()).not.toContain("poison-marker");
    const counts = await p.queue.getJobCounts("active", "waiting", "delayed", "failed", "prioritized");
    expect(counts).toEqual({ active: 0, waiting: 0, delayed: 0, failed: 0, prioritized: 0 });
    for (const job of [first, poison, last]) expect(await p.queue.getJob(job.id!)).toBeUndefined();
    await eventually(async () => ((await inNeo4j(after[0]!.identity.user.tenantId, after[0]!.traceId)) ? true : undefined), 20_000);
  });

  it("dead-letters an event with a 40 KB traceId naming the field, and the tenant's next events reach Neo4j", async () => {
    const tenantId = `t-${randomUUID().slice(0, 8)}`;
    const huge = sampleTrace(tenantId).map((e) => ({ ...e, traceId: "t".repeat(40_000) }));
    const good = sampleTrace(tenantId);
    const bad = await p.queue.add(BATCH_JOB_NAME, { events: huge.slice(0, 1) });
    await p.queue.add(BATCH_JOB_NAME, { events: good });
    // With the projection: an event Neo4j cannot index would hold the tenant's stream for ever.
    await waitUntilIdle(p.queue, 30_000);

    const letter = (await p.ledger.readDeadLetters()).find((l) => l.id === `${bad.id}#0`);
    expect(letter?.reason).toMatch(new RegExp(`^invalid event 0: traceId: .*${MAX_ID_LENGTH}`));
    expect(letter?.input).toEqual(huge[0]);
    expect(await p.ledger.readEvent(huge[0]!.eventId)).toBeUndefined();
    for (const e of good) expect((await p.ledger.readEvent(e.eventId))?.event).toEqual(e);
    expect(await inNeo4j(tenantId, good[0]!.traceId)).toBe(true);
    expect(p.worker!.projectionLag().filter((l) => l.failures > 0)).toEqual([]);
  });
});
