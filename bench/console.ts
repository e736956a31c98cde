/**
 * Console: what the review console's pages cost, each against a plain read of the same data in
 * the same process. The real console (`consoleContext` + `buildConsoleApp`, pages, auth, CSP,
 * access events) over the real stores: a SegmentLedger in a temporary directory, the shared Neo4j
 * (everything under tenant ids of the run's own, deleted at the end), Redis, and the accounts in
 * PostgreSQL under a schema of the run's own (dropped at the end). Requests go through
 * `app.inject` with an API token (`Authorization: Bearer`) of a reviewer of the bench tenants, so
 * every request pays what a script's does: the token lookup, the page, its reads and access events.
 *   1. inbox: N open escalations (bench/console-seed.ts) in one tenant; GET / first (cold), then
 *      repeats, each beside `listEscalations` (the worker's list, same page size);
 *   2. trace page: one trace of R runs; GET /traces/:tenant/:traceId (which appends and projects an
 *      access event before it answers), each beside `ledger.readTrace` of the same trace;
 *   3. trace search: the graph bench's load (bench/graph.ts `loadPart`, projection only) of E
 *      events plus medium policy flags on a share of the outputs; GET /traces with filter mixes,
 *      each beside `MATCH (t:Trace {tenantId: $t, id: $id}) RETURN t` on a random trace.
 * Goals: inbox first render < 500 ms at 10,000 open escalations; trace page of 200 runs < 1 s;
 * trace search p95 < 200 ms at 1M events (each judged at that size only).
 *
 * Run: npm run bench:console (see bench/README.md for the BENCH_CONSOLE_* variables).
 */
import { mkdtemp, rm } from "node:fs/promises";
import { availableParallelism, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes, randomUUID } from "node:crypto";
import { performance } from "node:perf_hooks";
import pg from "pg";
import { pino } from "pino";
import { redisClient } from "@auditgraph/policy";
import { Graph } from "@auditgraph/graph";
import { SegmentLedger } from "@auditgraph/ledger";
import { listEscalations } from "@auditgraph/worker";
import { AccountStore, buildConsoleApp, consoleContext } from "@auditgraph/console";
import { benchMain, stats, table, type Stats } from "./common.js";
import { deleteTenant, loadPart, optionsFromEnv as graphOptionsFromEnv } from "./graph.js";
import { Rng } from "./generator.js";
import { searchDecorator, seedInbox, seedTrace } from "./console-seed.js";

const PARTS = ["inbox", "trace", "search"] as const;
type Part = (typeof PARTS)[number];

export interface ConsoleBenchOptions {
  parts: Part[];
  escalations: number;
  /** Held calls still waiting among the escalations. */
  held: number;
  inboxRepeats: number;
  traceRuns: number;
  traceRepeats: number;
  events: number;
  batch: number;
  /** Searches per filter mix. */
  searches: number;
  flagShare: number;
  warmup: number;
  seed: string;
  postgres: string;
  redisPort: number;
  log: (line: string) => void;
}

/** One timed page beside its baseline. */
export interface Cell {
  name: string;
  what: string;
  /** The first request (cold: first of its kind in this process, after the seeding). */
  firstMs: number;
  ms: Stats;
  baseline: string;
  baselineFirstMs: number;
  baselineMs: Stats;
  overBaselineP50: number;
  overBaselineP95: number;
  /** Rows on the page (mean), or bytes of HTML for the trace page. */
  rows: number;
  /** The measured times (ms), page and baseline. */
  samples: number[];
  baselineSamples: number[];
}

export interface ConsoleBenchResult {
  environment: Record<string, string>;
  tenants: Record<Part, string>;
  inbox?: { seed: Awaited<ReturnType<typeof seedInbox>>; cell: Cell; heldShown: number };
  trace?: { seed: Awaited<ReturnType<typeof seedTrace>>; ledgerRecords: number; cell: Cell };
  search?: { events: number; traces: number; flags: number; loadSeconds: number; cells: Cell[]; pooled: Stats; baselineMs: Stats };
  goals: { name: string; holds: boolean | undefined; detail: string }[];
  cleanup: { nodes: number; seconds: number };
  seconds: number;
}

