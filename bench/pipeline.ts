/**
 * Load benchmark of the whole pipeline: many concurrent simulated agents (the demo agent:
 * createAgent + scripted fakeModel + two real tools) audited by the real AuditCallbackHandler and
 * QueueTransport -> the local Redis -> N worker processes (`node packages/cli/bin/auditgraph.js
 * worker`, each with its own env: a queue, ledger, key store and spool of this run) -> the
 * segment ledger -> Neo4j. Per worker count (BENCH_PIPELINE_WORKERS, default 1,2,4):
 *   - captured, in-ledger and in-graph events/s (ledger: the newline count of the stream
 *     segments, read incrementally; graph: the projection cursors of the run's streams);
 *   - lag from capture to graph, p50/p95, on sampled events (capture time = when the handler gave
 *     the event to the transport; graph time = the first poll, by a child process
 *     (bench/pipeline-poller.mjs, so the agents' busy event loop does not delay it), that finds the
 *     stream's cursor past the event's ledger position; the poll interval bounds the error);
 *   - queue depth (waiting + prioritized + active) and worker RSS (/proc/<pid>/status VmRSS) over time.
 * Then, in the same process, the raw limits: a BullMQ addBulk + no-op Worker loop with jobs of
 * the same size, fsync'd appends of the ledger's own record bytes (one fsync per 100), and
 * `UNWIND ... CREATE` of one plain node per event into Neo4j (100 per transaction); each stage's
 * rate is printed as a ratio of its raw limit. Goals: >= 10,000 events/s into ledger and graph,
 * lag p95 < 1 s, worker RSS < 300 MB.
 *
 * The run's tenants (bench-pipe-<random>-<i>) are deleted from the shared Neo4j at the end, in
 * batches; the queues are obliterated and the temporary directory removed.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import { createWriteStream } from "node:fs";
import { mkdtemp, open, readFile, rm } from "node:fs/promises";
import { availableParallelism, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { performance } from "node:perf_hooks";
import { HumanMessage } from "@langchain/core/messages";
import { Queue, Worker } from "bullmq";
import { streamIdFor, type AuditEvent } from "@auditgraph/core";
import { Graph } from "@auditgraph/graph";
import { SegmentLedger } from "@auditgraph/ledger";
import { AuditCallbackHandler, QueueTransport, tapTransport } from "@auditgraph/langchain";
import { DEMO_IDENTITY, DEMO_QUESTION, demoAgent, loadConfig, type Config } from "@auditgraph/cli";
import { benchMain, stats, table, type Stats } from "./common.js";
import { deleteTenant } from "./graph.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const CLI = join(ROOT, "packages/cli/bin/auditgraph.js");
const POLLER = join(ROOT, "bench/pipeline-poller.mjs");

export interface PipelineBenchOptions {
  /** Worker process counts, one phase each. */
  workers: number[];
  /** Concurrent agent loops in this process. */
  agents: number;
  /** Tenants the agents are spread over (one ledger stream each; a stream has one writer at a time). */
  tenants: number;
  /** Target capture rate in events/s over all agents (a run makes about 30 events); 0: as fast as the agents go. */
  rate: number;
  /** Seconds of load per phase. */
  seconds: number;
  /** One event in this many is sampled for the lag. */
  sampleEvery: number;
  /** Poll interval of ledger, cursors, queue and RSS (ms). */
  pollMs: number;
  /** Longest wait after the load for the ledger and the graph to hold everything (ms). */
  drainTimeoutMs: number;
  /** Jobs per worker process taken at once (`--concurrency`). */
  workerConcurrency: number;
  /** Events for each raw limit (0 skips the raw part). */
  rawEvents: number;
  log: (line: string) => void;
}

const numEnv = (name: string, fallback: number, env: NodeJS.ProcessEnv, min = 1): number => {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < min) throw new Error(`${name} must be a number >= ${min}, got ${JSON.stringify(raw)}`);
  return n;
};

