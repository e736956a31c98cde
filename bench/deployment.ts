/**
 * The bench as a real deployment (issue 18): agents and workers in processes of their own, set up
 * as an application and an operator would set them up, from one environment.
 *   - Agent processes (bench/deployment-agents.ts, `--agent-processes`), each with `--loops`
 *     concurrent loops of the demo agent (real LangChain agent, fake chat model answering in
 *     `--model-ms`, 200-800 ms per call) audited by the real handler and a `QueueTransport` built
 *     from the environment alone.
 *   - Worker processes: the real `auditgraph worker` CLI, each serving /metrics on a port of its own.
 *   - Shared environment: Redis, a fresh queue, a temporary segment-file ledger, Neo4j and
 *     AUDITGRAPH_SHARDS (`--shards` for the one-tenant layout, 1 for the many-tenant one).
 * Scenarios: `--workers` (1,2,4) × `--layouts` (one: 1 tenant with AUDITGRAPH_SHARDS=8; many: 8
 * tenants, one shard each). Per scenario: offered events/s, drained events/s into the ledger and the
 * graph, the ratio to 1 worker of the same layout in this run, lag p50/p95 (ledger: the record's
 * recordedAt minus the capture time of sampled events; graph: the first cursor poll past the
 * event, as bench/pipeline.ts measures it), the workers' CPU per event by stage (their /metrics),
 * the streams the ledger holds, and the CPU the processes and the machine used against its cores.
 * Run: npm run bench:deployment [-- --seconds 30 ...] (see bench/README.md).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { availableParallelism, cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { Queue } from "bullmq";
import { streamIdFor } from "@auditgraph/core";
import { Graph } from "@auditgraph/graph";
import { SegmentLedger } from "@auditgraph/ledger";
import { loadConfig, type Config } from "@auditgraph/cli";
import { benchMain, stats } from "./common.js";
import { deleteTenant } from "./graph.js";
import { LedgerTail, cpuSeconds, startWorkers, stopWorkers } from "./pipeline.js";
import { formatReport, type DeploymentBenchResult, type ScenarioResult, type StageFigure } from "./deployment-report.js";
import { optionsFromArgs, type DeploymentBenchOptions, type Layout } from "./deployment-options.js";

export { formatReport, type DeploymentBenchResult } from "./deployment-report.js";
export { optionsFromArgs } from "./deployment-options.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const AGENTS = join(ROOT, "bench/deployment-agents.ts");
const POLLER = join(ROOT, "bench/pipeline-poller.mjs");
const STAGES = ["validation", "sealing", "append", "policies", "projection"] as const;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A port nobody listens on now (the worker binds it a moment later: a race this bench accepts). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** The machine's CPU ticks from /proc/stat: busy (all but idle and iowait) and total. */
async function machineTicks(): Promise<{ busy: number; total: number }> {
  const line = (await readFile("/proc/stat", "utf8")).split("\n")[0]!;
  const t = line.trim().split(/\s+/).slice(1, 9).map(Number);
  const total = t.reduce((a, b) => a + b, 0);
  return { busy: total - t[3]! - t[4]!, total };
}
const busyCores = (a: { busy: number; total: number }, b: { busy: number; total: number }) =>
  b.total > a.total ? ((b.busy - a.busy) / (b.total - a.total)) * cpus().length : NaN;

/** What the bench reads from a worker's /metrics (a scrape, as Prometheus would): its stage counters, and the jobs it put back (0 before any). */
async function scrapeWorker(port: number): Promise<{ stages: Map<string, { cpu: number; events: number }>; busyReturns: number }> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const stages = new Map<string, { cpu: number; events: number }>();
  for (const m of text.matchAll(/^auditgraph_worker_stage_(cpu_seconds|events)_total\{stage="([a-z]+)"\} (\S+)$/gm)) {
    const c = stages.get(m[2]!) ?? { cpu: 0, events: 0 };
    if (m[1] === "cpu_seconds") c.cpu += Number(m[3]);
    else c.events += Number(m[3]);
    stages.set(m[2]!, c);
  }
  return { stages, busyReturns: Number(/^auditgraph_jobs_returned_busy_total (\S+)$/m.exec(text)?.[1] ?? 0) };
}
const sumCounters = (maps: Map<string, { cpu: number; events: number }>[]) => {
  const out = new Map<string, { cpu: number; events: number }>();
  for (const m of maps)
    for (const [stage, v] of m) {
      const c = out.get(stage) ?? { cpu: 0, events: 0 };
      out.set(stage, { cpu: c.cpu + v.cpu, events: c.events + v.events });
    }
  return out;
};

