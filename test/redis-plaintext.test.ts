import { randomUUID } from "node:crypto";
import { Queue } from "bullmq";
import { Redis } from "ioredis";
import { afterEach, describe, expect, it } from "vitest";
import { BATCH_JOB_NAME, streamIdFor, type AuditEvent } from "@auditgraph/core";
import { Graph } from "@auditgraph/graph";
import { SegmentLedger } from "@auditgraph/ledger";
import { QueueTransport } from "@auditgraph/langchain";
import { AuditWorker } from "@auditgraph/worker";
import { capturedLogger, eventually, holdStream, isolatedConfig, readAll, sampleTrace, startPipeline } from "./helpers.js";

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!().catch(() => undefined);
});

/** A sample trace whose tool input carries `secret` (as an agent's would, unredacted). */
function traceHolding(secret: string, tenantId = `plain-${randomUUID().slice(0, 8)}`): AuditEvent[] {
  const events = sampleTrace(tenantId);
  const start = events.find((e) => e.type === "tool.start")!;
  (start.payload as { input: string }).input = JSON.stringify({ a: 1, b: 2, note: secret });
  return events as AuditEvent[];
}

/** Every key of the queue whose value holds `needle`, whatever its type. */
async function keysHolding(redis: Redis, queueName: string, needle: string): Promise<string[]> {
  const found: string[] = [];
  for await (const keys of redis.scanStream({ match: `bull:${queueName}:*`, count: 1000 }) as AsyncIterable<string[]>) {
    for (const key of keys) {
      const type = await redis.type(key);
      const value =
        type === "hash"
          ? await redis.hgetall(key)
          : type === "string"
            ? await redis.get(key)
            : type === "list"
              ? await redis.lrange(key, 0, -1)
              : type === "set"
                ? await redis.smembers(key)
                : type === "zset"
                  ? await redis.zrange(key, 0, -1)
                  : type === "stream"
                    ? await redis.xrange(key, "-", "+")
                    : null;
      if (JSON.stringify(value).includes(needle)) found.push(key);
    }
  }
  return found;
}

/** Resolves once the queue holds no finished job and no key with any of `secrets`; fails at the deadline saying what is left. */
async function goneFromRedis(redis: Redis, queueName: string, secrets: string[], timeoutMs = 5_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const finished = (await redis.zcard(`bull:${queueName}:completed`)) + (await redis.zcard(`bull:${queueName}:failed`));
    const holding = (await Promise.all(secrets.map((s) => keysHolding(redis, queueName, s)))).flat();
    if (finished === 0 && holding.length === 0) return;
    if (Date.now() > deadline) throw new Error(`after ${timeoutMs} ms the queue still holds ${finished} finished jobs and plaintext in ${holding.join(", ")}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe("plaintext leaves Redis once recorded", () => {
  it("a batch the worker recorded, from the transport or any other producer, leaves no job and no plaintext in Redis", async () => {
    const config = await isolatedConfig();
    const pipeline = await startPipeline(config, { start: false });
    cleanups.push(() => pipeline.stop());
    const redis = new Redis(config.redis);
    cleanups.push(async () => redis.quit());
    const transport = new QueueTransport({
      connection: config.redis,
      queueName: config.queueName,
      spoolDir: config.spoolDir,
      logger: capturedLogger().logger,
      confirmMs: 200,
    });
    cleanups.push(() => transport.close());

    const secret = `secret-${randomUUID()}`;
    const events = traceHolding(secret);
    for (const e of events) transport.send(e);
    await transport.flush();
    // Another producer, with no job options of its own.
    const otherSecret = `secret-${randomUUID()}`;
    const others = traceHolding(otherSecret);
    await pipeline.queue.add(BATCH_JOB_NAME, { events: others });
    // Waiting for a worker, both batches are in Redis in the clear: what the scan must find.
    expect(await keysHolding(redis, config.queueName, secret)).toHaveLength(1);
    expect(await keysHolding(redis, config.queueName, otherSecret)).toHaveLength(1);

    await pipeline.start();
    await eventually(async () => ((await readAll(pipeline.ledger)).length === events.length + others.length ? true : undefined));
    await goneFromRedis(redis, config.queueName, [secret, otherSecret]);
    // The transport still tells a recorded-and-removed batch from one Redis lost.
    await eventually(async () => (transport.unrecorded === 0 ? true : undefined));
    expect(transport.metrics).toMatchObject({ confirmed: events.length, resent: 0 });
  });

  it("a batch that fails for good is dead-lettered, and only then leaves Redis", async () => {
    const config = await isolatedConfig();
    const tenantId = `plain-failed-${randomUUID().slice(0, 8)}`;
    // Another writer holds the tenant's stream and does not let go: this worker's appends time out.
    const release = await holdStream(config.ledgerDir, streamIdFor(tenantId), sampleTrace(tenantId)[0]!);
    cleanups.push(release);
    const ledger = new SegmentLedger(config.ledgerDir, { lockWaitMs: 100 });
    cleanups.push(() => ledger.close());
    const graph = new Graph(config.neo4j);
    cleanups.push(() => graph.close());
    const worker = new AuditWorker({ connection: config.redis, queueName: config.queueName, ledger, graph, logger: capturedLogger().logger });
    cleanups.push(() => worker.close());
    const redis = new Redis(config.redis);
    cleanups.push(async () => redis.quit());
    const queue = new Queue(config.queueName, { connection: config.redis });
    cleanups.push(async () => (await queue.obliterate({ force: true }), await queue.close()));
    const transport = new QueueTransport({
      connection: config.redis,
      queueName: config.queueName,
      spoolDir: config.spoolDir,
      attempts: 2,
      logger: capturedLogger().logger,
      confirmMs: 200,
    });
    cleanups.push(() => transport.close());

    const secret = `secret-${randomUUID()}`;
    const events = traceHolding(secret, tenantId);
    for (const e of events) transport.send(e);
    await transport.flush();
    const [letter] = await eventually(async () => {
      const letters = await ledger.readDeadLetters();
      return letters.length > 0 ? letters : undefined;
    });
    expect(letter!.reason).toMatch(/^failed for good after 2 attempts/);
    expect(JSON.stringify(letter!.input)).toContain(secret);
    await goneFromRedis(redis, config.queueName, [secret]);
    await eventually(async () => (transport.unrecorded === 0 ? true : undefined));
    expect(transport.metrics.resent).toBe(0);
  });
});