export function optionsFromEnv(env: NodeJS.ProcessEnv = process.env): PipelineBenchOptions {
  const workers = (env.BENCH_PIPELINE_WORKERS ?? "1,2,4").split(",").map((w) => Number(w.trim()));
  for (const w of workers)
    if (!Number.isInteger(w) || w < 1)
      throw new Error(`BENCH_PIPELINE_WORKERS: ${JSON.stringify(env.BENCH_PIPELINE_WORKERS)} is not a comma list of whole numbers >= 1`);
  return {
    workers,
    agents: Math.round(numEnv("BENCH_PIPELINE_AGENTS", 32, env)),
    tenants: Math.round(numEnv("BENCH_PIPELINE_TENANTS", 8, env)),
    rate: numEnv("BENCH_PIPELINE_RATE", 0, env, 0),
    seconds: numEnv("BENCH_PIPELINE_SECONDS", 20, env),
    sampleEvery: Math.round(numEnv("BENCH_PIPELINE_SAMPLE_EVERY", 50, env)),
    pollMs: numEnv("BENCH_PIPELINE_POLL_MS", 100, env),
    drainTimeoutMs: numEnv("BENCH_PIPELINE_DRAIN_MS", 180_000, env),
    workerConcurrency: Math.round(numEnv("BENCH_PIPELINE_WORKER_CONCURRENCY", 1, env)),
    rawEvents: Math.round(numEnv("BENCH_PIPELINE_RAW_EVENTS", 20_000, env, 0)),
    log: (line) => console.log(line),
  };
}

export interface Sample {
  t: number;
  captured: number;
  ledger: number;
  graph: number;
  queueDepth: number;
  rssMb: number[];
}

export interface PhaseResult {
  workers: number;
  agentRuns: number;
  loadSeconds: number;
  captured: number;
  ledger: number;
  graph: number;
  capturedPerSec: number;
  /** Events in the ledger / seconds from the start of the load until the ledger held them all (or the drain timed out). */
  ledgerPerSec: number;
  graphPerSec: number;
  /** Rate over the load window only (what was in the store when the agents stopped). */
  ledgerPerSecDuringLoad: number;
  graphPerSecDuringLoad: number;
  /** Rate after the load (agents stopped, backlog only): from the load's end until the store held everything. */
  ledgerPerSecDrain: number;
  graphPerSecDrain: number;
  drained: boolean;
  lagMs: Stats;
  lagMissing: number;
  maxQueueDepth: number;
  maxRssMb: number;
  /** CPU the worker processes used from the start of the load until the stores held everything, per event in the ledger (µs). */
  workerCpuUsPerEvent: number;
  samples: Sample[];
  transport: { spooled: number; dropped: number; sendFailures: number };
}

export interface RawResult {
  name: string;
  what: string;
  events: number;
  seconds: number;
  eventsPerSec: number;
}

export interface PipelineBenchResult {
  options: Omit<PipelineBenchOptions, "log">;
  environment: Record<string, string>;
  phases: PhaseResult[];
  raw: RawResult[];
  goals: { name: string; holds: boolean | undefined; detail: string }[];
  seconds: number;
}

