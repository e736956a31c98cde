/** The result of bench/deployment.ts and its printed report: figures, ratios, CPU against cores, goals. */
import { table, type Stats } from "./common.js";
import type { DeploymentBenchOptions, Layout } from "./deployment-options.js";

export interface StageFigure {
  stage: string;
  /** Over the scenario, summed over its workers (from their /metrics counters). */
  cpuSeconds: number;
  events: number;
  /** The stage's CPU over the events through it (rate(cpu) / rate(events), as the metric's help says). */
  usPerStageEvent: number;
}

export interface ScenarioResult {
  layout: Layout;
  label: string;
  workers: number;
  tenants: number;
  shards: number;
  /** Streams in the scenario's ledger directory at the end. */
  streams: number;
  agentRuns: number;
  agentFailures: number;
  firstFailure: string | undefined;
  captured: number;
  ledger: number;
  graph: number;
  loadSeconds: number;
  /** Events the agents captured / the seconds until their runs ended. */
  offeredPerSec: number;
  /** Events in the store / seconds from the load's start until it held them all (or the drain timed out). */
  ledgerPerSec: number;
  graphPerSec: number;
  /** What was in by the end of the load / the load's seconds. */
  ledgerPerSecInLoad: number;
  graphPerSecInLoad: number;
  drained: boolean;
  sampled: number;
  ledgerLagMs: Stats;
  graphLagMs: Stats;
  /** Worker processes' CPU (/proc) from the load's start to the drain's end, per event in the ledger. */
  workerCpuUsPerEvent: number;
  stages: StageFigure[];
  /** Every stage's CPU over the events in the ledger. */
  stagesUsPerEvent: number;
  cpu: {
    agentsSeconds: number;
    workersSeconds: number;
    /** This process and the cursor poller. */
    othersSeconds: number;
    wallSeconds: number;
    /** Cores the bench's own processes used on average (all CPU seconds / wall). */
    benchCores: number;
    /** Cores busy machine-wide (/proc/stat: Redis, Neo4j and anything else too), during the load and during the drain. */
    machineCoresLoad: number;
    machineCoresDrain: number;
  };
  /** Jobs the workers put back because another worker was writing their stream (`auditgraph_jobs_returned_busy_total`). */
  busyReturns: number;
  /** The agents' transports: batches a slow or failed Redis send put in the spool, and how many were forwarded before the agents reported. */
  transport: { spooled: number; forwarded: number; dropped: number; sendFailures: number };
}

export interface DeploymentBenchResult {
  options: Omit<DeploymentBenchOptions, "log">;
  environment: { node: string; cores: number; loadavg: string; loadavgEnd: string; redis: string; neo4j: string };
  scenarios: ScenarioResult[];
  seconds: number;
}

const rate = (r: number) => (!Number.isFinite(r) ? "-" : r >= 100 ? Math.round(r).toLocaleString("en-US") : r.toFixed(1));
const ms = (v: number) => (!Number.isFinite(v) ? "-" : v >= 100 ? v.toFixed(0) : v.toFixed(1));
const us = (v: number) => (!Number.isFinite(v) ? "-" : v.toFixed(1));
const x = (v: number | undefined) => (v === undefined || !Number.isFinite(v) ? "-" : `${v.toFixed(2)}x`);

/** The machine counts as CPU-bound when it was at least this busy (of its cores), in the load or the drain. */
const CPU_BOUND = 0.9;
export const cpuBound = (s: ScenarioResult, cores: number) => Math.max(s.cpu.machineCoresLoad, s.cpu.machineCoresDrain) >= CPU_BOUND * cores;

/** N workers' drain rate over 1 worker's, same layout, same run; undefined without a 1-worker scenario. */
export function ratioToOne(result: DeploymentBenchResult, s: ScenarioResult, key: "ledgerPerSec" | "graphPerSec"): number | undefined {
  const one = result.scenarios.find((o) => o.layout === s.layout && o.workers === 1);
  return one ? s[key] / one[key] : undefined;
}