const numEnv = (name: string, fallback: number, env: NodeJS.ProcessEnv, min = 0): number => {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw.replaceAll("_", ""));
  if (!Number.isFinite(n) || n < min) throw new Error(`${name} must be a number >= ${min}, got ${JSON.stringify(raw)}`);
  return n;
};

export function optionsFromEnv(env: NodeJS.ProcessEnv = process.env): ConsoleBenchOptions {
  const parts = (env.BENCH_CONSOLE_PARTS || PARTS.join(",")).split(",").map((p) => p.trim());
  for (const p of parts)
    if (!(PARTS as readonly string[]).includes(p)) throw new Error(`BENCH_CONSOLE_PARTS: ${JSON.stringify(p)} is not one of ${PARTS.join(", ")}`);
  return {
    parts: parts as Part[],
    escalations: numEnv("BENCH_CONSOLE_ESCALATIONS", 10_000, env, 1),
    held: numEnv("BENCH_CONSOLE_HELD", 10, env),
    inboxRepeats: numEnv("BENCH_CONSOLE_INBOX_REPEATS", 40, env, 1),
    traceRuns: numEnv("BENCH_CONSOLE_TRACE_RUNS", 200, env, 2),
    traceRepeats: numEnv("BENCH_CONSOLE_TRACE_REPEATS", 30, env, 1),
    events: numEnv("BENCH_CONSOLE_EVENTS", 1_000_000, env, 1),
    batch: numEnv("BENCH_CONSOLE_BATCH", 1000, env, 1),
    searches: numEnv("BENCH_CONSOLE_SEARCHES", 40, env, 1),
    flagShare: numEnv("BENCH_CONSOLE_FLAG_SHARE", 0.03, env),
    warmup: numEnv("BENCH_CONSOLE_WARMUP", 3, env),
    seed: env.BENCH_CONSOLE_SEED || "auditgraph-bench-console",
    postgres: env.AUDITGRAPH_CONSOLE_DATABASE_URL || "postgres://postgres@127.0.0.1:5432/postgres",
    redisPort: numEnv("BENCH_REDIS_PORT", 6379, env, 1),
    log: (line) => console.log(line),
  };
}

const elapsed = async <T>(fn: () => Promise<T>): Promise<{ value: T; ms: number }> => {
  const t0 = performance.now();
  const value = await fn();
  return { value, ms: performance.now() - t0 };
};

/**
 * Times `page` and `baseline` in turns (rotating order): the first of each apart (cold), then
 * `warmup` pairs not counted, then `repeats` pairs. `rows` tells how much the page showed.
 */
async function pair(
  n: { name: string; what: string; baseline: string; repeats: number; warmup: number },
  page: (k: number) => Promise<string>,
  baseline: (k: number) => Promise<unknown>,
  rows: (body: string) => number,
): Promise<Cell> {
  const first = await elapsed(() => page(0));
  const baselineFirst = await elapsed(() => baseline(0));
  const pageMs: number[] = [];
  const baseMs: number[] = [];
  let shown = rows(first.value);
  for (let k = 1; k <= n.warmup + n.repeats; k += 1) {
    const measured = k > n.warmup;
    const p = async () => {
      const r = await elapsed(() => page(k));
      if (measured) {
        pageMs.push(r.ms);
        shown += rows(r.value);
      }
    };
    const b = async () => {
      const r = await elapsed(() => baseline(k));
      if (measured) baseMs.push(r.ms);
    };
    if (k % 2 === 0) await p().then(b);
    else await b().then(p);
  }
  const ms = stats(pageMs);
  const baselineMs = stats(baseMs);
  return {
    ...n,
    firstMs: first.ms,
    ms,
    baselineFirstMs: baselineFirst.ms,
    baselineMs,
    overBaselineP50: ms.p50 / baselineMs.p50,
    overBaselineP95: ms.p95 / baselineMs.p95,
    rows: shown / (pageMs.length + 1),
    samples: pageMs,
    baselineSamples: baseMs,
  };
}

const count = (body: string, needle: string) => body.split(needle).length - 1;