/** Events one demo agent run makes (chain, model and tool starts and ends), for pacing only. */
const EVENTS_PER_RUN = 30;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** VmRSS of a process in MB (NaN when it cannot be read). */
export async function rssMb(pid: number | undefined): Promise<number> {
  if (pid === undefined) return NaN;
  try {
    const m = /VmRSS:\s+(\d+)\s+kB/.exec(await readFile(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

/**
 * CPU seconds a process has used (user + system, from /proc/<pid>/stat, in USER_HZ ticks, which
 * Linux fixes at 100 for /proc), NaN when it cannot be read. On a shared machine the CPU a worker
 * spends per event is a steadier figure than its rate, which the other load moves.
 */
export async function cpuSeconds(pid: number | undefined): Promise<number> {
  if (pid === undefined) return NaN;
  try {
    const stat = await readFile(`/proc/${pid}/stat`, "utf8");
    // The fields after the command name (which may hold spaces, within parentheses): utime and stime are the 12th and 13th.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return NaN;
  }
}

/** Counts the records of the run's streams by reading only the bytes appended since the last call; notes where sampled events landed. */
export class LedgerTail {
  private readonly offsets = new Map<string, number>();
  private readonly counts = new Map<string, number>();
  constructor(
    private readonly ledger: SegmentLedger,
    private readonly streams: string[],
    private readonly sampled: Map<string, { stream?: string; position?: number }>,
  ) {}

  total(): number {
    let n = 0;
    for (const c of this.counts.values()) n += c;
    return n;
  }

  private polling: Promise<number> = Promise.resolve(0);

  /**
   * One poll at a time: the sampler's and the load end's may overlap, and two reading from the
   * same offsets would each add their lines to the same old count, one overwriting the other.
   */
  poll(): Promise<number> {
    this.polling = this.polling.then(
      () => this.pollOnce(),
      () => this.pollOnce(),
    );
    return this.polling;
  }

  private async pollOnce(): Promise<number> {
    for (const stream of this.streams) {
      let count = this.counts.get(stream) ?? 0;
      for (const path of await this.ledger.segments(stream)) {
        const from = this.offsets.get(path) ?? 0;
        const handle = await open(path, "r").catch(() => undefined);
        if (!handle) continue;
        try {
          const size = (await handle.stat()).size;
          if (size <= from) continue;
          const buf = Buffer.alloc(size - from);
          await handle.read(buf, 0, buf.length, from);
          const end = buf.lastIndexOf(10);
          if (end < 0) continue;
          const text = buf.toString("utf8", 0, end + 1);
          this.offsets.set(path, from + Buffer.byteLength(text));
          let at = 0;
          for (;;) {
            const nl = text.indexOf("\n", at);
            if (nl < 0) break;
            const line = text.slice(at, nl);
            const k = line.indexOf('"eventId":"');
            if (k >= 0) {
              const id = line.slice(k + 11, k + 11 + 36);
              const s = this.sampled.get(id);
              if (s && s.position === undefined) {
                s.stream = stream;
                s.position = count;
              }
            }
            count += 1;
            at = nl + 1;
          }
        } finally {
          await handle.close();
        }
      }
      this.counts.set(stream, count);
    }
    return this.total();
  }

  /** The first complete record lines of the run (the raw append writes these bytes). */
  async firstLines(n: number): Promise<string[]> {
    const out: string[] = [];
    for (const stream of this.streams) {
      for (const path of await this.ledger.segments(stream)) {
        const text = await readFile(path, "utf8");
        for (const line of text.split("\n")) if (line && out.length < n) out.push(`${line}\n`);
        if (out.length >= n) return out;
      }
    }
    return out;
  }
}

/** Starts `count` worker processes on the run's config and resolves once each says it is ready. */
export async function startWorkers(
  count: number,
  env: Record<string, string>,
  concurrency: number,
  log: (l: string) => void,
  /** More CLI arguments for worker i (bench/deployment.ts: its own `--http-port`). */
  extraArgs: (i: number) => string[] = () => [],
): Promise<ChildProcess[]> {
  const children: ChildProcess[] = [];
  for (let i = 0; i < count; i++) {
    // BENCH_PIPELINE_NODE_ARGS: extra node flags for the worker children (e.g. --cpu-prof), to profile them under load.
    const nodeArgs = (process.env.BENCH_PIPELINE_NODE_ARGS ?? "").split(/\s+/).filter(Boolean);
    const child = spawn(process.execPath, [...nodeArgs, CLI, "worker", "--concurrency", String(concurrency), ...extraArgs(i)], {
      env: { ...process.env, ...env, AUDITGRAPH_SPOOL_DIR: join(env.AUDITGRAPH_SPOOL_DIR!, `w${i}`) },
      stdio: ["ignore", "pipe", "pipe"],
    });
    children.push(child);
    let err = "";
    child.stderr!.on("data", (c: Buffer) => (err = (err + c.toString()).slice(-2000)));
    // BENCH_PIPELINE_WORKER_LOG: a file the workers' stderr (their pino log) is copied to, to see why a stage stalls.
    if (process.env.BENCH_PIPELINE_WORKER_LOG) child.stderr!.pipe(createWriteStream(`${process.env.BENCH_PIPELINE_WORKER_LOG}.w${i}`, { flags: "a" }));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`worker ${i} not ready in 30 s: ${err}`)), 30_000);
      let out = "";
      child.stdout!.on("data", (c: Buffer) => {
        out += c.toString();
        if (out.includes("auditgraph worker: queue")) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.once("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`worker ${i} exited (${code}) before it was ready: ${err}`));
      });
    });
    child.stdout!.resume();
    log(`    worker ${i} ready (pid ${child.pid})`);
  }
  return children;
}

export async function stopWorkers(children: ChildProcess[]): Promise<void> {
  await Promise.all(
    children.map(
      (child) =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve();
          const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
          child.once("exit", () => {
            clearTimeout(timer);
            resolve();
          });
          child.kill("SIGTERM");
        }),
    ),
  );
}

