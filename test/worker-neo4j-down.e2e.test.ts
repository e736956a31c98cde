import { spawn, type ChildProcess } from "node:child_process";
import { readdir } from "node:fs/promises";
import { afterAll, describe, expect, it } from "vitest";
import { Queue, QueueEvents } from "bullmq";
import { BATCH_JOB_NAME } from "@auditgraph/core";
import { DEFAULT_MIGRATIONS_DIR, Graph } from "@auditgraph/graph";
import { SegmentLedger } from "@auditgraph/ledger";
import { CLI_BIN, cliEnvOf, eventually, isolatedConfig, readAll, sampleTrace } from "./helpers.js";
import { Neo4jProcess } from "./neo4j-process.js";
import { freePort } from "./redis-process.js";

/**
 * "It starts, appends and acknowledges while Neo4j is down; migrations and projection retry in the
 * background and catch up." The `auditgraph worker` command, as its own process, pointed at a
 * Neo4j of the test's own (test/neo4j-process.ts) that is not running yet: it must take and
 * acknowledge jobs into the ledger, say on /readyz that it is ready and that Neo4j is down, and,
 * once that Neo4j starts, apply every migration and project what it appended meanwhile.
 */

const cleanup: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  for (const step of cleanup.reverse()) await step().catch(() => undefined);
}, 120_000);

const json = async (url: string) => {
  const response = await fetch(url);
  // biome-ignore lint/suspicious/noExplicitAny: a health document, read field by field.
  return { status: response.status, body: JSON.parse(await response.text()) as Record<string, any> };
};

function metric(text: string, name: string): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.slice(name.length + 1));
}

describe("auditgraph worker with Neo4j down", () => {
  it("appends and acknowledges at once, then migrates and catches the graph up when Neo4j starts", async () => {
    const config = await isolatedConfig();
    const neo4j = await Neo4jProcess.create();
    cleanup.push(() => neo4j.remove());
    const httpPort = await freePort();
    const env = { ...cliEnvOf(config), ...neo4j.env, AUDITGRAPH_WORKER_HTTP_PORT: String(httpPort), AUDITGRAPH_LOG_LEVEL: "info" };

    const child: ChildProcess = spawn(process.execPath, [CLI_BIN, "worker"], { env, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout!.on("data", (b: Buffer) => (out += b.toString()));
    child.stderr!.on("data", (b: Buffer) => (err += b.toString()));
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    cleanup.push(async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    });
    await eventually(async () => (out.includes("auditgraph worker: queue") ? true : undefined), 30_000).catch((e) => {
      throw new Error(`${(e as Error).message}: the worker never said it was ready; stdout:\n${out}\nstderr:\n${err}`);
    });

    const queue = new Queue(config.queueName, { connection: config.redis });
    const events = new QueueEvents(config.queueName, { connection: config.redis });
    cleanup.push(async () => {
      await queue.obliterate({ force: true }).catch(() => undefined);
      await queue.close();
      await events.close();
    });
    await events.waitUntilReady();
    const tenantId = `t-down-${config.queueName}`;
    const trace = sampleTrace(tenantId);
    const job = await queue.add(BATCH_JOB_NAME, { events: trace });
    // Acknowledged (completed) with Neo4j down: the job's outcome is the worker's.
    expect(await job.waitUntilFinished(events, 60_000)).toMatchObject({ appended: trace.length, deadLettered: 0 });
    const ledger = new SegmentLedger(config.ledgerDir);
    expect((await readAll(ledger)).map((r) => r.event.eventId).sort()).toEqual(trace.map((e) => e.eventId).sort());

    const base = `http://127.0.0.1:${httpPort}`;
    const down = await json(`${base}/readyz`);
    expect(down.status).toBe(200);
    expect(down.body).toMatchObject({ ready: true, redis: { up: true }, ledger: { writable: true }, neo4j: { migrated: false } });
    const before = await (await fetch(`${base}/metrics`)).text();
    expect(metric(before, "auditgraph_graph_migrated")).toBe(0);
    expect(metric(before, "auditgraph_events_appended_total")).toBe(trace.length);
    expect(metric(before, "auditgraph_projection_lag_events")).toBeGreaterThanOrEqual(trace.length);
    // The failing migrations said so once, whatever the retries.
    await eventually(async () => (out.includes("graph migrations could not be applied") ? true : undefined), 90_000);

    await neo4j.start();
    const graph = new Graph(neo4j.config);
    cleanup.push(() => graph.close());
    const files = (await readdir(DEFAULT_MIGRATIONS_DIR)).filter((f) => /^\d{4}_[\w-]+\.cypher$/.test(f));
    // Every migration applied, by the worker alone (nobody else knows this Neo4j).
    await eventually(async () => {
      const [row] = await graph.read("MATCH (m:Migration) RETURN count(m) AS n").catch(() => [{ n: -1 }]);
      return row!.n === files.length ? true : undefined;
    }, 180_000);
    // ... and the graph caught up with what was appended while it was away.
    const lineage = await eventually(async () => (await graph.lineage(trace[0]!.traceId)) ?? undefined, 120_000);
    expect(lineage).toBeTruthy();
    const caughtUp = await eventually(async () => {
      const r = await json(`${base}/readyz`);
      return r.body.neo4j.state === "up" && r.body.neo4j.projection.lagEvents === 0 ? r.body : undefined;
    }, 60_000);
    expect(caughtUp).toMatchObject({ ready: true, neo4j: { migrated: true, failures: 0 } });
    const after = await (await fetch(`${base}/metrics`)).text();
    expect(metric(after, "auditgraph_graph_migrated")).toBe(1);
    expect(metric(after, "auditgraph_projection_lag_events")).toBe(0);

    child.kill("SIGTERM");
    expect(await exited).toBe(0);
    const lines = out
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { msg: string; level: number });
    expect(lines.filter((l) => l.msg.startsWith("graph migrations could not be applied"))).toHaveLength(1);
    expect(lines.some((l) => l.msg.startsWith("graph migrations applied"))).toBe(true);
    expect(lines.at(-1)!.msg).toBe("auditgraph worker: stopped");
    // One logger: nothing but JSON lines on stdout, nothing at all on stderr.
    expect(err).toBe("");
  }, 600_000);
});
