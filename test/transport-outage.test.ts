import { spawn, type ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtemp, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { AIMessage, ToolMessage } from "@langchain/core/messages";
import { awaitAllCallbacks } from "@langchain/core/callbacks/promises";
import { fakeModel } from "@langchain/core/testing";
import { tool } from "@langchain/core/tools";
import { createAgent } from "langchain";
import { z } from "zod";
import type { AuditEvent } from "@auditgraph/core";
import { AuditCallbackHandler, QueueTransport, tapTransport } from "@auditgraph/langchain";
import { capturedLogger, eventually, isolatedConfig, readAll, sampleTrace, startPipeline } from "./helpers.js";
import { RedisProcess, freePort, untilRedisAnswers } from "./redis-process.js";

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!().catch(() => undefined);
});

/** The ids of the events the spool in `dir` holds and has not forwarded (what the next process would send). */
async function spooledIds(dir: string): Promise<string[]> {
  const text = await readFile(join(dir, "spool.jsonl"), "utf8").catch(() => "");
  const offset = Number(await readFile(join(dir, "spool.offset"), "utf8").catch(() => "0"));
  return Buffer.from(text)
    .subarray(offset)
    .toString("utf8")
    .split("\n")
    .filter(Boolean)
    .flatMap((line) => (JSON.parse(line) as { events: AuditEvent[] }).events.map((e) => e.eventId));
}

const timed = async (work: () => Promise<unknown>): Promise<number> => {
  const start = performance.now();
  await work();
  return performance.now() - start;
};

const linesSaying = (lines: string[], what: string) => lines.filter((l) => l.includes(what));
const SPILL = "Redis does not answer";
const RECOVERY = "Redis answers again";

/** A redis-server that can be frozen (SIGSTOP): connections stay open and nothing is answered, as in a partition. */
async function freezableRedis(): Promise<{ port: number; freeze(): void; thaw(): void; stop(): Promise<void> }> {
  const port = await freePort();
  const child: ChildProcess = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], { stdio: "ignore" });
  await untilRedisAnswers(port);
  return {
    port,
    freeze: () => void child.kill("SIGSTOP"),
    thaw: () => void child.kill("SIGCONT"),
    stop: async () => {
      if (child.exitCode !== null) return;
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGKILL");
      await exited;
    },
  };
}

const agentIdentity = { id: "payments-agent", name: "Payments agent", version: "1.0.0" };

