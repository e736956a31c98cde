/**
 * Worker stages: the worker's CPU per event by stage, read from the stage timers it keeps and
 * exposes in /metrics (`auditgraph_worker_stage_cpu_seconds_total{stage}` over
 * `auditgraph_worker_stage_events_total{stage}`), and what those timers cost.
 *
 * One process, no Redis, no graph: the worker's job path (`recordJob`: validation, sealing with a
 * `FileKeyStore`, the append to a `SegmentLedger` with its fsync, the default policies on an
 * in-memory policy state and their flags) over N synthetic events (bench/generator.ts: whole agent
 * traces, deterministic from a seed), in jobs of `batch` events taken from one tenant after
 * another (a job is one ledger stream, so no two sections overlap and the split is exact), one job
 * after another as a worker of concurrency 1 takes them. Each run has a ledger, key store and
 * policy state of its own in a temporary directory; the same jobs go through every run.
 *
 * Two variants take turns job by job (their order alternating): `timed` (the worker's pipeline:
 * the timers are always on) and `untimed` (the same loop with `untimed: true`, the pipeline's
 * sections left out: a build of it without the timers), each with its own ledger, so the
 * machine's other load hits both alike. The overhead is the median over every job of every round
 * of its timed / untimed process CPU (a garbage collection that lands in one job moves that job's
 * ratio, not the median); beside it each round's totals, and the direct cost: the sections opened per event times
 * what one section costs alone. The per-stage figures are the timed runs' counters, read through
 * the metrics registry as a scrape reads them.
 *
 * Run: npm run bench:stages (see bench/README.md). Options: BENCH_STAGES_EVENTS,
 * BENCH_STAGES_BATCH, BENCH_STAGES_TENANTS, BENCH_STAGES_ROUNDS, BENCH_STAGES_WARMUP,
 * BENCH_STAGES_KEYSTORE, BENCH_STAGES_POLICIES, BENCH_STAGES_SEED.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { availableParallelism, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { pino } from "pino";
import { FileKeyStore, type AuditEvent } from "@auditgraph/core";
import { SegmentLedger } from "@auditgraph/ledger";
import { InMemoryPolicyState } from "@auditgraph/policy";
import { EventRecorder, PolicyEngine, STAGES, StageTimers, WorkerMetrics, loadWorkerPolicies, recordJob, type Stage } from "@auditgraph/worker";
import { TraceGenerator } from "./generator.js";
import { benchMain, numEnv, table } from "./common.js";

export interface StagesBenchOptions {
  /** Events per run (whole traces per tenant, so a few more). */
  events: number;
  /** Events per job. */
  batch: number;
  /** Tenants (ledger streams) the events are spread over; each job holds one tenant's events. */
  tenants: number;
  /** Rounds: each takes every job through both variants. */
  rounds: number;
  /** Events of an unmeasured round first (the JIT warms up). */
  warmup: number;
  /** Seal with a key store (the `sealing` stage); without, it does not run. */
  keyStore: boolean;
  /** Evaluate the default policies (the `policies` stage); without, it does not run. */
  policies: boolean;
  seed: string;
  log: (line: string) => void;
}

export interface RunResult {
  round: number;
  variant: "timed" | "untimed";
  events: number;
  /** Process CPU (user + system) over the run's loop, µs per event. */
  cpuUsPerEvent: number;
  wallUsPerEvent: number;
}

export interface StageFigure {
  stage: Stage;
  /** Events through the stage, per timed run. */
  events: number;
  /** The stage's CPU over the events through it, µs (what the counters give: rate(cpu) / rate(events)). */
  usPerStageEvent: number;
  /** The stage's CPU over the job events, µs: the stages' figures add up to the attributed CPU per event. */
  usPerEvent: number;
}