export async function runConsoleBenchmark(partial: Partial<ConsoleBenchOptions> = {}): Promise<ConsoleBenchResult> {
  const o: ConsoleBenchOptions = { ...optionsFromEnv({}), ...partial };
  const { log } = o;
  const started = performance.now();
  const load = loadavg()
    .map((l) => l.toFixed(2))
    .join(" ");
  const run = randomUUID().slice(0, 8);
  const tenants = { inbox: `bench-console-${run}-inbox`, trace: `bench-console-${run}-trace`, search: `bench-console-${run}-search` };
  const neo4j = graphOptionsFromEnv().neo4j;
  const graph = new Graph(neo4j);
  const ledgerDir = await mkdtemp(join(tmpdir(), "auditgraph-bench-console-"));
  const ledger = new SegmentLedger(ledgerDir);
  const redis = redisClient({ host: "127.0.0.1", port: o.redisPort });
  const schema = `bench_console_${run}`;
  let accounts: AccountStore | undefined;
  let cleanup = { nodes: 0, seconds: 0 };
  const result: Omit<ConsoleBenchResult, "environment" | "goals" | "cleanup" | "seconds"> = { tenants };
  try {
    await graph.migrate();
    accounts = await AccountStore.open({ connectionString: o.postgres, schema });
    const ctx = consoleContext({
      options: { port: 0, sessionSecret: randomBytes(32).toString("base64url") },
      ledger,
      graph,
      redis,
      accounts,
      log: pino({ level: "warn" }),
    });
    const app = await buildConsoleApp(ctx);
    await app.ready();
    try {
      const account = await accounts.create({
        email: `bench-${run}@example.test`,
        name: "Bench Reviewer",
        password: randomBytes(24).toString("base64url"),
        roles: { [tenants.inbox]: "reviewer", [tenants.trace]: "reviewer", [tenants.search]: "reviewer" },
      });
      const { token } = await accounts.createToken(account.id, "bench");
      const get = async (url: string): Promise<string> => {
        const res = await app.inject({
          method: "GET",
          url,
          headers: { authorization: `Bearer ${token}`, accept: "text/html", "user-agent": "auditgraph-bench" },
        });
        if (res.statusCode !== 200) throw new Error(`GET ${url}: ${res.statusCode} ${res.body.slice(0, 300)}`);
        return res.body;
      };

      if (o.parts.includes("inbox")) {
        log(`inbox: seeding ${o.escalations.toLocaleString("en-US")} open escalations in ${tenants.inbox} ...`);
        const seed = await seedInbox(ledger, graph, {
          tenantId: tenants.inbox,
          escalations: o.escalations,
          held: Math.min(o.held, o.escalations),
          seed: o.seed,
          batch: o.batch,
          log,
        });
        log(`inbox: seeded in ${seed.seconds.toFixed(1)} s; timing GET / (first, ${o.warmup} warm-up, ${o.inboxRepeats} measured) beside listEscalations ...`);
        let heldShown = 0;
        const cell = await pair(
          {
            name: "inbox",
            what: "GET / (the viewer's open and acknowledged escalations, first 200)",
            baseline: "listEscalations(graph, { tenantId, limit: 200 })",
            repeats: o.inboxRepeats,
            warmup: o.warmup,
          },
          async (k) => {
            const body = await get("/");
            if (k === 0) heldShown = count(body, 'class="escalation held"');
            return body;
          },
          async () => {
            const rows = await listEscalations(graph, { tenantId: tenants.inbox, limit: 200 });
            if (rows.length !== Math.min(200, o.escalations)) throw new Error(`listEscalations: ${rows.length} rows`);
          },
          (body) => count(body, 'class="escalation'),
        );
        result.inbox = { seed, cell, heldShown };
      }

      if (o.parts.includes("trace")) {
        const seed = await seedTrace(ledger, graph, { tenantId: tenants.trace, runs: o.traceRuns, seed: o.seed });
        let ledgerRecords = 0;
        for (const s of await ledger.streams()) for await (const _ of ledger.readStream(s)) ledgerRecords += 1;
        log(
          `trace: ${seed.runs} runs, ${seed.events} events (${(seed.bytes / 1e6).toFixed(1)} MB of records) in a ledger of ${ledgerRecords.toLocaleString("en-US")} records; timing its page beside ledger.readTrace ...`,
        );
        const url = `/traces/${encodeURIComponent(tenants.trace)}/${encodeURIComponent(seed.traceId)}`;
        const cell = await pair(
          {
            name: "trace page",
            what: `GET ${url.replace(seed.traceId, ":traceId")} (access event appended and projected first)`,
            baseline: "ledger.readTrace(traceId)",
            repeats: o.traceRepeats,
            warmup: o.warmup,
          },
          async () => {
            const body = await get(url);
            if (count(body, 'class="run run-') !== seed.runs)
              throw new Error(`trace page: ${count(body, 'class="run run-')} runs shown, ${seed.runs} recorded`);
            return body;
          },
          async () => {
            const records = await ledger.readTrace(seed.traceId);
            if (records.length !== seed.events) throw new Error(`readTrace: ${records.length} records`);
          },
          (body) => Buffer.byteLength(body),
        );
        result.trace = { seed, ledgerRecords, cell };
      }

      if (o.parts.includes("search")) result.search = await searchPart(o, graph, tenants.search, get);
    } finally {
      await app.close();
    }
  } finally {
    log("cleanup: deleting the bench tenants, the ledger directory and the accounts schema ...");
    const c0 = performance.now();
    let nodes = 0;
    for (const tenantId of Object.values(tenants)) nodes += await deleteTenant(graph, tenantId);
    cleanup = { nodes, seconds: (performance.now() - c0) / 1000 };
    await accounts?.close();
    const client = new pg.Client({ connectionString: o.postgres });
    await client.connect();
    // The schema name is the run's own (checked by AccountStore.open): nothing else is in it.
    await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).finally(() => client.end());
    redis.disconnect();
    await ledger.close();
    await rm(ledgerDir, { recursive: true, force: true });
    await graph.close();
  }
  return {
    ...result,
    environment: {
      node: process.version,
      cpus: String(availableParallelism()),
      loadavg: load,
      loadavgEnd: loadavg()
        .map((l) => l.toFixed(2))
        .join(" "),
    },
    goals: goalsOf(result),
    cleanup,
    seconds: (performance.now() - started) / 1000,
  };
}