async function phase(
  config: Config,
  root: string,
  workers: number,
  tenants: string[],
  options: PipelineBenchOptions,
): Promise<{ result: PhaseResult; lines: string[] }> {
  const { log } = options;
  const dir = join(root, `w${workers}`);
  const queueName = `auditgraph-bench-pipe-${randomUUID().slice(0, 8)}`;
  const env = {
    AUDITGRAPH_QUEUE: queueName,
    AUDITGRAPH_LEDGER_DIR: join(dir, "ledger"),
    AUDITGRAPH_KEYSTORE_DIR: join(dir, "keystore"),
    AUDITGRAPH_SPOOL_DIR: join(dir, "worker-spool"),
    AUDITGRAPH_REDIS_URL: `redis://${config.redis.host ?? "127.0.0.1"}:${config.redis.port ?? 6379}`,
    NEO4J_URI: config.neo4j.uri,
    NEO4J_USER: config.neo4j.user,
    NEO4J_PASSWORD: config.neo4j.password,
    NEO4J_DATABASE: config.neo4j.database,
  };
  const streams = tenants.map((tenant) => streamIdFor(tenant));
  const queue = new Queue(queueName, { connection: config.redis });
  const graph = new Graph(config.neo4j);
  const ledger = new SegmentLedger(env.AUDITGRAPH_LEDGER_DIR);
  const children = await startWorkers(workers, env, options.workerConcurrency, log);
  const inner = new QueueTransport({ connection: config.redis, queueName, spoolDir: join(dir, "spool"), maxBuffered: 100_000 });
  const sampled = new Map<string, { capturedAt: number; stream?: string; position?: number; graphAt?: number }>();
  // Every event counted; one in `sampleEvery` noted with its capture time.
  let captured = 0;
  const transport = tapTransport(inner, (event) => {
    if (++captured % options.sampleEvery === 0) sampled.set(event.eventId, { capturedAt: Date.now() });
  });
  const handler = new AuditCallbackHandler({ agent: DEMO_IDENTITY.agent, user: DEMO_IDENTITY.user }, transport);
  const tail = new LedgerTail(ledger, streams, sampled);
  const samples: Sample[] = [];
  let graphTotal = 0;

  // The cursors are polled by a child process (its clock, not this busy event loop, times them).
  const cursorLog: { t: number; c: Record<string, number> }[] = [];
  const cursorPoller = spawn(process.execPath, [POLLER], {
    env: { ...process.env, ...env, BENCH_STREAMS: JSON.stringify(streams), BENCH_POLL_MS: String(options.pollMs) },
    stdio: ["ignore", "pipe", "inherit"],
  });
  let partial = "";
  cursorPoller.stdout!.on("data", (chunk: Buffer) => {
    const text = partial + chunk.toString("utf8");
    const lines = text.split("\n");
    partial = lines.pop()!;
    for (const line of lines) if (line) cursorLog.push(JSON.parse(line) as { t: number; c: Record<string, number> });
  });
  const graphNow = () => {
    const last = cursorLog.at(-1);
    return last ? Object.values(last.c).reduce((a, b) => a + b, 0) : 0;
  };
  const pollOnce = async (t0: number) => {
    const ledgerTotal = await tail.poll();
    graphTotal = graphNow();
    return { t: (performance.now() - t0) / 1000, ledgerTotal };
  };

  let agentRuns = 0;
  try {
    log(
      `  ${workers} worker process(es), ${options.agents} agents over ${tenants.length} tenants, ${options.rate > 0 ? `${options.rate} events/s` : "unpaced"}, ${options.seconds} s ...`,
    );
    const cpuAtStart = (await Promise.all(children.map((c) => cpuSeconds(c.pid)))).reduce((a, b) => a + b, 0);
    const t0 = performance.now();
    const until = t0 + options.seconds * 1000;
    let stopPolling = false;
    let lastSlow = 0;
    const poller = (async () => {
      while (!stopPolling) {
        const { t, ledgerTotal } = await pollOnce(t0);
        // Queue depth and RSS every ~1 s (cheaper than every poll).
        if (t - lastSlow >= 1 || samples.length === 0) {
          lastSlow = t;
          const counts = await queue.getJobCounts("waiting", "prioritized", "active", "delayed");
          const depth = Object.values(counts).reduce((a, b) => a + b, 0);
          const rss = await Promise.all(children.map((c) => rssMb(c.pid)));
          samples.push({ t, captured, ledger: ledgerTotal, graph: graphTotal, queueDepth: depth, rssMb: rss });
        }
        await sleep(options.pollMs);
      }
    })();
    let scheduled = 0;
    const agentLoop = async (i: number) => {
      const tenantId = tenants[i % tenants.length]!;
      while (performance.now() < until) {
        if (options.rate > 0) {
          // Paced: runs start on a common schedule of rate / EVENTS_PER_RUN runs a second.
          const due = t0 + ((scheduled++ * EVENTS_PER_RUN) / options.rate) * 1000;
          const wait = due - performance.now();
          if (wait > 0) await sleep(wait);
          if (performance.now() >= until) break;
        }
        const agent = demoAgent();
        await agent.invoke(
          { messages: [new HumanMessage(DEMO_QUESTION)] },
          { callbacks: [handler], metadata: { auditgraph_user_id: `user-${i}`, auditgraph_tenant_id: tenantId, auditgraph_session_id: `s-${i}` } },
        );
        agentRuns += 1;
        // Let I/O in between runs (the fake model never waits on any): without it the agents'
        // promise chains starve the transport's Redis sends and the poller of this process.
        await new Promise((r) => setImmediate(r));
      }
    };
    await Promise.all(Array.from({ length: options.agents }, (_, i) => agentLoop(i)));
    await transport.flush();
    const loadEnd = performance.now();
    const loadSeconds = (loadEnd - t0) / 1000;
    const atLoadEnd = { ledger: await tail.poll(), graph: graphTotal };
    log(`    load done: ${captured} events captured in ${loadSeconds.toFixed(1)} s (${agentRuns} agent runs); draining ...`);
    let ledgerDoneAt: number | undefined;
    let graphDoneAt: number | undefined;
    const deadline = performance.now() + options.drainTimeoutMs;
    while (performance.now() < deadline) {
      const ledgerTotal = tail.total();
      if (ledgerDoneAt === undefined && ledgerTotal >= captured) ledgerDoneAt = performance.now();
      if (graphDoneAt === undefined && graphTotal >= captured) graphDoneAt = performance.now();
      if (ledgerDoneAt !== undefined && graphDoneAt !== undefined) break;
      await sleep(options.pollMs);
    }
    stopPolling = true;
    await poller;
    const end = performance.now();
    const workerCpu = (await Promise.all(children.map((c) => cpuSeconds(c.pid)))).reduce((a, b) => a + b, 0) - cpuAtStart;
    const ledgerTotal = tail.total();
    await tail.poll();
    for (const s of sampled.values()) {
      if (s.position === undefined) continue;
      const hit = cursorLog.find((entry) => (entry.c[s.stream!] ?? 0) > s.position!);
      if (hit) s.graphAt = hit.t;
    }
    const lags = [...sampled.values()].filter((s) => s.graphAt !== undefined).map((s) => s.graphAt! - s.capturedAt);
    const lines = await tail.firstLines(2000);
    const maxRss = Math.max(0, ...samples.flatMap((s) => s.rssMb.filter(Number.isFinite)));
    const m = inner.metrics;
    return {
      lines,
      result: {
        workers,
        agentRuns,
        loadSeconds,
        captured,
        ledger: ledgerTotal,
        graph: graphTotal,
        capturedPerSec: captured / loadSeconds,
        ledgerPerSec: ledgerTotal / (((ledgerDoneAt ?? end) - t0) / 1000),
        graphPerSec: graphTotal / (((graphDoneAt ?? end) - t0) / 1000),
        ledgerPerSecDuringLoad: atLoadEnd.ledger / loadSeconds,
        graphPerSecDuringLoad: atLoadEnd.graph / loadSeconds,
        ledgerPerSecDrain:
          ledgerDoneAt !== undefined && ledgerDoneAt - loadEnd > 1000 ? (ledgerTotal - atLoadEnd.ledger) / ((ledgerDoneAt - loadEnd) / 1000) : NaN,
        graphPerSecDrain: graphDoneAt !== undefined && graphDoneAt - loadEnd > 1000 ? (graphTotal - atLoadEnd.graph) / ((graphDoneAt - loadEnd) / 1000) : NaN,
        drained: ledgerDoneAt !== undefined && graphDoneAt !== undefined,
        lagMs: stats(lags),
        lagMissing: sampled.size - lags.length,
        maxQueueDepth: Math.max(0, ...samples.map((s) => s.queueDepth)),
        maxRssMb: maxRss,
        workerCpuUsPerEvent: ledgerTotal > 0 ? (workerCpu / ledgerTotal) * 1e6 : NaN,
        samples,
        transport: { spooled: m.spooled, dropped: m.dropped, sendFailures: m.sendFailures },
      },
    };
  } finally {
    await stopWorkers([...children, cursorPoller]);
    await transport.close().catch(() => undefined);
    await queue.obliterate({ force: true }).catch(() => undefined);
    await queue.close();
    await ledger.close();
    await graph.close();
  }
}