interface AgentDone {
  captured: number;
  runs: number;
  failures: number;
  firstFailure?: string;
  cpuSeconds: number;
  /** Epoch ms when its last agent run ended (before the flush and the spool's forwarding). */
  runsEndedAt: number;
  transport: { spooled: number; forwarded: number; dropped: number; sendFailures: number };
  sampled: [string, number][];
}
interface AgentProcess {
  child: ChildProcess;
  captured: number;
  ready: Promise<void>;
  done: Promise<AgentDone>;
}

/** Starts one agent process; `ready` once it has loaded, `done` with its counts once its load is over. */
function startAgent(index: number, env: Record<string, string>, tenants: string[], options: DeploymentBenchOptions): AgentProcess {
  const child = spawn(process.execPath, ["--import", "tsx", AGENTS], {
    cwd: ROOT,
    env: {
      ...process.env,
      ...env,
      AUDITGRAPH_SPOOL_DIR: join(env.AUDITGRAPH_SPOOL_DIR!, `agents-${index}`),
      BENCH_DEPLOY_CHILD: JSON.stringify({
        tenants,
        loops: options.loops,
        modelMinMs: options.modelMinMs,
        modelMaxMs: options.modelMaxMs,
        sampleEvery: options.sampleEvery,
        index,
      }),
    },
    stdio: ["pipe", "pipe", "pipe"],
  });
  let err = "";
  child.stderr!.on("data", (c: Buffer) => (err = (err + c.toString()).slice(-2000)));
  const agent = { child, captured: 0 } as AgentProcess;
  const exited = new Promise<never>((_, reject) =>
    child.once("exit", (code) => reject(new Error(`agent process ${index} exited (${code}) before its report: ${err}`))),
  );
  exited.catch(() => undefined);
  let onReady!: () => void;
  let onDone!: (d: AgentDone) => void;
  agent.ready = Promise.race([new Promise<void>((r) => (onReady = r)), exited]);
  agent.done = Promise.race([new Promise<AgentDone>((r) => (onDone = r)), exited]);
  createInterface({ input: child.stdout! }).on("line", (line) => {
    const m = JSON.parse(line) as { ready?: boolean; done?: boolean; captured?: number };
    if (m.ready) onReady();
    else if (m.done) onDone(m as unknown as AgentDone);
    else if (m.captured !== undefined) agent.captured = m.captured;
  });
  return agent;
}

