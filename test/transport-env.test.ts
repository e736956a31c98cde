import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes, randomUUID } from "node:crypto";
import { access, mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { afterEach, describe, expect, it } from "vitest";
import { QueueTransport } from "@auditgraph/langchain";
import { loadConfig } from "@auditgraph/cli";
import { capturedLogger, eventually, readAll, sampleTrace, startPipeline } from "./helpers.js";
import { freePort, untilRedisAnswers } from "./redis-process.js";

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!().catch(() => undefined);
});

/** A redis-server of the test's own that asks for a password. */
async function redisWithPassword(password: string): Promise<{ port: number; stop: () => Promise<void> }> {
  const port = await freePort();
  const child: ChildProcess = spawn(
    "redis-server",
    ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--requirepass", password],
    { stdio: "ignore" },
  );
  const stop = async () => {
    if (child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGKILL");
    await exited;
  };
  await untilRedisAnswers(port, password);
  return { port, stop };
}

describe("one configuration on both sides", () => {
  it("new QueueTransport() reads the worker's variables: its events reach the worker configured by the same environment", async () => {
    const password = randomBytes(12).toString("hex");
    const redis = await redisWithPassword(password);
    cleanups.push(() => redis.stop());
    const root = await mkdtemp(join(tmpdir(), "auditgraph-env-"));
    const env = {
      AUDITGRAPH_REDIS_URL: `redis://default:${password}@127.0.0.1:${redis.port}/2`,
      AUDITGRAPH_QUEUE: `env-${randomUUID().slice(0, 8)}`,
      AUDITGRAPH_SPOOL_DIR: join(root, "spool"),
      AUDITGRAPH_LEDGER_DIR: join(root, "ledger"),
    };
    // The worker's side: the CLI's configuration of this environment.
    const config = loadConfig({ ...process.env, ...env });
    expect(config.redis).toMatchObject({ port: redis.port, password, db: 2 });
    const pipeline = await startPipeline(config);
    cleanups.push(() => pipeline.stop());

    // The agent's side: no argument at all (this test file runs in a process of its own).
    Object.assign(process.env, env);
    cleanups.push(async () => {
      for (const k of Object.keys(env)) delete process.env[k];
    });
    const log = capturedLogger();
    const transport = new QueueTransport({ logger: log.logger });
    cleanups.push(() => transport.close());
    const events = sampleTrace(`env-${randomUUID().slice(0, 8)}`);
    for (const e of events) transport.send(e);
    await transport.flush();
    expect(transport.metrics).toMatchObject({ queued: events.length, spooled: 0 });
    await access(env.AUDITGRAPH_SPOOL_DIR);

    await eventually(async () => ((await readAll(pipeline.ledger)).length === events.length ? true : undefined));
    expect((await readAll(pipeline.ledger)).map((r) => r.event.eventId)).toEqual(events.map((e) => e.eventId));
    // In Redis db 2, on the queue of the environment.
    const direct = new Redis({ port: redis.port, password, db: 2 });
    cleanups.push(async () => direct.quit());
    expect(await direct.exists(`bull:${env.AUDITGRAPH_QUEUE}:meta`)).toBe(1);

    // Which Redis and queue, said once; never the password.
    const started = log.lines.filter((l) => l.includes("audit transport started"));
    expect(started).toHaveLength(1);
    expect(JSON.parse(started[0]!)).toMatchObject({ redis: { nodes: [`127.0.0.1:${redis.port}`], db: 2 }, queue: env.AUDITGRAPH_QUEUE });
    expect(log.text()).not.toContain(password);
  });
});