/** The search part: the graph bench's load (projection only, flags added), then each filter mix beside the plain lookup. */
async function searchPart(
  o: ConsoleBenchOptions,
  graph: Graph,
  tenantId: string,
  get: (url: string) => Promise<string>,
): Promise<NonNullable<ConsoleBenchResult["search"]>> {
  const { log } = o;
  const decorator = searchDecorator(o.seed, o.flagShare, 500);
  log(
    `search: loading ${o.events.toLocaleString("en-US")} events into ${tenantId} (bench/graph.ts loadPart, projection only, flags on ${(o.flagShare * 100).toFixed(1)}% of outputs) ...`,
  );
  const graphOptions = { ...graphOptionsFromEnv({}), events: o.events, batch: o.batch, queries: 0, warmup: 0, seed: o.seed, log };
  const { generator, load } = await loadPart(graph, tenantId, graphOptions, { plain: false, decorate: decorator.decorate });
  const summary = generator.summary();
  const sample = decorator.sample();
  if (sample.length === 0) throw new Error("search: no traces were generated");
  const rng = new Rng(`${o.seed}/searches`);
  const startMs = Date.parse(summary.startedAt);
  const spanMs = Math.max(1, Date.parse(summary.endedAt) - startMs);
  const window = (days: number) => {
    const w = Math.min(spanMs, days * 86_400_000);
    const since = startMs + Math.floor(rng.next() * (spanMs - w + 1));
    return { since: new Date(since).toISOString(), until: new Date(since + w).toISOString() };
  };
  const agentVersion = () => {
    const [id, version] = rng.pick(summary.agentVersions).split("@");
    return { agent: id!, version: version! };
  };
  const mixes: { name: string; query: () => Record<string, string> }[] = [
    { name: "newest (no filter)", query: () => ({}) },
    { name: "user", query: () => ({ user: rng.pick(sample).userId }) },
    { name: "agent + version", query: agentVersion },
    { name: "model version", query: () => ({ model: rng.pick(summary.servedModelVersions) }) },
    { name: "time range (1 day)", query: () => window(1) },
    { name: "flag", query: () => ({ flag: "with" }) },
    { name: "agent + flag + 3 days", query: () => ({ agent: agentVersion().agent, flag: "with", ...window(3) }) },
  ];
  log(
    `search: ${summary.traces.toLocaleString("en-US")} traces, ${decorator.flags().toLocaleString("en-US")} flags; ${mixes.length} filter mixes, ${o.warmup} warm-up + ${o.searches} measured each, beside a plain lookup ...`,
  );
  const cells: Cell[] = [];
  const pooled: number[] = [];
  const baseAll: number[] = [];
  for (const mix of mixes) {
    const cell = await pair(
      { name: mix.name, what: "GET /traces?tenant=...", baseline: "MATCH (t:Trace {tenantId: $t, id: $id}) RETURN t", repeats: o.searches, warmup: o.warmup },
      () => get(`/traces?${new URLSearchParams({ tenant: tenantId, ...mix.query() })}`),
      async () => {
        const rows = await graph.read(`MATCH (t:Trace {tenantId: $tenantId, id: $id}) RETURN t`, { tenantId, id: rng.pick(sample).traceId });
        if (rows.length !== 1) throw new Error(`plain lookup: ${rows.length} rows`);
      },
      (body) => count(body, 'class="trace-row"'),
    );
    cells.push(cell);
    log(`  ${mix.name}: p50 ${cell.ms.p50.toFixed(1)} ms, p95 ${cell.ms.p95.toFixed(1)} ms, ${cell.rows.toFixed(1)} rows`);
  }
  // The pooled figure is over the measured calls of every mix (each mix the same count).
  for (const c of cells) {
    pooled.push(...c.samples);
    baseAll.push(...c.baselineSamples);
  }
  return {
    events: summary.events,
    traces: summary.traces,
    flags: decorator.flags(),
    loadSeconds: load.projection.seconds,
    cells,
    pooled: stats(pooled),
    baselineMs: stats(baseAll),
  };
}