async function scenario(
  config: Config,
  root: string,
  k: number,
  layout: Layout,
  workers: number,
  run: string,
  options: DeploymentBenchOptions,
): Promise<ScenarioResult> {
  const { log } = options;
  const dir = join(root, `s${k}`);
  const tenants = layout === "one" ? [`bench-dep-${run}-${k}`] : Array.from({ length: options.tenants }, (_, i) => `bench-dep-${run}-${k}-${i}`);
  const shards = layout === "one" ? options.shards : 1;
  const env: Record<string, string> = {
    AUDITGRAPH_QUEUE: `auditgraph-bench-dep-${randomUUID().slice(0, 8)}`,
    AUDITGRAPH_LEDGER_DIR: join(dir, "ledger"),
    AUDITGRAPH_KEYSTORE_DIR: join(dir, "keystore"),
    AUDITGRAPH_SPOOL_DIR: join(dir, "spool"),
    AUDITGRAPH_REDIS_URL: `redis://${config.redis.host ?? "127.0.0.1"}:${config.redis.port ?? 6379}`,
    AUDITGRAPH_SHARDS: String(shards),
    NEO4J_URI: config.neo4j.uri,
    NEO4J_USER: config.neo4j.user,
    NEO4J_PASSWORD: config.neo4j.password,
    NEO4J_DATABASE: config.neo4j.database,
  };
  // Every stream the run may write: with sharding each tenant's K shards, without it the base streams alone fill.
  const streams = tenants.flatMap((t) => Array.from({ length: shards }, (_, s) => streamIdFor(t, s)));
  const label = layout === "one" ? `1 tenant, AUDITGRAPH_SHARDS=${shards}` : `${tenants.length} tenants, AUDITGRAPH_SHARDS=1`;
  log(`  [${label}] ${workers} worker(s), ${options.agentProcesses} agent process(es) × ${options.loops} loops, ${options.seconds} s ...`);
  const queue = new Queue(env.AUDITGRAPH_QUEUE!, { connection: config.redis });
  const graph = new Graph(config.neo4j);
  const ledger = new SegmentLedger(env.AUDITGRAPH_LEDGER_DIR!);
  const agents = Array.from({ length: options.agentProcesses }, (_, i) => startAgent(i, env, tenants, options));
  const children: ChildProcess[] = [];
  let poller: ChildProcess | undefined;
  try {
    const ports = await Promise.all(Array.from({ length: workers }, () => freePort()));
    // Both settled before going on: a worker that started while an agent failed is still stopped below.
    const [started, ready] = await Promise.allSettled([
      startWorkers(
        workers,
        env,
        options.workerConcurrency,
        (l) => log(`  ${l}`),
        (i) => ["--http-port", String(ports[i]), "--http-host", "127.0.0.1"],
      ),
      Promise.all(agents.map((a) => a.ready)),
    ]);
    if (started.status === "rejected") throw started.reason;
    children.push(...started.value);
    if (ready.status === "rejected") throw ready.reason;
    const cursorLog: { t: number; c: Record<string, number> }[] = [];
    poller = spawn(process.execPath, [POLLER], {
      env: { ...process.env, ...env, BENCH_STREAMS: JSON.stringify(streams), BENCH_POLL_MS: String(options.pollMs) },
      stdio: ["ignore", "pipe", "inherit"],
    });
    createInterface({ input: poller.stdout! }).on("line", (line) => cursorLog.push(JSON.parse(line) as (typeof cursorLog)[number]));
    const graphNow = () => Object.values(cursorLog.at(-1)?.c ?? {}).reduce((a, b) => a + b, 0);
    const tail = new LedgerTail(ledger, streams, new Map());

    const counters0 = sumCounters((await Promise.all(ports.map(scrapeWorker))).map((w) => w.stages));
    const workerCpu0 = await Promise.all(children.map((c) => cpuSeconds(c.pid)));
    const pollerCpu0 = await cpuSeconds(poller.pid);
    const ownCpu0 = process.cpuUsage();
    const machine0 = await machineTicks();
    const t0 = performance.now();
    const go = Date.now();
    const until = go + options.seconds * 1000;
    for (const a of agents) a.child.stdin!.write(`${JSON.stringify({ until })}\n`);
    let loadOver = false;
    const done = Promise.all(agents.map((a) => a.done)).finally(() => (loadOver = true));
    done.catch(() => undefined);
    let lastProgress = t0;
    const progress = async (phase: string) => {
      const ledgerNow = await tail.poll();
      if (performance.now() - lastProgress < 5000) return ledgerNow;
      lastProgress = performance.now();
      const captured = agents.reduce((n, a) => n + a.captured, 0);
      log(`    ${((lastProgress - t0) / 1000).toFixed(0).padStart(4)} s ${phase}: captured ${captured}, ledger ${ledgerNow}, graph ${graphNow()}`);
      return ledgerNow;
    };
    while (!loadOver) {
      await progress("load");
      await sleep(options.pollMs);
    }
    const reports = await done;
    for (const [i, r] of reports.entries()) agents[i]!.captured = r.captured;
    const loadEnd = performance.now();
    const machineLoad = await machineTicks();
    const captured = reports.reduce((n, r) => n + r.captured, 0);
    const atLoadEnd = { ledger: await tail.poll(), graph: graphNow() };
    log(`    load over: ${captured} events in ${((loadEnd - t0) / 1000).toFixed(1)} s; draining ...`);
    let ledgerDoneAt: number | undefined;
    let graphDoneAt: number | undefined;
    const deadline = performance.now() + options.drainTimeoutMs;
    while (performance.now() < deadline) {
      const ledgerNow = await progress("drain");
      if (ledgerDoneAt === undefined && ledgerNow >= captured) ledgerDoneAt = performance.now();
      if (graphDoneAt === undefined && graphNow() >= captured) graphDoneAt = performance.now();
      if (ledgerDoneAt !== undefined && graphDoneAt !== undefined) break;
      await sleep(options.pollMs);
    }
    const end = performance.now();
    const machineEnd = await machineTicks();
    const own = process.cpuUsage(ownCpu0);
    const workersCpu = (await Promise.all(children.map((c) => cpuSeconds(c.pid)))).reduce((s, v, i) => s + v - workerCpu0[i]!, 0);
    const othersCpu = (await cpuSeconds(poller.pid)) - pollerCpu0 + (own.user + own.system) / 1e6;
    const scraped = await Promise.all(ports.map(scrapeWorker));
    const counters1 = sumCounters(scraped.map((w) => w.stages));
    // Each scenario's workers are new processes: their counters start at 0.
    const returned = scraped.reduce((n, w) => n + w.busyReturns, 0);
    const ledgerTotal = await tail.poll();
    const graphTotal = graphNow();

    // Sampled events: where they landed and when the worker recorded them, read from the ledger's lines.
    const sampled = new Map<string, { capturedAt: number; stream?: string; position?: number; recordedAt?: number }>();
    for (const r of reports) for (const [id, at] of r.sampled) sampled.set(id, { capturedAt: at });
    for (const stream of streams)
      for (const path of await ledger.segments(stream))
        for (const line of (await readFile(path, "utf8")).split("\n")) {
          const at = line.indexOf('"eventId":"');
          const s = at < 0 ? undefined : sampled.get(line.slice(at + 11, at + 47));
          if (!s || s.recordedAt !== undefined) continue;
          const record = JSON.parse(line) as { position: number; recordedAt: string };
          Object.assign(s, { stream, position: record.position, recordedAt: Date.parse(record.recordedAt) });
        }
    const ledgerLags: number[] = [];
    const graphLags: number[] = [];
    for (const s of sampled.values()) {
      if (s.recordedAt === undefined) continue;
      ledgerLags.push(s.recordedAt - s.capturedAt);
      const hit = cursorLog.find((entry) => (entry.c[s.stream!] ?? 0) > s.position!);
      if (hit) graphLags.push(hit.t - s.capturedAt);
    }

    const stages: StageFigure[] = STAGES.map((stage) => {
      const a = counters0.get(stage) ?? { cpu: 0, events: 0 };
      const b = counters1.get(stage) ?? { cpu: 0, events: 0 };
      const cpu = b.cpu - a.cpu;
      const events = b.events - a.events;
      return { stage, cpuSeconds: cpu, events, usPerStageEvent: events > 0 ? (cpu / events) * 1e6 : NaN };
    });
    const loadSeconds = (loadEnd - t0) / 1000;
    const wall = (end - t0) / 1000;
    const agentsCpu = reports.reduce((n, r) => n + r.cpuSeconds, 0);
    const result: ScenarioResult = {
      layout,
      label,
      workers,
      tenants: tenants.length,
      shards,
      streams: (await ledger.streams()).length,
      agentRuns: reports.reduce((n, r) => n + r.runs, 0),
      agentFailures: reports.reduce((n, r) => n + r.failures, 0),
      firstFailure: reports.find((r) => r.firstFailure)?.firstFailure,
      captured,
      ledger: ledgerTotal,
      graph: graphTotal,
      loadSeconds,
      // Over the agents' runs only: the flush and the spool's forwarding after them offer nothing new.
      offeredPerSec: captured / ((Math.max(...reports.map((r) => r.runsEndedAt)) - go) / 1000),
      ledgerPerSec: ledgerTotal / (((ledgerDoneAt ?? end) - t0) / 1000),
      graphPerSec: graphTotal / (((graphDoneAt ?? end) - t0) / 1000),
      ledgerPerSecInLoad: atLoadEnd.ledger / loadSeconds,
      graphPerSecInLoad: atLoadEnd.graph / loadSeconds,
      drained: ledgerDoneAt !== undefined && graphDoneAt !== undefined,
      sampled: sampled.size,
      ledgerLagMs: stats(ledgerLags),
      graphLagMs: stats(graphLags),
      workerCpuUsPerEvent: ledgerTotal > 0 ? (workersCpu / ledgerTotal) * 1e6 : NaN,
      stages,
      stagesUsPerEvent: ledgerTotal > 0 ? (stages.reduce((n, s) => n + s.cpuSeconds, 0) / ledgerTotal) * 1e6 : NaN,
      cpu: {
        agentsSeconds: agentsCpu,
        workersSeconds: workersCpu,
        othersSeconds: othersCpu,
        wallSeconds: wall,
        benchCores: (agentsCpu + workersCpu + othersCpu) / wall,
        machineCoresLoad: busyCores(machine0, machineLoad),
        machineCoresDrain: busyCores(machineLoad, machineEnd),
      },
      busyReturns: returned,
      transport: {
        spooled: reports.reduce((n, r) => n + r.transport.spooled, 0),
        forwarded: reports.reduce((n, r) => n + r.transport.forwarded, 0),
        dropped: reports.reduce((n, r) => n + r.transport.dropped, 0),
        sendFailures: reports.reduce((n, r) => n + r.transport.sendFailures, 0),
      },
    };
    log(
      `    ${workers} worker(s): offered ${Math.round(result.offeredPerSec)}/s, ledger ${Math.round(result.ledgerPerSec)}/s, graph ${Math.round(result.graphPerSec)}/s, ${result.streams} stream(s), drained ${result.drained ? "yes" : "NO"}`,
    );
    return result;
  } finally {
    for (const a of agents) a.child.stdin!.end();
    await stopWorkers([...agents.map((a) => a.child), ...children, ...(poller ? [poller] : [])]);
    await queue.obliterate({ force: true }).catch(() => undefined);
    await queue.close();
    await ledger.close();
    for (const t of tenants) await deleteTenant(graph, t);
    // deleteTenant removes the base stream's cursor; the shards' are the run's too.
    await graph.driver.executeQuery("MATCH (c:ProjectionCursor) WHERE c.streamId IN $streams DETACH DELETE c", { streams }, { database: graph.database });
    await graph.close();
  }
}