// ---------------------------------------------------------------------------------------------
// raw limits

async function rawBullmq(config: Config, events: number, batch: number, payload: unknown[]): Promise<RawResult> {
  const name = `auditgraph-bench-raw-${randomUUID().slice(0, 8)}`;
  const queue = new Queue(name, { connection: config.redis });
  const jobs = Math.max(1, Math.round(events / batch));
  let done = 0;
  let resolveDone!: () => void;
  const allDone = new Promise<void>((r) => (resolveDone = r));
  const worker = new Worker(
    name,
    async () => {
      done += 1;
      if (done === jobs) resolveDone();
    },
    { connection: config.redis, concurrency: 1 },
  );
  await worker.waitUntilReady();
  try {
    const t0 = performance.now();
    for (let i = 0; i < jobs; i += 50) {
      await queue.addBulk(
        Array.from({ length: Math.min(50, jobs - i) }, (_, k) => ({
          name: "batch",
          data: { events: payload },
          opts: { jobId: `${i + k}-${randomUUID()}`, priority: 1000 },
        })),
      );
    }
    await allDone;
    const seconds = (performance.now() - t0) / 1000;
    return {
      name: "queue (Redis + BullMQ)",
      what: `addBulk of ${jobs} jobs of ${batch} real events each, one no-op Worker (concurrency 1, as the CLI's default)`,
      events: jobs * batch,
      seconds,
      eventsPerSec: (jobs * batch) / seconds,
    };
  } finally {
    await worker.close();
    await queue.obliterate({ force: true }).catch(() => undefined);
    await queue.close();
  }
}