function goals(result: DeploymentBenchResult): string[] {
  const cores = result.environment.cores;
  const out: string[] = [];
  const line = (holds: boolean | undefined, name: string, detail: string) =>
    out.push(`  [${holds === undefined ? "n/a" : holds ? "HOLDS" : "MISSED"}] ${name}: ${detail}`);

  const two = result.scenarios.find((s) => s.layout === "one" && s.workers === 2);
  const one = result.scenarios.find((s) => s.layout === "one" && s.workers === 1);
  if (!two || !one)
    line(undefined, "2 workers on one tenant >= 1.6x one worker's (when the machine has the cores)", "needs the one-tenant layout with 1 and 2 workers");
  else {
    const r = Math.min(ratioToOne(result, two, "ledgerPerSec")!, ratioToOne(result, two, "graphPerSec")!);
    const why: string[] = [];
    if (cpuBound(two, cores) || cpuBound(one, cores))
      why.push(`the CPU is the limit (machine busy ${two.cpu.machineCoresLoad.toFixed(2)} of ${cores} cores in the 2-worker load)`);
    if (one.ledgerPerSec >= 0.9 * one.offeredPerSec) why.push("1 worker already kept up with the offered rate, so the ratio measures the offered load");
    const ok = r >= 1.6;
    line(
      ok ? true : why.length ? undefined : false,
      "2 workers on one tenant >= 1.6x one worker's (when the machine has the cores)",
      `${x(r)} (ledger ${x(ratioToOne(result, two, "ledgerPerSec"))}, graph ${x(ratioToOne(result, two, "graphPerSec"))}), ${two.streams} stream(s) written${why.length ? `; not judged: ${why.join("; ")}` : ""}`,
    );
  }

  const cpus = result.scenarios.filter((s) => Number.isFinite(s.workerCpuUsPerEvent));
  const worst = Math.max(...cpus.map((s) => s.workerCpuUsPerEvent));
  line(
    cpus.length ? worst <= 100 : undefined,
    "worker CPU <= 100 µs/event",
    cpus.map((s) => `${s.layout}/${s.workers}w ${us(s.workerCpuUsPerEvent)} (stages ${us(s.stagesUsPerEvent)})`).join(", ") +
      " µs/event (process CPU; in brackets the stages' counters)",
  );

  const ok = result.scenarios.filter(
    (s) => s.drained && Math.min(s.ledgerPerSec, s.graphPerSec) >= 10_000 && Math.max(s.ledgerLagMs.p95, s.graphLagMs.p95) < 1000,
  );
  const best = [...result.scenarios].sort((a, b) => Math.min(b.ledgerPerSec, b.graphPerSec) - Math.min(a.ledgerPerSec, a.graphPerSec))[0];
  line(
    result.scenarios.length ? ok.length > 0 : undefined,
    "10,000 events/s sustained into ledger and graph with lag p95 < 1 s",
    best
      ? `best ${best.layout}/${best.workers}w: ledger ${rate(best.ledgerPerSec)}/s, graph ${rate(best.graphPerSec)}/s, lag p95 ledger ${ms(best.ledgerLagMs.p95)} ms, graph ${ms(best.graphLagMs.p95)} ms (offered ${rate(best.offeredPerSec)}/s)` +
          (ok.length > 0 ? "" : `; ${limitAt(best, 10_000, cores)}`)
      : "no scenario",
  );
  return out;
}

/** The machine's CPU per event in a scenario, by whose it is, from the /proc figures (µs of one core per event in the ledger). */
export function cpuPerEvent(s: ScenarioResult) {
  const drainSeconds = Math.max(0, s.cpu.wallSeconds - s.loadSeconds);
  const machine = s.cpu.machineCoresLoad * Math.min(s.loadSeconds, s.cpu.wallSeconds) + s.cpu.machineCoresDrain * drainSeconds;
  const per = (seconds: number) => (s.ledger > 0 ? (1e6 * seconds) / s.ledger : Number.NaN);
  const bench = s.cpu.agentsSeconds + s.cpu.workersSeconds + s.cpu.othersSeconds;
  return {
    agents: per(s.cpu.agentsSeconds),
    workers: per(s.cpu.workersSeconds),
    // Redis, Neo4j and the rest of the machine: what /proc/stat counted beyond the bench's own processes.
    services: per(Math.max(0, machine - bench)),
    bench: per(s.cpu.othersSeconds),
    total: per(Math.max(machine, bench)),
  };
}

/** Which raw limit stops `target` events/s: the cores the measured CPU per event would need, against the machine's. */
export function limitAt(s: ScenarioResult, target: number, cores: number): string {
  const c = cpuPerEvent(s);
  const needed = (target * c.total) / 1e6;
  const parts = `agents ${us(c.agents)} + workers ${us(c.workers)} + Redis/Neo4j/rest ${us(c.services)} + bench ${us(c.bench)} µs`;
  return needed > cores
    ? `the CPU stops it: ${us(c.total)} µs of CPU per event (${parts}) is ${needed.toFixed(1)} cores at ${rate(target)}/s, on ${cores}`
    : `the CPU would allow it (${needed.toFixed(1)} of ${cores} cores at ${rate(target)}/s: ${parts}): look at the lag and the queue`;
}