describe("the agent never waits on a dead Redis", () => {
  it("Redis killed: flush, a fail-closed tool and close return within their bounds, every event in the spool; a new transport forwards it all", async () => {
    // AOF: what reached Redis before it died is still there when it comes back.
    const redis = new RedisProcess(await freePort(), await mkdtemp(join(tmpdir(), "auditgraph-aof-")));
    await redis.start();
    cleanups.push(() => redis.stop());
    const config = { ...(await isolatedConfig()), redis: { host: "127.0.0.1", port: redis.port } };
    const tenantId = `outage-${randomUUID().slice(0, 8)}`;
    const log = capturedLogger();
    // The defaults that matter here: sendTimeoutMs 2 s, closeTimeoutMs 5 s.
    const transport = new QueueTransport({
      connection: config.redis,
      queueName: config.queueName,
      spoolDir: config.spoolDir,
      batchSize: 10,
      logger: log.logger,
    });
    const sendTimeoutMs = 2_000;
    const closeTimeoutMs = 5_000;
    const captured: string[] = [];
    const tapped = tapTransport(transport, (e) => captured.push(e.eventId));
    const handler = new AuditCallbackHandler({ agent: agentIdentity, user: { id: "alice", tenantId }, highImpactTools: ["wire_money"] }, tapped);
    cleanups.push(() => transport.close());

    for (const e of sampleTrace(tenantId)) tapped.send(e);
    await transport.flush();
    expect(transport.metrics.queued).toBe(6);
    await redis.stop();

    // The first send finds Redis gone: at most one send's wait.
    for (let i = 0; i < 5; i++) for (const e of sampleTrace(tenantId)) tapped.send(e);
    expect(await timed(() => transport.flush())).toBeLessThan(sendTimeoutMs + 2_000);
    expect(transport.offline).toBe(true);
    // Then every batch goes straight to the spool.
    for (let i = 0; i < 20; i++) for (const e of sampleTrace(tenantId)) tapped.send(e);
    expect(await timed(() => transport.flush())).toBeLessThan(sendTimeoutMs);

    // A fail-closed tool starts once its event is in the spool: the agent is not held up.
    let wired = 0;
    const wire = tool(() => ((wired += 1), "sent"), { name: "wire_money", description: "moves money", schema: z.object({ amount: z.number() }) });
    const model = fakeModel()
      .respondWithTools([{ id: "w1", name: "wire_money", args: { amount: 10 } }])
      .respond(new AIMessage("wired"));
    let out: { messages: { text: string }[] } | undefined;
    const agentMs = await timed(async () => {
      out = await createAgent({ model, tools: [wire] }).invoke({ messages: [{ role: "user", content: "wire 10" }] }, { callbacks: [handler] });
      await awaitAllCallbacks();
    });
    expect(agentMs).toBeLessThan(sendTimeoutMs + 2_000);
    expect(wired).toBe(1);
    expect(out!.messages.some((m) => m instanceof ToolMessage && m.text === "sent")).toBe(true);

    expect(await timed(() => transport.close())).toBeLessThan(closeTimeoutMs + 2_000);
    // Everything captured after the first batch is in the spool, fsynced.
    const afterFirst = captured.slice(6);
    expect(new Set(await spooledIds(config.spoolDir))).toEqual(new Set(afterFirst));
    expect(transport.metrics.spooled).toBe(afterFirst.length);
    // One line for the outage, however many batches it spilled; no stack traces.
    expect(linesSaying(log.lines, SPILL)).toHaveLength(1);
    expect(log.text()).not.toMatch(/"stack"|at .*\.js:\d+/);

    // Redis back: a new process on the same spool sends it all, and nothing is lost.
    await redis.start();
    const pipeline = await startPipeline(config);
    cleanups.push(() => pipeline.stop());
    const next = new QueueTransport({ connection: config.redis, queueName: config.queueName, spoolDir: config.spoolDir, logger: capturedLogger().logger });
    cleanups.push(() => next.close());
    await eventually(async () => ((await readAll(pipeline.ledger)).length >= captured.length ? true : undefined), 30_000);
    const ids = (await readAll(pipeline.ledger)).map((r) => r.event.eventId);
    expect(ids.sort()).toEqual([...captured].sort());
    expect(next.metrics.forwarded).toBe(afterFirst.length);
  }, 90_000);

  it("Redis killed and back: the transport finds it again by itself, with one line each way, and forwards the spool", async () => {
    const redis = new RedisProcess(await freePort());
    await redis.start();
    cleanups.push(() => redis.stop());
    const config = { ...(await isolatedConfig()), redis: { host: "127.0.0.1", port: redis.port } };
    const tenantId = `outage-${randomUUID().slice(0, 8)}`;
    const log = capturedLogger();
    const transport = new QueueTransport({
      connection: config.redis,
      queueName: config.queueName,
      spoolDir: config.spoolDir,
      batchSize: 10,
      retryMs: 200,
      logger: log.logger,
    });
    cleanups.push(() => transport.close());
    await transport.flush();
    await redis.stop();

    const sent: string[] = [];
    for (let round = 0; round < 5; round++) {
      for (const e of sampleTrace(tenantId)) transport.send(e), sent.push(e.eventId);
      await transport.flush();
    }
    expect(transport.offline).toBe(true);
    expect(new Set(await spooledIds(config.spoolDir))).toEqual(new Set(sent));

    await redis.start();
    await eventually(async () => (!transport.offline && !transport.spooling ? true : undefined), 20_000);
    const pipeline = await startPipeline(config);
    cleanups.push(() => pipeline.stop());
    await eventually(async () => ((await readAll(pipeline.ledger)).length >= sent.length ? true : undefined), 30_000);
    expect((await readAll(pipeline.ledger)).map((r) => r.event.eventId).sort()).toEqual([...sent].sort());
    expect(transport.metrics.forwarded).toBe(sent.length);
    expect(linesSaying(log.lines, SPILL)).toHaveLength(1);
    expect(linesSaying(log.lines, RECOVERY)).toHaveLength(1);
  }, 90_000);

  it("Redis frozen (sends hang): one send's wait, then none; close cuts a hanging send short within closeTimeoutMs, its batch in the spool", async () => {
    const redis = await freezableRedis();
    cleanups.push(() => redis.stop());
    cleanups.push(async () => redis.thaw());
    const connection = { host: "127.0.0.1", port: redis.port };
    const queueName = `test-frozen-${randomUUID().slice(0, 8)}`;
    const tenantId = `frozen-${randomUUID().slice(0, 8)}`;
    const spoolDir = await mkdtemp(join(tmpdir(), "auditgraph-frozen-"));
    const log = capturedLogger();
    const sendTimeoutMs = 1_000;
    const transport = new QueueTransport({ connection, queueName, spoolDir, batchSize: 6, sendTimeoutMs, logger: log.logger });
    cleanups.push(() => transport.close());
    await transport.flush();
    redis.freeze();

    // Ten batches: only the first waits for its send to time out.
    for (let i = 0; i < 10; i++) for (const e of sampleTrace(tenantId)) transport.send(e);
    expect(await timed(() => transport.flush())).toBeLessThan(sendTimeoutMs + 1_500);
    for (let i = 0; i < 10; i++) for (const e of sampleTrace(tenantId)) transport.send(e);
    expect(await timed(() => transport.flush())).toBeLessThan(sendTimeoutMs);
    expect(transport.metrics.spooled).toBe(120);
    expect(linesSaying(log.lines, SPILL)).toHaveLength(1);

    // A transport whose first send hangs (a minute's timeout) when it is closed.
    const closeTimeoutMs = 2_000;
    const otherSpool = await mkdtemp(join(tmpdir(), "auditgraph-frozen-"));
    const hanging = new QueueTransport({ connection, queueName, spoolDir: otherSpool, sendTimeoutMs: 60_000, closeTimeoutMs, logger: capturedLogger().logger });
    const events = sampleTrace(tenantId);
    for (const e of events) hanging.send(e);
    void hanging.flush().catch(() => undefined);
    expect(await timed(() => hanging.close())).toBeLessThan(closeTimeoutMs + 2_000);
    expect(new Set(await spooledIds(otherSpool))).toEqual(new Set(events.map((e) => e.eventId)));
  }, 60_000);
});