async function rawAppend(root: string, lines: string[], events: number, batch: number): Promise<RawResult> {
  const path = join(root, "raw-append.jsonl");
  const chunks: string[] = [];
  for (let i = 0; i + batch <= lines.length; i += batch) chunks.push(lines.slice(i, i + batch).join(""));
  if (chunks.length === 0) chunks.push(lines.join("") || "{}\n");
  const per = chunks[0]!.split("\n").length - 1;
  const handle = await open(path, "a");
  const t0 = performance.now();
  let n = 0;
  try {
    for (let i = 0; n < events; i++) {
      await handle.write(chunks[i % chunks.length]!);
      await handle.sync();
      n += per;
    }
  } finally {
    await handle.close();
  }
  const seconds = (performance.now() - t0) / 1000;
  await rm(path, { force: true });
  return {
    name: "ledger (fsync'd file)",
    what: `write + fsync of the ledger's own record lines, ${per} per fsync, one open file`,
    events: n,
    seconds,
    eventsPerSec: n / seconds,
  };
}

async function rawNeo4j(graph: Graph, tenantId: string, events: AuditEvent[], total: number, batch: number): Promise<RawResult> {
  const rows = events.map((e, i) => ({
    tenantId,
    id: e.eventId,
    type: e.type,
    traceId: e.traceId,
    runId: e.runId,
    parentRunId: e.parentRunId,
    name: e.name ?? null,
    position: graph.int(i),
    occurredAt: e.occurredAt,
  }));
  const cypher = `UNWIND $rows AS r CREATE (n:BenchPlain {tenantId: r.tenantId, id: r.id, type: r.type, traceId: r.traceId, runId: r.runId, parentRunId: r.parentRunId, name: r.name, position: r.position, occurredAt: r.occurredAt})`;
  const t0 = performance.now();
  let n = 0;
  const session = graph.driver.session({ database: graph.database, defaultAccessMode: "WRITE" });
  try {
    for (let i = 0; n < total; i += batch) {
      const slice = rows.slice(i % rows.length, (i % rows.length) + batch);
      const chunk = slice.length > 0 ? slice : rows.slice(0, batch);
      await session.executeWrite((tx) => tx.run(cypher, { rows: chunk }));
      n += chunk.length;
    }
  } finally {
    await session.close();
  }
  const seconds = (performance.now() - t0) / 1000;
  return {
    name: "graph (Neo4j)",
    what: `UNWIND $rows CREATE (:BenchPlain {...}) of one plain node per event, ${batch} per write transaction, no MERGE, no relationships`,
    events: n,
    seconds,
    eventsPerSec: n / seconds,
  };
}

// ---------------------------------------------------------------------------------------------