// ---------------------------------------------------------------------------------------------
// goals and report

const fmtMs = (ms: number) => (ms >= 100 ? ms.toFixed(0) : ms >= 10 ? ms.toFixed(1) : ms.toFixed(2));
const n = (v: number) => v.toLocaleString("en-US");

function goalsOf(r: Omit<ConsoleBenchResult, "environment" | "goals" | "cleanup" | "seconds">): ConsoleBenchResult["goals"] {
  const goals: ConsoleBenchResult["goals"] = [];
  const judged = (at: boolean, holds: boolean, detail: string, size: string) =>
    ({ holds: at ? holds : undefined, detail: at ? detail : `${detail}; judged at ${size} only (would ${holds ? "hold" : "miss"} at this size)` }) as const;
  if (r.inbox) {
    const { cell, seed } = r.inbox;
    const at = seed.escalations >= 10_000;
    goals.push({
      name: "inbox first render < 500 ms with 10,000 open escalations (the first GET / after seeding)",
      ...judged(at, cell.firstMs < 500, `${fmtMs(cell.firstMs)} ms with ${n(seed.escalations)} open`, "10,000"),
    });
    goals.push({
      name: "inbox render p95 < 500 ms (repeats)",
      ...judged(at, cell.ms.p95 < 500, `p95 ${fmtMs(cell.ms.p95)} ms, p50 ${fmtMs(cell.ms.p50)} ms over ${cell.ms.n}`, "10,000"),
    });
  }
  if (r.trace) {
    const { cell, seed } = r.trace;
    const at = seed.runs >= 200;
    goals.push({
      name: "trace page of 200 runs < 1 s (p95 of repeats; the first beside it)",
      ...judged(at, cell.ms.p95 < 1000 && cell.firstMs < 1000, `p95 ${fmtMs(cell.ms.p95)} ms, first ${fmtMs(cell.firstMs)} ms, ${seed.runs} runs`, "200 runs"),
    });
  }
  if (r.search) {
    const s = r.search;
    const worst = [...s.cells].sort((a, b) => b.ms.p95 - a.ms.p95)[0]!;
    goals.push({
      name: "trace search p95 < 200 ms on the 1M-event graph (all mixes pooled)",
      ...judged(
        s.events >= 1_000_000,
        s.pooled.p95 < 200,
        `pooled p95 ${fmtMs(s.pooled.p95)} ms over ${s.pooled.n} searches; worst mix "${worst.name}" p95 ${fmtMs(worst.ms.p95)} ms; ${n(s.events)} events`,
        "1M events",
      ),
    });
  }
  return goals;
}