export interface StagesBenchResult {
  options: Omit<StagesBenchOptions, "log">;
  environment: Record<string, string>;
  jobs: number;
  runs: RunResult[];
  /** timed / untimed CPU per event, by round (whole rounds: noisier, a GC lands in one variant or the other). */
  ratios: number[];
  /** The median over all jobs of all rounds of the job's timed / untimed CPU. */
  overhead: number;
  /** Timer sections (start + stop) per event, what one costs alone (µs), and their product over the timed CPU: the timers' direct cost. */
  sectionsPerEvent: number;
  sectionCostUs: number;
  directOverhead: number;
  stages: StageFigure[];
  /** Timed runs: process CPU per event over the loop, and the part of it the stages account for. */
  timedUsPerEvent: number;
  attributedUsPerEvent: number;
  seconds: number;
}

const flagEnv = (name: string, fallback: boolean, env: NodeJS.ProcessEnv): boolean => {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  if (raw !== "0" && raw !== "1") throw new Error(`${name} must be 0 or 1, got ${JSON.stringify(raw)}`);
  return raw === "1";
};

const KNOWN_ENV = new Set(["EVENTS", "BATCH", "TENANTS", "ROUNDS", "WARMUP", "KEYSTORE", "POLICIES", "SEED"].map((k) => `BENCH_STAGES_${k}`));

export function optionsFromEnv(env: NodeJS.ProcessEnv = process.env): StagesBenchOptions {
  const unknown = Object.keys(env).filter((k) => k.startsWith("BENCH_STAGES_") && !KNOWN_ENV.has(k));
  if (unknown.length > 0) throw new Error(`unknown option ${unknown.join(", ")} (known: ${[...KNOWN_ENV].join(", ")})`);
  return {
    events: numEnv("BENCH_STAGES_EVENTS", 50_000, env, 1),
    batch: numEnv("BENCH_STAGES_BATCH", 100, env, 1),
    tenants: numEnv("BENCH_STAGES_TENANTS", 1, env, 1),
    rounds: numEnv("BENCH_STAGES_ROUNDS", 3, env, 1),
    warmup: numEnv("BENCH_STAGES_WARMUP", 10_000, env),
    keyStore: flagEnv("BENCH_STAGES_KEYSTORE", true, env),
    policies: flagEnv("BENCH_STAGES_POLICIES", true, env),
    seed: env.BENCH_STAGES_SEED || "auditgraph-stages",
    log: (line) => console.log(line),
  };
}

/** The jobs of a run: `batch` events of one tenant each, the tenants taking turns; as BullMQ hands them over (parsed JSON). */
function jobsOf(options: StagesBenchOptions, events: number, seed: string): { events: AuditEvent[] }[] {
  const perTenant = Array.from({ length: options.tenants }, (_, i) => {
    const generator = new TraceGenerator({ seed: `${seed}/${i}`, tenantId: `bench-stages-${i}`, events: Math.ceil(events / options.tenants) });
    return generator.take(Number.MAX_SAFE_INTEGER);
  });
  const jobs: { events: AuditEvent[] }[] = [];
  for (let at = 0; perTenant.some((list) => at < list.length); at += options.batch)
    for (const list of perTenant) if (at < list.length) jobs.push({ events: list.slice(at, at + options.batch) });
  return JSON.parse(JSON.stringify(jobs)) as { events: AuditEvent[] }[];
}

const noSources = { projectionLag: () => 0, queueCounts: async () => undefined, redisUp: () => true, ledgerWritable: () => true, graphMigrated: () => false };