export async function runPipelineBenchmark(partial: Partial<PipelineBenchOptions> = {}): Promise<PipelineBenchResult> {
  const options: PipelineBenchOptions = { ...optionsFromEnv({}), ...partial };
  const { log } = options;
  const started = performance.now();
  const load = loadavg()
    .map((l) => l.toFixed(2))
    .join(" ");
  const config = loadConfig();
  const root = await mkdtemp(join(tmpdir(), "auditgraph-bench-pipeline-"));
  const run = randomUUID().slice(0, 8);
  const tenants = Array.from({ length: options.tenants }, (_, i) => `bench-pipe-${run}-${i}`);
  const rawTenant = `bench-pipe-${run}-raw`;
  const graph = new Graph(config.neo4j);
  await graph.migrate();
  const phases: PhaseResult[] = [];
  const raw: RawResult[] = [];
  let lines: string[] = [];
  try {
    for (const w of options.workers) {
      // Every phase on its own tenants, so cursors and counts start at zero.
      const phaseTenants = tenants.map((t) => `${t}-w${w}`);
      try {
        const out = await phase(config, root, w, phaseTenants, options);
        phases.push(out.result);
        if (out.lines.length > lines.length) lines = out.lines;
        const r = out.result;
        log(
          `    ${w} worker(s): ledger ${fmtRate(r.ledgerPerSec)}/s, graph ${fmtRate(r.graphPerSec)}/s, lag p95 ${fmtMs(r.lagMs.p95)} ms, RSS max ${r.maxRssMb.toFixed(0)} MB`,
        );
      } finally {
        for (const t of phaseTenants) await deleteTenant(graph, t);
      }
    }
    if (options.rawEvents > 0 && lines.length > 0) {
      log("  raw limits ...");
      const parsed = lines.map((l) => JSON.parse(l) as { event: AuditEvent });
      const events = parsed.map((p) => p.event);
      raw.push(await rawBullmq(config, options.rawEvents, 100, events.slice(0, 100)));
      raw.push(await rawAppend(root, lines, options.rawEvents, 100));
      try {
        raw.push(await rawNeo4j(graph, rawTenant, events, options.rawEvents, 100));
      } finally {
        await deleteTenant(graph, rawTenant);
      }
    }
  } finally {
    await graph.close();
    await rm(root, { recursive: true, force: true });
  }

  const best = (key: "ledgerPerSec" | "graphPerSec") =>
    phases.reduce<PhaseResult | undefined>((b, p) => (b === undefined || p[key] > b[key] ? p : b), undefined);
  const bl = best("ledgerPerSec");
  const bg = best("graphPerSec");
  const sustained = phases.filter((p) => p.drained && Math.min(p.ledgerPerSec, p.graphPerSec) >= 10_000);
  const maxRss = Math.max(0, ...phases.map((p) => p.maxRssMb));
  const goals: PipelineBenchResult["goals"] = [
    {
      name: ">= 10,000 events/s sustained into both the ledger and the graph",
      holds: phases.length ? sustained.length > 0 : undefined,
      detail: phases
        .map((p) => `${p.workers}w: ledger ${fmtRate(p.ledgerPerSec)}, graph ${fmtRate(p.graphPerSec)} (captured ${fmtRate(p.capturedPerSec)})`)
        .join("; "),
    },
    {
      name: "lag p95 < 1 s at that rate",
      holds: phases.length ? sustained.some((p) => p.lagMs.p95 < 1000) : undefined,
      detail:
        (sustained.length ? "" : "no phase reached 10,000 events/s, so not at that rate; ") +
        phases.map((p) => `${p.workers}w: p95 ${fmtMs(p.lagMs.p95)} ms at ${fmtRate(Math.min(p.ledgerPerSec, p.graphPerSec))}/s`).join("; "),
    },
    {
      name: "worker RSS < 300 MB",
      holds: phases.length ? maxRss < 300 : undefined,
      detail: `max ${maxRss.toFixed(0)} MB over all worker processes and phases`,
    },
  ];
  void bl;
  void bg;
  return {
    options: { ...options, log: undefined } as unknown as Omit<PipelineBenchOptions, "log">,
    environment: {
      node: process.version,
      cpus: String(availableParallelism()),
      loadavg: load,
      loadavgEnd: loadavg()
        .map((l) => l.toFixed(2))
        .join(" "),
      redis: `${config.redis.host ?? "127.0.0.1"}:${config.redis.port ?? 6379}`,
      neo4j: config.neo4j.uri,
    },
    phases,
    raw,
    goals,
    seconds: (performance.now() - started) / 1000,
  };
}

const fmtRate = (r: number) => (!Number.isFinite(r) ? "-" : r >= 100 ? Math.round(r).toLocaleString("en-US") : r.toFixed(1));
const fmtMs = (ms: number) => (!Number.isFinite(ms) ? "-" : ms >= 100 ? ms.toFixed(0) : ms.toFixed(1));