function cellRows(cells: Cell[]): string {
  return table(
    ["page", "first ms", "p50 ms", "p95 ms", "p99 ms", "max ms", "rows", "baseline first", "baseline p50", "baseline p95", "p50 / base", "p95 / base"],
    cells.map((c) => [
      c.name,
      fmtMs(c.firstMs),
      fmtMs(c.ms.p50),
      fmtMs(c.ms.p95),
      fmtMs(c.ms.p99),
      fmtMs(c.ms.max),
      c.rows >= 10_000 ? `${(c.rows / 1000).toFixed(0)} KB` : c.rows.toFixed(1),
      fmtMs(c.baselineFirstMs),
      fmtMs(c.baselineMs.p50),
      fmtMs(c.baselineMs.p95),
      c.overBaselineP50.toFixed(2),
      c.overBaselineP95.toFixed(2),
    ]),
  );
}

export function formatReport(r: ConsoleBenchResult): string {
  const e = r.environment;
  const out = [
    `console: the review console's pages (app.inject, API token) against plain reads in the same process`,
    `node ${e.node}, ${e.cpus} cpus, load average at start ${e.loadavg}, at end ${e.loadavgEnd}`,
    "",
  ];
  if (r.inbox) {
    const s = r.inbox.seed;
    out.push(
      `inbox: ${n(s.escalations)} open escalations in ${s.tenantId} (${Object.entries(s.bySeverity)
        .map(([k, v]) => `${k} ${n(v)}`)
        .join(
          ", ",
        )}; ${n(s.held)} held calls still waiting) on ${n(s.traces)} traces, ${n(s.events)} events appended and projected in ${s.seconds.toFixed(0)} s; first page shows ${r.inbox.heldShown} held calls (each: a ledger readTrace and an escalation.view access event)`,
      cellRows([r.inbox.cell]),
      `  baseline: ${r.inbox.cell.baseline}`,
      "",
    );
  }
  if (r.trace) {
    const t = r.trace;
    out.push(
      `trace page: ${t.seed.runs} runs, ${n(t.seed.events)} events (${(t.seed.bytes / 1e6).toFixed(1)} MB of records); the ledger held ${n(t.ledgerRecords)} records (readTrace: the segment ledger's trace index, built on its first read); rows = HTML size`,
      cellRows([t.cell]),
      `  baseline: ${t.cell.baseline}`,
      "",
    );
  }
  if (r.search) {
    const s = r.search;
    out.push(
      `trace search: ${n(s.events)} events, ${n(s.traces)} traces, ${n(s.flags)} flags, loaded in ${s.loadSeconds.toFixed(0)} s of projection; GET /traces?tenant=<t>&<mix> (50 a page) beside ${s.cells[0]?.baseline ?? ""} on random traces`,
      cellRows(s.cells),
      `  pooled: p50 ${fmtMs(s.pooled.p50)} ms, p95 ${fmtMs(s.pooled.p95)} ms over ${s.pooled.n}; baseline p50 ${fmtMs(s.baselineMs.p50)} ms, p95 ${fmtMs(s.baselineMs.p95)} ms; ratio p95 ${(s.pooled.p95 / s.baselineMs.p95).toFixed(2)}`,
      "",
    );
  }
  out.push("goals:");
  for (const g of r.goals) out.push(`  [${g.holds === undefined ? "n/a" : g.holds ? "HOLDS" : "MISSED"}] ${g.name}: ${g.detail}`);
  out.push(
    "",
    `cleanup: ${n(r.cleanup.nodes)} nodes of the bench tenants deleted in ${r.cleanup.seconds.toFixed(0)} s; ledger directory and accounts schema removed`,
  );
  return out.join("\n");
}

benchMain(import.meta.url, "console", { options: optionsFromEnv, run: runConsoleBenchmark, format: formatReport, loadAverage: true });
