import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { randomUUID } from "node:crypto";
import { awaitAllCallbacks } from "@langchain/core/callbacks/promises";
import { tool } from "@langchain/core/tools";
import { AIMessage } from "@langchain/core/messages";
import { fakeModel } from "@langchain/core/testing";
import { createAgent } from "langchain";
import { z } from "zod";
import { AuditCallbackHandler, QueueTransport } from "@auditgraph/langchain";
import { waitUntilIdle } from "@auditgraph/worker";
import { DEMO_IDENTITY } from "@auditgraph/cli";
import { eventually, isolatedConfig, readAll, startPipeline } from "./helpers.js";
import { RedisProcess, freePort } from "./redis-process.js";

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!().catch(() => undefined);
});

describe("transport: Redis away", () => {
  it("the agent finishes while Redis is down; every event reaches the worker once, in order, when it is back", async () => {
    const redis = new RedisProcess(await freePort());
    await redis.start();
    cleanups.push(() => redis.stop());
    const config = { ...(await isolatedConfig()), redis: { host: "127.0.0.1", port: redis.port } };
    const pipeline = await startPipeline(config);
    cleanups.push(() => pipeline.stop());
    const transport = new QueueTransport({
      connection: config.redis,
      queueName: config.queueName,
      spoolDir: config.spoolDir,
      retryMs: 200,
      sendTimeoutMs: 500,
    });
    cleanups.push(() => transport.close());
    const handler = new AuditCallbackHandler(
      { agent: DEMO_IDENTITY.agent, user: { ...DEMO_IDENTITY.user, tenantId: `acme-${randomUUID().slice(0, 8)}` } },
      transport,
    );

    // The first tool call is recorded and processed, then Redis goes away in the middle of the run.
    const outage = tool(
      async () => {
        await handler.flush();
        await waitUntilIdle(pipeline.queue);
        await redis.stop();
        return "redis is gone";
      },
      { name: "pull_the_plug", description: "stops Redis", schema: z.object({}) },
    );
    const echo = tool(({ text }) => text, { name: "echo", description: "echo", schema: z.object({ text: z.string() }) });
    const model = fakeModel()
      .respondWithTools([{ id: "c1", name: "pull_the_plug", args: {} }])
      .respondWithTools([{ id: "c2", name: "echo", args: { text: "still here" } }])
      .respond(new AIMessage("finished without Redis"));
    const traceId = randomUUID();
    const out = await createAgent({ model, tools: [outage, echo] }).invoke(
      { messages: [{ role: "user", content: "go" }] },
      { runId: traceId, callbacks: [handler] },
    );
    await awaitAllCallbacks();
    expect(out.messages.at(-1)?.text).toBe("finished without Redis");
    await handler.flush();
    expect(transport.metrics.spooled).toBeGreaterThan(0);
    expect(transport.pending).toBe(0);
    const beforeOutage = (await readAll(pipeline.ledger)).length;
    expect(beforeOutage).toBeGreaterThan(0);
    expect(beforeOutage).toBeLessThan(handler.metrics.events);

    await redis.start();
    await eventually(async () => ((await readAll(pipeline.ledger)).length >= handler.metrics.events ? true : undefined), 60_000);
    await waitUntilIdle(pipeline.queue);
    const records = await readAll(pipeline.ledger);
    const ids = records.map((r) => r.event.eventId);
    expect(records).toHaveLength(handler.metrics.events);
    expect(new Set(ids).size).toBe(ids.length);
    // Event ids are UUIDv7, monotonic in capture order: the ledger holds them in that order.
    expect(ids).toEqual([...ids].sort());
    expect(records.every((r) => r.event.traceId === traceId)).toBe(true);
    expect(transport.metrics.forwarded).toBe(transport.metrics.spooled);
  });

  it("a process killed after capture and before forwarding: the next one sends its spool", async () => {
    const config = await isolatedConfig();
    const closedPort = await freePort();
    const script = fileURLToPath(new URL("./fixtures/agent-then-die.mjs", import.meta.url));
    const child = spawn(process.execPath, [script], {
      env: { ...process.env, REDIS_PORT: String(closedPort), SPOOL_DIR: config.spoolDir, QUEUE: config.queueName },
      stdio: ["ignore", "pipe", "inherit"],
    });
    let out = "";
    child.stdout.on("data", (b: Buffer) => (out += b.toString()));
    const signal = await new Promise((resolve) => child.on("exit", (_code, sig) => resolve(sig)));
    expect(signal).toBe("SIGKILL");
    const captured = Number(/captured (\d+)/.exec(out)?.[1]);
    expect(captured).toBeGreaterThan(5);

    const pipeline = await startPipeline(config);
    cleanups.push(() => pipeline.stop());
    const transport = new QueueTransport({ connection: config.redis, queueName: config.queueName, spoolDir: config.spoolDir });
    cleanups.push(() => transport.close());
    await eventually(async () => ((await readAll(pipeline.ledger)).length >= captured ? true : undefined), 30_000);
    await waitUntilIdle(pipeline.queue);
    const records = await readAll(pipeline.ledger);
    expect(records).toHaveLength(captured);
    expect(transport.metrics.forwarded).toBe(captured);
    expect(await pipeline.ledger.verify()).toMatchObject({ ok: true, count: captured });
  });

  it("refuses a second process on the same spool directory, naming the option", async () => {
    const config = await isolatedConfig();
    const first = new QueueTransport({ connection: config.redis, queueName: config.queueName, spoolDir: config.spoolDir });
    cleanups.push(() => first.close());
    await first.flush();
    const second = new QueueTransport({ connection: config.redis, queueName: config.queueName, spoolDir: config.spoolDir });
    cleanups.push(() => second.close());
    await second.flush();
    expect(second.lastError?.message).toMatch(/in use by another process.*spoolDir/);
  });
});