export function formatReport(result: PipelineBenchResult): string {
  const o = result.options;
  const e = result.environment;
  const out: string[] = [];
  out.push(
    `pipeline load: ${o.agents} concurrent demo agents (real handler + QueueTransport) -> Redis ${e.redis} -> N worker processes -> segment ledger -> Neo4j ${e.neo4j}`,
    `node ${e.node}, ${e.cpus} cpus, load average at start ${e.loadavg}, at end ${e.loadavgEnd}; ${o.rate > 0 ? `paced at ${fmtRate(o.rate)} events/s` : "agents unpaced"}, ${o.seconds} s of load per phase over ${o.tenants} tenants, lag sampled 1 in ${o.sampleEvery}, polled every ${o.pollMs} ms`,
    "",
    "end to end (rates: events / time from load start until the store held them all; 'in load' = what was in by the end of the load; 'drain' = after the load, backlog only, '-' when under 1 s):",
    table(
      [
        "workers",
        "agent runs",
        "captured",
        "captured/s",
        "ledger/s",
        "graph/s",
        "ledger/s in load",
        "graph/s in load",
        "ledger/s drain",
        "graph/s drain",
        "drained",
        "lag p50 ms",
        "lag p95 ms",
        "lag n",
        "max queue",
        "max RSS MB",
        "worker CPU µs/event",
      ],
      result.phases.map((p) => [
        String(p.workers),
        String(p.agentRuns),
        String(p.captured),
        fmtRate(p.capturedPerSec),
        fmtRate(p.ledgerPerSec),
        fmtRate(p.graphPerSec),
        fmtRate(p.ledgerPerSecDuringLoad),
        fmtRate(p.graphPerSecDuringLoad),
        fmtRate(p.ledgerPerSecDrain),
        fmtRate(p.graphPerSecDrain),
        p.drained ? "yes" : `no (${p.ledger}/${p.graph})`,
        fmtMs(p.lagMs.p50),
        fmtMs(p.lagMs.p95),
        `${p.lagMs.n}${p.lagMissing ? ` (+${p.lagMissing} unseen)` : ""}`,
        String(p.maxQueueDepth),
        p.maxRssMb.toFixed(0),
        Number.isFinite(p.workerCpuUsPerEvent) ? p.workerCpuUsPerEvent.toFixed(0) : "-",
      ]),
    ),
  );
  for (const p of result.phases) {
    const every = Math.max(1, Math.ceil(p.samples.length / 8));
    out.push(
      "",
      `${p.workers} worker(s) over time (t s: captured / ledger / graph, queue depth, RSS MB per worker):`,
      ...p.samples
        .filter((_, i) => i % every === 0 || i === p.samples.length - 1)
        .map(
          (s) =>
            `  ${s.t.toFixed(1).padStart(6)}: ${s.captured} / ${s.ledger} / ${s.graph}, queue ${s.queueDepth}, RSS ${s.rssMb.map((r) => r.toFixed(0)).join(" ")}`,
        ),
    );
    if (p.transport.spooled || p.transport.dropped || p.transport.sendFailures)
      out.push(`  transport: spooled ${p.transport.spooled}, dropped ${p.transport.dropped}, send failures ${p.transport.sendFailures}`);
  }
  if (result.raw.length) {
    const byName = (prefix: string) => result.raw.find((r) => r.name.startsWith(prefix));
    const ratio = (stage: number, r: RawResult | undefined) => (r && Number.isFinite(stage) ? (stage / r.eventsPerSec).toFixed(3) : "-");
    out.push(
      "",
      "raw limits (same process, same Redis / disk / Neo4j):",
      table(
        ["part", "events", "s", "events/s"],
        result.raw.map((r) => [r.name, String(r.events), r.seconds.toFixed(2), fmtRate(r.eventsPerSec)]),
      ),
      ...result.raw.map((r) => `  ${r.name}: ${r.what}`),
      "",
      "each stage as a ratio of its raw limit (queue stage = rate into the ledger, which the queue feeds):",
      table(
        ["workers", "queue / raw BullMQ", "ledger / raw fsync", "graph / raw UNWIND CREATE"],
        result.phases.map((p) => [
          String(p.workers),
          ratio(p.ledgerPerSec, byName("queue")),
          ratio(p.ledgerPerSec, byName("ledger")),
          ratio(p.graphPerSec, byName("graph")),
        ]),
      ),
    );
  }
  out.push("", "goals:");
  for (const g of result.goals) out.push(`  [${g.holds === undefined ? "n/a" : g.holds ? "HOLDS" : "MISSED"}] ${g.name}: ${g.detail}`);
  return out.join("\n");
}

benchMain(import.meta.url, "pipeline", { options: optionsFromEnv, run: runPipelineBenchmark, format: formatReport });