/** A worker's job path in a directory of its own: ledger, key store, policy state and metrics. */
async function setUp(options: StagesBenchOptions, timed: boolean) {
  const dir = await mkdtemp(join(tmpdir(), "auditgraph-bench-stages-"));
  const ledger = new SegmentLedger(join(dir, "ledger"));
  const keyStore = options.keyStore ? new FileKeyStore(join(dir, "keys")) : undefined;
  const log = pino({ level: "silent" });
  const metrics = new WorkerMetrics(noSources);
  const recorder = new EventRecorder({ ledger, ...(keyStore ? { keyStore } : {}), onAppended: (a) => metrics.eventsAppended.inc(a.appended) });
  const policyEngine = options.policies
    ? new PolicyEngine({
        policies: await loadWorkerPolicies(undefined),
        state: new InMemoryPolicyState(),
        ledger,
        logger: log,
        ...(keyStore ? { keyStore } : {}),
      })
    : undefined;
  const parts = { ledger, recorder, policyEngine, metrics, log, untimed: !timed };
  return {
    parts,
    cpuUs: 0,
    wallUs: 0,
    events: 0,
    async close() {
      await ledger.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** The stage counters of `metrics`, as a scrape reads them. */
async function counters(metrics: WorkerMetrics, name: string): Promise<Map<Stage, number>> {
  const values = (await metrics.registry.getSingleMetric(name)!.get()).values;
  return new Map(values.map((v) => [v.labels.stage as Stage, v.value]));
}

/**
 * One round: every job through both variants, one right after the other (their order alternating
 * job by job), so the machine's other load and the process's drift hit both alike; each job's
 * process CPU is measured around its `recordJob`.
 */
async function runRound(options: StagesBenchOptions, jobs: { events: AuditEvent[] }[]) {
  const timed = await setUp(options, true);
  const untimed = await setUp(options, false);
  const jobRatios: number[] = [];
  for (const [i, job] of jobs.entries()) {
    const used = new Map<typeof timed, number>();
    for (const run of i % 2 ? [timed, untimed] : [untimed, timed]) {
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      const outcome = await recordJob(run.parts, `job-${i}`, job);
      run.wallUs += (performance.now() - t0) * 1000;
      const cpu = process.cpuUsage(cpu0);
      used.set(run, cpu.user + cpu.system);
      run.cpuUs += cpu.user + cpu.system;
      run.events += outcome.appended + outcome.duplicates;
    }
    jobRatios.push(used.get(timed)! / used.get(untimed)!);
  }
  const stageCpu = await counters(timed.parts.metrics, "auditgraph_worker_stage_cpu_seconds_total");
  const stageEvents = await counters(timed.parts.metrics, "auditgraph_worker_stage_events_total");
  const sections = timed.parts.metrics.stages.sections;
  await timed.close();
  await untimed.close();
  return { timed, untimed, stageCpu, stageEvents, sections, jobRatios };
}

/** What one section (a `start` and a `stop`) costs alone, µs: the timers' direct cost per section. */
function sectionCostUs(): number {
  const timers = new StageTimers();
  const n = 20_000;
  const t0 = process.cpuUsage();
  for (let i = 0; i < n; i++) timers.stop(timers.start("append"), 1);
  const cpu = process.cpuUsage(t0);
  return (cpu.user + cpu.system) / n;
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

export async function runStagesBenchmark(partial: Partial<StagesBenchOptions> = {}): Promise<StagesBenchResult> {
  const options: StagesBenchOptions = { ...optionsFromEnv({}), ...partial };
  const started = performance.now();
  const jobs = jobsOf(options, options.events, options.seed);
  if (options.warmup > 0) await runRound(options, jobsOf(options, options.warmup, `${options.seed}/warmup`));
  const runs: RunResult[] = [];
  const ratios: number[] = [];
  const jobRatios: number[] = [];
  const stageCpu = new Map<Stage, number>();
  const stageEvents = new Map<Stage, number>();
  let timedCpu = 0;
  let timedEvents = 0;
  let sections = 0;
  for (let round = 1; round <= options.rounds; round++) {
    const r = await runRound(options, jobs);
    for (const [variant, run] of [
      ["timed", r.timed],
      ["untimed", r.untimed],
    ] as const) {
      const cpuUsPerEvent = run.cpuUs / run.events;
      runs.push({ round, variant, events: run.events, cpuUsPerEvent, wallUsPerEvent: run.wallUs / run.events });
      options.log(
        `round ${round} ${variant.padEnd(7)}: ${run.events} events, ${cpuUsPerEvent.toFixed(1)} CPU µs/event, ${(run.wallUs / run.events).toFixed(1)} wall µs/event`,
      );
    }
    ratios.push(r.timed.cpuUs / r.timed.events / (r.untimed.cpuUs / r.untimed.events));
    jobRatios.push(...r.jobRatios);
    timedCpu += r.timed.cpuUs;
    timedEvents += r.timed.events;
    sections += r.sections;
    for (const [stage, seconds] of r.stageCpu) stageCpu.set(stage, (stageCpu.get(stage) ?? 0) + seconds * 1e6);
    for (const [stage, n] of r.stageEvents) stageEvents.set(stage, (stageEvents.get(stage) ?? 0) + n);
  }
  const stages = STAGES.filter((s) => stageEvents.has(s)).map((stage) => ({
    stage,
    events: stageEvents.get(stage)! / options.rounds,
    usPerStageEvent: stageCpu.get(stage)! / Math.max(1, stageEvents.get(stage)!),
    usPerEvent: stageCpu.get(stage)! / timedEvents,
  }));
  const costUs = sectionCostUs();
  return {
    options: { ...options, log: undefined } as Omit<StagesBenchOptions, "log">,
    environment: {
      node: process.version,
      cpus: String(availableParallelism()),
      loadAverageAtEnd: loadavg()
        .map((l) => l.toFixed(2))
        .join(" "),
    },
    jobs: jobs.length,
    runs,
    ratios,
    overhead: median(jobRatios),
    sectionsPerEvent: sections / timedEvents,
    sectionCostUs: costUs,
    directOverhead: (sections * costUs) / timedCpu,
    stages,
    timedUsPerEvent: timedCpu / timedEvents,
    attributedUsPerEvent: stages.reduce((sum, s) => sum + s.usPerEvent, 0),
    seconds: (performance.now() - started) / 1000,
  };
}

export function formatReport(result: StagesBenchResult): string {
  const { options } = result;
  const lines = [
    `${result.runs[0]?.events ?? 0} events a run in ${result.jobs} jobs of ${options.batch} (${options.tenants} tenant(s)), ${options.rounds} round(s); ` +
      `key store ${options.keyStore ? "on" : "off"}, policies ${options.policies ? "on" : "off"}; node ${result.environment.node}, ${result.environment.cpus} CPUs, load average at end ${result.environment.loadAverageAtEnd}`,
    "",
    table(
      ["stage", "events/run", "CPU µs per stage event", "CPU µs per job event", "share"],
      result.stages.map((s) => [
        s.stage,
        s.events.toFixed(0),
        s.usPerStageEvent.toFixed(1),
        s.usPerEvent.toFixed(1),
        `${((100 * s.usPerEvent) / result.timedUsPerEvent).toFixed(0)}%`,
      ]),
    ),
    "",
    `job path CPU (timed runs): ${result.timedUsPerEvent.toFixed(1)} µs/event; in the stages ${result.attributedUsPerEvent.toFixed(1)}, ` +
      `outside them ${(result.timedUsPerEvent - result.attributedUsPerEvent).toFixed(1)} (the loop, bookkeeping between stages, GC threads)`,
    `timers' overhead, measured: timed / untimed CPU, median over the jobs ${result.overhead.toFixed(3)}; whole rounds ${result.ratios.map((r) => r.toFixed(3)).join(", ")}`,
    `timers' overhead, direct: ${result.sectionsPerEvent.toFixed(3)} sections per event x ${result.sectionCostUs.toFixed(2)} µs a section = ` +
      `${(result.sectionsPerEvent * result.sectionCostUs).toFixed(3)} µs/event, ${(100 * result.directOverhead).toFixed(2)}% of the timed CPU`,
    `  [${result.overhead < 1.02 ? "HOLDS" : "MISSED"}] stage timers cost under 2% of the job path's CPU, measured (median job ratio ${result.overhead.toFixed(3)})`,
    `  [${result.directOverhead < 0.02 ? "HOLDS" : "MISSED"}] stage timers cost under 2% of the job path's CPU, direct (${(100 * result.directOverhead).toFixed(2)}%)`,
    `  (the worker's goal, at most 100 µs of CPU per event, is the whole worker's, BullMQ and the projection included: see bench:pipeline)`,
  ];
  return lines.join("\n");
}

benchMain(import.meta.url, "worker stages", { options: optionsFromEnv, run: runStagesBenchmark, format: formatReport, loadAverage: true });