export async function runDeploymentBenchmark(partial: Partial<DeploymentBenchOptions> = {}): Promise<DeploymentBenchResult> {
  const options: DeploymentBenchOptions = { ...optionsFromArgs([], {}), ...partial };
  const started = performance.now();
  const load = () =>
    loadavg()
      .map((l) => l.toFixed(2))
      .join(" ");
  const loadStart = load();
  const config = loadConfig();
  const root = await mkdtemp(join(tmpdir(), "auditgraph-bench-deployment-"));
  const run = randomUUID().slice(0, 8);
  const graph = new Graph(config.neo4j);
  const scenarios: ScenarioResult[] = [];
  try {
    await graph.migrate();
    let k = 0;
    for (const layout of options.layouts) for (const w of options.workers) scenarios.push(await scenario(config, root, k++, layout, w, run, options));
  } finally {
    await graph.close();
    await rm(root, { recursive: true, force: true });
  }
  return {
    options: { ...options, log: undefined } as unknown as Omit<DeploymentBenchOptions, "log">,
    environment: {
      node: process.version,
      cores: availableParallelism(),
      loadavg: loadStart,
      loadavgEnd: load(),
      redis: `${config.redis.host ?? "127.0.0.1"}:${config.redis.port ?? 6379}`,
      neo4j: config.neo4j.uri,
    },
    scenarios,
    seconds: (performance.now() - started) / 1000,
  };
}

benchMain(import.meta.url, "deployment", {
  options: () => optionsFromArgs(process.argv.slice(2), process.env),
  run: runDeploymentBenchmark,
  format: formatReport,
  loadAverage: true,
});
