import { randomUUID } from "node:crypto";
import { open, rm } from "node:fs/promises";
import { dirname } from "node:path";
import { performance } from "node:perf_hooks";
import { Worker } from "node:worker_threads";
import { describe, expect, it } from "vitest";
import { pino } from "pino";
import { streamIdFor } from "@auditgraph/core";
import type { SegmentLedger } from "@auditgraph/ledger";
import type { TransportMetrics } from "@auditgraph/langchain";
import { AuditWorker, projectionLag, waitUntilIdle } from "@auditgraph/worker";
import { keyStoreOf, type Config } from "@auditgraph/cli";
import { dumpTenant } from "../graph-dump.js";
import { cliEnvOf, eventually, isolatedConfig, readAll, runCli, startPipeline } from "../helpers.js";
import { Neo4jProcess } from "../neo4j-process.js";

/**
 * "Stop Neo4j for a minute during load: ledger appends continue; after restart the projection
 * catches up and equals a rebuild." Against a real Neo4j of the test's own (test/neo4j-process.ts;
 * the shared one on 7687 is not touched), real demo agents (in a thread of their own) audited
 * through the real handler and QueueTransport, and an in-process AuditWorker on a queue of its
 * own, sealing events with the config's key store as the CLI worker does. Neo4j is stopped
 * (SIGTERM) for OUTAGE_MS and started again on the same store while the agents keep running; the
 * projection must catch up by itself, and then equal what `auditgraph rebuild-graph` makes of
 * the ledger alone. Takes several minutes: two Neo4j starts, the outage, the catch-up, a rebuild.
 */

const envMs = (name: string, fallback: number): number => {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1_000) throw new Error(`${name} must be a whole number of ms >= 1000, got ${JSON.stringify(raw)}`);
  return n;
};