describe("transport: bounded memory", () => {
  it("with overflow 'drop', a full buffer drops, counts and reports; with 'spool' it writes to disk and loses nothing", async () => {
    const redis = { host: "127.0.0.1", port: await freePort() }; // nothing listens: every send fails
    const { sampleTrace } = await import("./helpers.js");
    const events = Array.from({ length: 10 }, () => sampleTrace("overflow")).flat();
    const lines: string[] = [];
    const { pino } = await import("pino");
    const logger = pino({ level: "warn" }, { write: (l: string) => void lines.push(l) });

    const dropConfig = await isolatedConfig();
    const dropping = new QueueTransport({
      connection: redis,
      queueName: dropConfig.queueName,
      spoolDir: dropConfig.spoolDir,
      maxBuffered: 20,
      batchSize: 1000,
      lingerMs: 60_000,
      overflow: "drop",
      logger,
    });
    cleanups.push(() => dropping.close());
    for (const e of events) dropping.send(e);
    expect(dropping.metrics).toMatchObject({ accepted: events.length, dropped: events.length - 20, spooled: 0 });
    expect(dropping.pending).toBe(20);
    expect(lines.join("")).toMatch(/dropping events/);
    expect(lines.join("")).not.toContain(events[0]!.eventId);

    const spoolConfig = await isolatedConfig();
    const spilling = new QueueTransport({
      connection: redis,
      queueName: spoolConfig.queueName,
      spoolDir: spoolConfig.spoolDir,
      maxBuffered: 20,
      batchSize: 1000,
      lingerMs: 60_000,
      sendTimeoutMs: 200,
    });
    cleanups.push(() => spilling.close());
    await spilling.flush(); // the spool is open
    for (const e of events) spilling.send(e);
    expect(spilling.pending).toBeLessThanOrEqual(20);
    await spilling.flush();
    expect(spilling.metrics).toMatchObject({ accepted: events.length, dropped: 0, spooled: events.length });
  });
});