export function formatReport(result: DeploymentBenchResult): string {
  const o = result.options;
  const e = result.environment;
  const rows = result.scenarios;
  const name = (s: ScenarioResult) => (s.layout === "one" ? `1 tenant / ${s.shards} shards` : `${s.tenants} tenants / 1 shard`);
  const out: string[] = [
    `deployment: ${o.agentProcesses} agent process(es) × ${o.loops} loops (demo agent, fake model ${o.modelMinMs}-${o.modelMaxMs} ms a call, AuditCallbackHandler + QueueTransport from the environment) -> Redis ${e.redis} -> N \`auditgraph worker\` processes -> segment ledger -> Neo4j ${e.neo4j}`,
    `node ${e.node}, os.availableParallelism() = ${e.cores} cores, load average at start ${e.loadavg}, at end ${e.loadavgEnd}; ${o.seconds} s of load per scenario, lag sampled 1 in ${o.sampleEvery}, polled every ${o.pollMs} ms`,
    "",
    "throughput (events/s; ledger/s and graph/s = events / time from the load's start until the store held them all; 'in load' = what was in when the agents stopped; ×1w = drain rate over 1 worker's, same layout, this run):",
    table(
      [
        "layout",
        "workers",
        "streams",
        "agent runs",
        "captured",
        "offered/s",
        "ledger/s",
        "graph/s",
        "ledger/s in load",
        "graph/s in load",
        "ledger ×1w",
        "graph ×1w",
        "drained",
      ],
      rows.map((s) => [
        name(s),
        String(s.workers),
        String(s.streams),
        String(s.agentRuns),
        String(s.captured),
        rate(s.offeredPerSec),
        rate(s.ledgerPerSec),
        rate(s.graphPerSec),
        rate(s.ledgerPerSecInLoad),
        rate(s.graphPerSecInLoad),
        x(ratioToOne(result, s, "ledgerPerSec")),
        x(ratioToOne(result, s, "graphPerSec")),
        s.drained ? "yes" : `no (${s.ledger}/${s.graph} of ${s.captured})`,
      ]),
    ),
    "",
    "lag per sampled event (ms; ledger: the record's recordedAt - capture time; graph: first cursor poll past it - capture time):",
    table(
      ["layout", "workers", "ledger lag p50", "ledger lag p95", "graph lag p50", "graph lag p95", "sampled", "in ledger", "in graph"],
      rows.map((s) => [
        name(s),
        String(s.workers),
        ms(s.ledgerLagMs.p50),
        ms(s.ledgerLagMs.p95),
        ms(s.graphLagMs.p50),
        ms(s.graphLagMs.p95),
        String(s.sampled),
        String(s.ledgerLagMs.n),
        String(s.graphLagMs.n),
      ]),
    ),
    "",
    "worker CPU per event (µs; process = the workers' /proc CPU over events in the ledger; each stage = its CPU / its events, from /metrics auditgraph_worker_stage_*_total):",
    table(
      ["layout", "workers", "process", "stages sum", ...(rows[0]?.stages.map((st) => st.stage) ?? [])],
      rows.map((s) => [name(s), String(s.workers), us(s.workerCpuUsPerEvent), us(s.stagesUsPerEvent), ...s.stages.map((st) => us(st.usPerStageEvent))]),
    ),
    "",
    `CPU against the ${e.cores} cores (CPU seconds from the load's start to the drain's end; machine = /proc/stat, Redis and Neo4j included; limit: machine busy >= ${CPU_BOUND * 100}% of the cores):`,
    table(
      ["layout", "workers", "agents s", "workers s", "bench other s", "wall s", "bench cores", "machine cores load", "machine cores drain", "limit"],
      rows.map((s) => [
        name(s),
        String(s.workers),
        s.cpu.agentsSeconds.toFixed(1),
        s.cpu.workersSeconds.toFixed(1),
        s.cpu.othersSeconds.toFixed(1),
        s.cpu.wallSeconds.toFixed(1),
        s.cpu.benchCores.toFixed(2),
        s.cpu.machineCoresLoad.toFixed(2),
        s.cpu.machineCoresDrain.toFixed(2),
        cpuBound(s, e.cores) ? "CPU" : "-",
      ]),
    ),
  ];
  const notes: string[] = [];
  for (const s of rows) {
    if (s.layout === "one" && s.shards > 1 && s.streams <= 1)
      notes.push(`${name(s)}, ${s.workers}w: one stream written, so this build does not shard by trace yet (AUDITGRAPH_SHARDS accepted, not applied)`);
    if (s.workers === 1 && s.ledgerPerSec >= 0.9 * s.offeredPerSec)
      notes.push(`${name(s)}: 1 worker kept up with the offered ${rate(s.offeredPerSec)}/s, so ×1w shows the offered load, not the workers' capacity`);
    if (s.busyReturns > 0)
      notes.push(
        `${name(s)}, ${s.workers}w: ${s.busyReturns} job(s) put back while another worker wrote their stream (auditgraph_jobs_returned_busy_total), ${(s.busyReturns / Math.max(1, s.loadSeconds)).toFixed(1)} a second of load`,
      );
    if (s.agentFailures) notes.push(`${name(s)}, ${s.workers}w: ${s.agentFailures} agent run(s) failed, first: ${s.firstFailure}`);
    if (s.transport.spooled || s.transport.dropped || s.transport.sendFailures)
      notes.push(
        `${name(s)}, ${s.workers}w: the agents' transports spooled ${s.transport.spooled} events (forwarded ${s.transport.forwarded}), dropped ${s.transport.dropped}, send failures ${s.transport.sendFailures}: a Redis send slower than its timeout goes to the spool, and the spool to Redis once a probe finds it`,
      );
  }
  if (rows.some((s) => cpuBound(s, e.cores)))
    notes.push(
      `the machine's CPU was the limit in the scenarios marked CPU: agents, workers, Redis and Neo4j share ${e.cores} cores, so more workers cannot add throughput there`,
    );
  if (notes.length) out.push("", "notes:", ...notes.map((n) => `  - ${n}`));
  out.push("", "goals (issue 18):", ...goals(result));
  return out.join("\n");
}