/** How long Neo4j stays down (a minute; AUDITGRAPH_TEST_NEO4J_OUTAGE_MS shortens it for local iterations). */
const OUTAGE_MS = envMs("AUDITGRAPH_TEST_NEO4J_OUTAGE_MS", 60_000);
/** Load with Neo4j up before the outage, and after the restart before the agents stop. */
const BEFORE_MS = 10_000;
const AFTER_MS = 5_000;
/** Concurrent agent loops, and their pause between runs (keeps the volume, and the rebuild, modest on 2 cores). */
const AGENTS = 3;
const PAUSE_MS = 250;
/** Batches waiting in the queue at most during the outage: the worker keeps acking them. */
const MAX_QUEUE_BACKLOG = 25;
const SAMPLE_MS = 500;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The agents' side, in a thread of its own (as an agent application is a process of its own): real
 * demo agents (createAgent + scripted model + two real tools), back to back, audited by the real
 * AuditCallbackHandler on a QueueTransport, through a small wrapping transport that records every
 * event id it hands on. In the test's own thread they would share one event loop with the worker,
 * which they starve: its jobs then take seconds each whatever Neo4j does. Plain JS on the built
 * packages, resolved from the repository root (vitest's working directory).
 */
const LOAD_THREAD = `
import { parentPort, workerData } from "node:worker_threads";
import { HumanMessage } from "@langchain/core/messages";
import { awaitAllCallbacks } from "@langchain/core/callbacks/promises";
import { AuditCallbackHandler, QueueTransport, tapTransport } from "@auditgraph/langchain";
import { DEMO_IDENTITY, DEMO_QUESTION, demoAgent } from "@auditgraph/cli";

const { connection, queueName, spoolDir, tenantId, agents, pauseMs } = workerData;
const inner = new QueueTransport({ connection, queueName, spoolDir });
const ids = [];
const transport = tapTransport(inner, (event) => ids.push(event.eventId));
const handler = new AuditCallbackHandler({ agent: DEMO_IDENTITY.agent }, transport);
let stop = false;
let runs = 0;
const errors = [];
const loop = async (i) => {
  for (let n = 0; !stop; n++) {
    try {
      await demoAgent().invoke(
        { messages: [new HumanMessage(DEMO_QUESTION)] },
        { callbacks: [handler], metadata: { auditgraph_user_id: "user-" + i, auditgraph_tenant_id: tenantId, auditgraph_session_id: "s-" + i + "-" + Math.floor(n / 10) } },
      );
      runs += 1;
    } catch (error) {
      errors.push(String(error && error.message || error));
    }
    await new Promise((r) => setTimeout(r, pauseMs));
  }
};
const running = Promise.all(Array.from({ length: agents }, (_, i) => loop(i)));
const progress = setInterval(() => parentPort.postMessage({ type: "progress", captured: ids.length, runs }), 200);
parentPort.on("message", async (message) => {
  if (message !== "stop") return;
  try {
    stop = true;
    await running;
    await awaitAllCallbacks();
    // Everything captured goes to Redis (or the spool) before the transport closes.
    await transport.close();
    clearInterval(progress);
    parentPort.postMessage({ type: "done", ids, runs, errors, metrics: inner.metrics, handler: handler.metrics });
    parentPort.close();
  } catch (error) {
    parentPort.postMessage({ type: "failed", error: String(error && error.stack || error) });
  }
});
parentPort.postMessage({ type: "started" });
`;

interface LoadResult {
  ids: string[];
  runs: number;
  errors: string[];
  metrics: TransportMetrics;
  handler: { events: number; errors: number; refused: number };
}

/** The load thread, seen from the test: live counts, and everything it recorded once stopped. */
class AgentLoad {
  captured = 0;
  runs = 0;
  private readonly thread: Worker;
  private readonly done: Promise<LoadResult>;
  private readonly exited: Promise<number>;

  constructor(data: { connection: Config["redis"]; queueName: string; spoolDir: string; tenantId: string; agents: number; pauseMs: number }) {
    this.thread = new Worker(LOAD_THREAD, { eval: true, workerData: data });
    this.exited = new Promise((resolve) => this.thread.once("exit", resolve));
    this.done = new Promise((resolve, reject) => {
      this.thread.on("message", (m: { type: string; captured?: number; runs?: number; error?: string } & Partial<LoadResult>) => {
        if (m.type === "progress") ({ captured: this.captured, runs: this.runs } = m as { captured: number; runs: number });
        else if (m.type === "done") resolve(m as LoadResult);
        else if (m.type === "failed") reject(new Error(`the load thread failed to stop: ${m.error}`));
      });
      this.thread.once("error", reject);
      void this.exited.then((code) => reject(new Error(`the load thread exited (${code}) before it was done`)));
    });
    this.done.catch(() => undefined);
  }

  /** Stops the agents; resolves once every event they captured is in Redis and the thread is gone. */
  async stop(): Promise<LoadResult> {
    this.thread.postMessage("stop");
    const result = await this.done;
    this.captured = result.ids.length;
    this.runs = result.runs;
    const timer = setTimeout(() => void this.thread.terminate(), 10_000);
    await this.exited;
    clearTimeout(timer);
    return result;
  }

  /** Cleanup after a failure: the thread goes, whatever it was doing. */
  async kill(): Promise<void> {
    await this.thread.terminate();
  }
}

/** Records in a segment-ledger stream, by its newlines, reading only what was appended since the last call. */
class LedgerCounter {
  private readonly offsets = new Map<string, number>();
  private count = 0;
  constructor(
    private readonly ledger: SegmentLedger,
    private readonly streamId: string,
  ) {}
  async poll(): Promise<number> {
    for (const path of await this.ledger.segments(this.streamId)) {
      const handle = await open(path, "r").catch(() => undefined);
      if (!handle) continue;
      try {
        const from = this.offsets.get(path) ?? 0;
        const size = (await handle.stat()).size;
        if (size <= from) continue;
        const buf = Buffer.alloc(size - from);
        await handle.read(buf, 0, buf.length, from);
        const end = buf.lastIndexOf(10);
        if (end < 0) continue;
        for (let at = buf.indexOf(10); at !== -1 && at <= end; at = buf.indexOf(10, at + 1)) this.count += 1;
        this.offsets.set(path, from + end + 1);
      } finally {
        await handle.close();
      }
    }
    return this.count;
  }
}

interface Sample {
  t: number;
  phase: "before" | "outage" | "restarting" | "after" | "drain";
  captured: number;
  ledger: number;
  /** Batches not yet taken (waiting + prioritized + delayed), taken, and failed for good. */
  backlog: number;
  active: number;
  failed: number;
  /** The worker's projection cursor for the stream (-1: none; undefined: not read yet). */
  projected: number | undefined;
  failures: number;
}

describe("a Neo4j outage under load", () => {
  it(
    `stopped for ${OUTAGE_MS / 1000} s: ledger appends and acks continue; after the restart the projection catches up and equals a rebuild`,
    async () => {
      const neo = await Neo4jProcess.create({ heap: "768m" });
      const cleanups: (() => Promise<unknown>)[] = [async () => neo.remove()];
      const log = (line: string) => console.log(`[neo4j-outage] ${line}`);
      let passed = false;
      const t0 = performance.now();
      const secs = (from = t0) => ((performance.now() - from) / 1000).toFixed(1);
      try {
        let started = performance.now();
        await neo.start();
        log(`test Neo4j ready at ${neo.uri} (pid ${neo.pid}, store ${neo.dataDir}) in ${secs(started)} s`);

        const base = await isolatedConfig();
        const config: Config = { ...base, neo4j: neo.config };
        log(`queue ${config.queueName}, ledger ${config.ledgerDir}`);
        const tenantId = `outage-${randomUUID().slice(0, 8)}`;
        const streamId = streamIdFor(tenantId);
        const pipeline = await startPipeline(config, { start: false });
        // The ledger of a run (tens of MB) goes once everything passed; kept, and named above, when something failed.
        cleanups.unshift(
          () => pipeline.stop(),
          () => pipeline.ledger.close(),
          async () => passed && rm(dirname(config.ledgerDir), { recursive: true, force: true }),
        );

        // The worker's own log, kept to count what it reported (failed batches, projection retries).
        const logLines: { level: number; msg: string }[] = [];
        const logger = pino(
          { name: "outage-worker", level: "info" },
          {
            write: (line: string) => {
              const { level, msg } = JSON.parse(line) as { level: number; msg: string };
              logLines.push({ level, msg });
              // Warnings and errors (projection retries, failed batches) are shown, once in a while.
              if (level >= 40 && logLines.filter((l) => l.msg === msg).length <= 3) process.stderr.write(`[neo4j-outage] worker: ${line}`);
            },
          },
        );
        // As the CLI worker does: events sealed with the config's key store (the rebuild opens them with it).
        const worker = new AuditWorker({
          connection: config.redis,
          queueName: config.queueName,
          ledger: pipeline.ledger,
          graph: pipeline.graph,
          keyStore: keyStoreOf(config),
          projection: { retryMinMs: 200, retryMaxMs: 2_000 },
          logger,
        });
        let workerClosed = false;
        cleanups.unshift(async () => workerClosed || worker.close());
        await worker.waitUntilReady();

        const load = new AgentLoad({
          connection: config.redis,
          queueName: config.queueName,
          spoolDir: config.spoolDir,
          tenantId,
          agents: AGENTS,
          pauseMs: PAUSE_MS,
        });
        let loadStopped = false;
        cleanups.unshift(async () => loadStopped || load.kill());

        // Sampler: ledger size, queue, projection, every SAMPLE_MS.
        const counter = new LedgerCounter(pipeline.ledger, streamId);
        const samples: Sample[] = [];
        let phase: Sample["phase"] = "before";
        let stopSampling = false;
        const sampleOnce = async () => {
          const counts = await pipeline.queue.getJobCounts("waiting", "prioritized", "delayed", "active", "failed");
          const lag = worker.projectionLag().find((l) => l.streamId === streamId);
          const sample: Sample = {
            t: (performance.now() - t0) / 1000,
            phase,
            captured: load.captured,
            ledger: await counter.poll(),
            backlog: (counts.waiting ?? 0) + (counts.prioritized ?? 0) + (counts.delayed ?? 0),
            active: counts.active ?? 0,
            failed: counts.failed ?? 0,
            projected: lag?.projected,
            failures: lag?.failures ?? 0,
          };
          samples.push(sample);
          if (samples.length % 10 === 1)
            log(
              `  t=${sample.t.toFixed(1)}s ${sample.phase}: captured ${sample.captured}, ledger ${sample.ledger}, queue ${sample.backlog}+${sample.active} active, failed ${sample.failed}, projected ${sample.projected ?? "-"} (${sample.failures} failures)`,
            );
          return sample;
        };
        const sampler = (async () => {
          while (!stopSampling) {
            await sampleOnce();
            await sleep(SAMPLE_MS);
          }
        })();
        cleanups.unshift(async () => ((stopSampling = true), sampler));

        // Phase 1: Neo4j up, until events are in the ledger and in the graph (a loaded machine takes a while for the first).
        await sleep(BEFORE_MS);
        const beforeOutage = await eventually(async () => {
          const s = await sampleOnce();
          return s.ledger > 0 && (s.projected ?? -1) >= 0 ? s : undefined;
        }, 120_000);
        log(
          `before: ${beforeOutage.captured} events captured, ${beforeOutage.ledger} in the ledger, projected through ${beforeOutage.projected}, ${load.runs} agent runs in ${secs()} s`,
        );

        // Phase 2: Neo4j down.
        started = performance.now();
        const stopped = await neo.stop();
        phase = "outage";
        const outageStart = await sampleOnce();
        log(
          `Neo4j stopped (${stopped.signal ?? stopped.code}${stopped.killed ? ", SIGKILL after timeout" : ""}) in ${secs(started)} s; down for ${OUTAGE_MS / 1000} s`,
        );
        expect(neo.running).toBe(false);
        await sleep(OUTAGE_MS);
        const outageEnd = await sampleOnce();
        const during = samples.filter((s) => s.phase === "outage");
        const capturedDuring = outageEnd.captured - outageStart.captured;
        const appendedDuring = outageEnd.ledger - outageStart.ledger;
        const maxBacklog = Math.max(...during.map((s) => s.backlog));
        const lagAtEnd = worker.projectionLag().find((l) => l.streamId === streamId)!;
        log(
          `outage: ${capturedDuring} events captured, ${appendedDuring} appended to the ledger (${(appendedDuring / (OUTAGE_MS / 1000)).toFixed(0)}/s); ` +
            `queue backlog max ${maxBacklog} batches (${during.length} samples), ${outageEnd.failed} failed; projection at ${lagAtEnd.projected} of ${lagAtEnd.target}, ${lagAtEnd.failures} failures, last: ${lagAtEnd.lastError ?? "-"}`,
        );
        // Appends went on: most of what the agents captured during the outage reached the ledger in it
        // (the rest is the last linger/batch, in flight at the end), and its projection did not.
        expect(capturedDuring).toBeGreaterThan(1_000);
        expect(appendedDuring).toBeGreaterThan(0.8 * capturedDuring);
        expect(outageEnd.ledger).toBeGreaterThan(outageEnd.captured - 2_000);
        // Acked: the queue never piled up, no batch failed for good.
        expect(maxBacklog).toBeLessThanOrEqual(MAX_QUEUE_BACKLOG);
        expect(outageEnd.failed).toBe(0);
        // Neo4j was really out for the projection: it is behind by what the outage appended (and,
        // after the driver's 30 s of retrying a write, failures are on record).
        expect(lagAtEnd.projected ?? -1).toBeLessThan(outageStart.ledger + 0.5 * appendedDuring);
        expect(lagAtEnd.target).toBeGreaterThanOrEqual(outageEnd.ledger - 1 - 2_000);
        // A write attempt against a stopped server can itself take the driver's connection timeout
        // (30 s) before its retries run out: on a loaded machine the first failure can come just
        // after OUTAGE_MS, so it is waited for (Neo4j stays down meanwhile), not assumed.
        if (OUTAGE_MS >= 45_000) {
          const failed = await eventually(async () => {
            const lag = worker.projectionLag().find((l) => l.streamId === streamId)!;
            return lag.failures > 0 ? lag : undefined;
          }, 90_000);
          expect(failed.failures).toBeGreaterThan(0);
        }

        // Phase 3: Neo4j back on the same store; load goes on for a while.
        phase = "restarting";
        started = performance.now();
        await neo.start();
        phase = "after";
        const restarted = await sampleOnce();
        const restartSeconds = secs(started);
        // Neo4j was away while it started too: the worker went on acking all along.
        const whileStarting = samples.filter((s) => s.phase === "restarting");
        expect(Math.max(0, ...whileStarting.map((s) => s.backlog))).toBeLessThanOrEqual(MAX_QUEUE_BACKLOG);
        expect(restarted.failed).toBe(0);
        expect(restarted.ledger - outageEnd.ledger).toBeGreaterThan(0);
        log(`Neo4j restarted on the same store in ${restartSeconds} s; the ledger holds ${restarted.ledger}, projected through ${restarted.projected}`);
        // Catch-up of the outage's backlog: the cursor reaches what the ledger held at the restart.
        const backlogThrough = restarted.ledger - 1;
        let firstProgressSeconds = NaN;
        const catchUp = (async () => {
          const from = performance.now();
          for (;;) {
            const lag = worker.projectionLag().find((l) => l.streamId === streamId);
            if (Number.isNaN(firstProgressSeconds) && (lag?.projected ?? -1) > (restarted.projected ?? -1))
              firstProgressSeconds = (performance.now() - from) / 1000;
            if ((lag?.projected ?? -1) >= backlogThrough) return (performance.now() - from) / 1000;
            if (performance.now() - from > 300_000) return NaN;
            await sleep(100);
          }
        })();
        await sleep(AFTER_MS);

        // Stop the load; everything captured goes to Redis; the worker appends and projects it.
        const result = await load.stop();
        loadStopped = true;
        const ids = result.ids;
        phase = "drain";
        started = performance.now();
        await waitUntilIdle(pipeline.queue, 300_000);
        const drainSeconds = secs(started);
        const catchUpSeconds = await catchUp;
        stopSampling = true;
        await sampler;
        log(
          `after: ${result.runs} agent runs, ${ids.length} events captured; outage backlog (${backlogThrough - (restarted.projected ?? -1)} records) ` +
            `projected ${catchUpSeconds.toFixed(1)} s after the restart (first progress after ${firstProgressSeconds.toFixed(1)} s); queue and projection idle ${drainSeconds} s after the load stopped`,
        );
        expect(result.errors).toEqual([]);
        expect(result.handler).toMatchObject({ events: ids.length, errors: 0 });
        expect(catchUpSeconds).not.toBeNaN();
        const metrics = result.metrics;
        expect(metrics).toMatchObject({ accepted: ids.length, dropped: 0 });

        // Nothing lost, nothing twice, the chain intact.
        const records = await readAll(pipeline.ledger);
        expect(records.every((r) => r.streamId === streamId)).toBe(true);
        const seen = new Map<string, number>();
        for (const r of records) seen.set(r.event.eventId, (seen.get(r.event.eventId) ?? 0) + 1);
        expect([...seen.values()].filter((n) => n !== 1)).toEqual([]);
        expect([...seen.keys()].sort()).toEqual([...new Set(ids)].sort());
        expect(ids.length).toBe(seen.size);
        expect(await pipeline.ledger.verify()).toMatchObject({ ok: true, count: ids.length });
        expect(await pipeline.queue.getJobCounts("failed", "waiting", "prioritized", "delayed", "active")).toEqual({
          failed: 0,
          waiting: 0,
          prioritized: 0,
          delayed: 0,
          active: 0,
        });
        expect(logLines.filter((l) => l.msg.startsWith("batch failed"))).toEqual([]);

        // The projection is complete: the worker's and the graph's cursor at the ledger's last record.
        const last = records.at(-1)!;
        expect(worker.projectionLag().find((l) => l.streamId === streamId)).toMatchObject({ projected: last.position, target: last.position, failures: 0 });
        expect(await projectionLag(pipeline.ledger, pipeline.graph)).toEqual([
          { streamId, cursor: last.position, last: last.position, behind: 0, setAside: 0 },
        ]);
        expect(await pipeline.graph.cursors(streamId)).toEqual([{ ledgerId: await pipeline.ledger.id(), streamId, position: last.position, hash: last.hash }]);
        await worker.close();
        workerClosed = true;

        const live = await dumpTenant(pipeline.graph, tenantId);
        const traces = live.nodes.filter((n) => (JSON.parse(n) as { labels: string[] }).labels.includes("Trace")).length;
        log(`live projection: ${live.nodes.length} nodes, ${live.relationships.length} relationships, ${traces} traces`);
        expect(traces).toBe(result.runs);

        // Equals a rebuild: the CLI replaces the tenant's projection with one built from the ledger alone.
        started = performance.now();
        const rebuild = await runCli({ ...cliEnvOf(config), ...neo.env }, "rebuild-graph", "--tenant", tenantId, "--replace");
        log(`rebuild-graph --replace: exit ${rebuild.code} in ${secs(started)} s: ${rebuild.stdout.trim()}`);
        expect(rebuild.stderr).not.toMatch(/auditgraph: /);
        expect(rebuild.code).toBe(0);
        expect(rebuild.stdout).toContain(
          `rebuilt the projection of tenant "${tenantId}" from ${records.length} events in 1 stream: ${records.length} projected, 0 of erased subjects left out, `,
        );
        expect(rebuild.stdout).toMatch(/\d+ nodes replaced/);
        const rebuilt = await dumpTenant(pipeline.graph, tenantId);
        expect(rebuilt.nodes.length).toBe(live.nodes.length);
        expect(rebuilt.relationships.length).toBe(live.relationships.length);
        expect(rebuilt).toEqual(live);
        expect(await pipeline.graph.cursors(streamId)).toEqual([{ ledgerId: await pipeline.ledger.id(), streamId, position: last.position, hash: last.hash }]);

        const figures = {
          outageSeconds: OUTAGE_MS / 1000,
          agentRuns: result.runs,
          events: records.length,
          capturedDuringOutage: capturedDuring,
          appendedDuringOutage: appendedDuring,
          maxQueueBacklogDuringOutage: maxBacklog,
          maxQueueBacklogWhileRestarting: Math.max(0, ...whileStarting.map((s) => s.backlog)),
          appendedWhileRestarting: restarted.ledger - outageEnd.ledger,
          maxActive: Math.max(...during.map((s) => s.active)),
          projectionFailuresAtOutageEnd: lagAtEnd.failures,
          projectionRetriesLogged: logLines.filter((l) => l.msg.startsWith("projection failed")).length,
          neo4jRestartSeconds: Number(restartSeconds),
          firstProgressAfterRestartSeconds: Number(firstProgressSeconds.toFixed(1)),
          catchUpSeconds: Number(catchUpSeconds.toFixed(1)),
          drainSeconds: Number(drainSeconds),
          transport: metrics,
          totalSeconds: Number(secs()),
        };
        log(`figures ${JSON.stringify(figures)}`);
        passed = true;
      } finally {
        for (const cleanup of cleanups) await cleanup().catch((error: Error) => console.error(`[neo4j-outage] cleanup: ${error.message}`));
      }
    },
    OUTAGE_MS + 600_000,
  );
});
