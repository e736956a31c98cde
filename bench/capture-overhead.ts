/**
 * Capture overhead: what an audit/tracing callback handler costs the agent it watches.
 *
 * One process, one agent (bench/agent.ts: createAgent + a scripted fakeModel asking for two
 * tool calls + two tools), five variants (the four compared, and `noop` as a reference):
 *   none        no handler (the baseline)
 *   noop        a handler whose callbacks do nothing, awaited like ours: what LangChain's own
 *               callback plumbing costs (a reference, not a goal)
 *   auditgraph  our AuditCallbackHandler with the real QueueTransport on the local Redis
 *   langfuse    @langfuse/langchain's CallbackHandler on OpenTelemetry (LangfuseSpanProcessor)
 *   langsmith   @langchain/core's LangChainTracer with a langsmith Client
 * The peers export to a local HTTP sink in this process (127.0.0.1), so they do their real
 * client-side work: serialisation, batching, HTTP.
 *
 * Measures:
 *   1. per callback: the callbacks of one real agent run are recorded, then replayed into each
 *      handler (fresh run ids per replay), each call timed as LangChain's consumeCallback
 *      makes it: `await handler.handleX(...args)`. p50/p99 in µs, p50 per callback kind,
 *      heap allocated per callback (needs --expose-gc), process CPU per callback including
 *      the handler's own export (flush) work;
 *   2. per agent run: wall time of `agent.invoke()` + `awaitAllCallbacks()`, the variants
 *      interleaved round by round (rotating order) so drift hits them all alike.
 *
 * Run: npm run bench (see bench/README.md). Counts: BENCH_RUNS, BENCH_WARMUP, BENCH_REPLAY,
 * BENCH_REPLAY_WARMUP, BENCH_HEAP, BENCH_VARIANTS (comma list), BENCH_REDIS_PORT.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { availableParallelism, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { randomUUID } from "node:crypto";
import { PerformanceObserver, performance } from "node:perf_hooks";
import { getHeapStatistics } from "node:v8";
import { BaseCallbackHandler } from "@langchain/core/callbacks/base";
import { awaitAllCallbacks } from "@langchain/core/callbacks/promises";
import { newEventId } from "@auditgraph/core";
import { BENCH_IDENTITY, EXPECTED_ANSWER_FRAGMENT, benchAgent, benchInput, benchMetadata } from "./agent.js";
import { startSink, type Sink } from "./sink.js";
import { runIfMain, stats, table, type Stats } from "./common.js";
export type { Stats } from "./common.js";

export type VariantName = "none" | "noop" | "auditgraph" | "langfuse" | "langsmith";
export const ALL_VARIANTS: readonly VariantName[] = ["none", "noop", "auditgraph", "langfuse", "langsmith"];
const PEERS: readonly VariantName[] = ["langfuse", "langsmith"];

export interface BenchOptions {
  /** Measured agent runs per variant. */
  runs: number;
  /** Agent runs per variant before measuring. */
  warmup: number;
  /** Replays of the recorded run's callbacks per handler (measured). */
  replay: number;
  replayWarmup: number;
  /** Replays used for the heap figure (only with --expose-gc). */
  heap: number;
  variants: readonly VariantName[];
  redis: { host: "127.0.0.1"; port: number };
  log: (line: string) => void;
}

export interface VariantResult {
  name: VariantName;
  /** What ran, with its version. */
  label: string;
  ran: boolean;
  /** Why it did not run. */
  skipped?: string;
  /** Per callback, µs (handlers only). */
  perCallbackUs?: Stats;
  /** p50 µs by callback kind (handlers only). */
  perKindUs?: Record<string, number>;
  /** Process CPU µs per callback over the replays including the handler's flush/export (handlers only). */
  cpuUsPerCallback?: number;
  /** Heap bytes allocated per callback; null when not measured (see heapNote). */
  heapBytesPerCallback?: number | null;
  /** Agent run wall time, ms (invoke + awaitAllCallbacks). */
  wallMs?: Stats;
  /** Median over rounds of (this variant's run / the baseline's run in the same round). */
  pairedRatioToNone?: number;
  /** Evidence the variant really exported (Redis jobs, sink requests). */
  exported?: string;
}

export interface BenchResult {
  options: Omit<BenchOptions, "log">;
  environment: Record<string, string>;
  callbacksPerRun: number;
  callbackKinds: Record<string, number>;
  heapNote: string;
  variants: VariantResult[];
  /** peer per-callback p50 / ours per-callback p50, by peer. */
  peerOverOurs: Partial<Record<VariantName, number>>;
  /** ours agent wall p50 / no-handler agent wall p50. */
  oursOverNone?: number;
  goals: { name: string; holds: boolean | undefined; detail: string }[];
}

// ---------------------------------------------------------------------------------------------
// statistics

const median = (samples: number[]) => stats(samples).p50;

// ---------------------------------------------------------------------------------------------
// variants

/** Every callback a LangChain CallbackManager can call on a handler. */
const HANDLE_METHODS = [
  "handleChainStart",
  "handleChainEnd",
  "handleChainError",
  "handleLLMStart",
  "handleChatModelStart",
  "handleLLMNewToken",
  "handleLLMEnd",
  "handleLLMError",
  "handleToolStart",
  "handleToolEnd",
  "handleToolError",
  "handleRetrieverStart",
  "handleRetrieverEnd",
  "handleRetrieverError",
  "handleAgentAction",
  "handleAgentEnd",
  "handleText",
  "handleCustomEvent",
] as const;

interface Call {
  method: string;
  args: unknown[];
}

type Handle = (...args: unknown[]) => unknown;

interface Instance {
  label: string;
  handler: BaseCallbackHandler | undefined;
  /** Pushes out what the handler holds (untimed, after every run). */
  flush(): Promise<void>;
  exported(): Promise<string>;
  close(): Promise<void>;
}

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");

async function versionOf(pkg: string): Promise<string> {
  try {
    const json = JSON.parse(await readFile(join(ROOT, "node_modules", pkg, "package.json"), "utf8")) as { version?: string };
    return json.version ?? "?";
  } catch {
    return "?";
  }
}

const kb = (bytes: number) => `${(bytes / 1024).toFixed(0)} KB`;

async function makeVariant(name: VariantName, sink: Sink, options: BenchOptions): Promise<Instance> {
  switch (name) {
    case "none":
      return {
        label: "no handler (baseline)",
        handler: undefined,
        flush: async () => {},
        exported: async () => "-",
        close: async () => {},
      };

    case "noop": {
      class Noop extends BaseCallbackHandler {
        name = "bench-noop";
      }
      // Awaited, as ours is (`_awaitHandler: true`): the same path through the CallbackManager.
      const handler = new Noop({ _awaitHandler: true });
      for (const method of HANDLE_METHODS) (handler as unknown as Record<string, Handle>)[method] = () => undefined;
      return {
        label: "do-nothing handler, awaited like ours (LangChain's callback plumbing only)",
        handler,
        flush: async () => {},
        exported: async () => "-",
        close: async () => {},
      };
    }

    case "auditgraph": {
      const { AuditCallbackHandler, QueueTransport } = await import("@auditgraph/langchain");
      const { Queue } = await import("bullmq");
      const connection = { host: options.redis.host, port: options.redis.port };
      // A queue and spool of this bench run's own; both are removed at the end.
      const queueName = `auditgraph-bench-${randomUUID().slice(0, 8)}`;
      const spoolDir = await mkdtemp(join(tmpdir(), "auditgraph-bench-spool-"));
      const transport = new QueueTransport({ connection, queueName, spoolDir });
      const handler = new AuditCallbackHandler({ agent: BENCH_IDENTITY.agent }, transport);
      const admin = new Queue(queueName, { connection });
      return {
        label: `auditgraph ${await versionOf("@auditgraph/langchain")} (QueueTransport -> Redis, queue ${queueName})`,
        handler,
        flush: () => handler.flush(),
        exported: async () => {
          const counts = await admin.getJobCounts("waiting", "prioritized", "delayed", "active", "completed", "failed");
          const jobs = Object.values(counts).reduce((s, n) => s + n, 0);
          const metrics = (transport as unknown as { metrics?: { queued?: number; spooled?: number } }).metrics;
          const events = metrics?.queued !== undefined ? `, ${metrics.queued} events queued, ${metrics.spooled ?? 0} spooled` : "";
          return `${jobs} BullMQ jobs in Redis${events}`;
        },
        close: async () => {
          try {
            await handler.close();
          } finally {
            await admin
              .obliterate({ force: true })
              .catch((error: unknown) => options.log(`  (could not obliterate ${queueName}: ${(error as Error).message})`));
            await admin.close();
            await rm(spoolDir, { recursive: true, force: true });
          }
        },
      };
    }

    case "langfuse": {
      const [{ CallbackHandler }, { LangfuseSpanProcessor }, { setLangfuseTracerProvider }, { BasicTracerProvider }] = await Promise.all([
        import("@langfuse/langchain"),
        import("@langfuse/otel"),
        import("@langfuse/tracing"),
        import("@opentelemetry/sdk-trace-base"),
      ]);
      // Defaults everywhere (batched export, media scan on) except where the data goes.
      const processor = new LangfuseSpanProcessor({ publicKey: "pk-lf-bench", secretKey: "sk-lf-bench", baseUrl: sink.url });
      const provider = new BasicTracerProvider({ spanProcessors: [processor] });
      setLangfuseTracerProvider(provider);
      const handler = new CallbackHandler({ userId: BENCH_IDENTITY.user.id, sessionId: "bench" });
      return {
        label: `@langfuse/langchain ${await versionOf("@langfuse/langchain")} (+ @langfuse/otel ${await versionOf("@langfuse/otel")}, OTel sdk-trace-base ${await versionOf("@opentelemetry/sdk-trace-base")})`,
        handler,
        flush: () => processor.forceFlush(),
        exported: async () => {
          const c = sink.count(/otel/);
          return `${c.requests} OTLP requests, ${kb(c.bytes)} to the sink`;
        },
        close: async () => {
          await provider.shutdown();
          setLangfuseTracerProvider(null);
        },
      };
    }

    case "langsmith": {
      const [{ Client }, { LangChainTracer }] = await Promise.all([import("langsmith"), import("@langchain/core/tracers/tracer_langchain")]);
      const client = new Client({ apiUrl: sink.url, apiKey: "bench", autoBatchTracing: true });
      const handler = new LangChainTracer({ client, projectName: "auditgraph-bench" });
      return {
        label: `langsmith ${await versionOf("langsmith")} LangChainTracer (@langchain/core ${await versionOf("@langchain/core")})`,
        handler,
        // flush() sends the auto-batch queue now; awaitPendingTraceBatches() alone would wait
        // for the client's 250 ms aggregation timer.
        flush: async () => {
          await client.flush();
          await client.awaitPendingTraceBatches();
        },
        exported: async () => {
          const c = sink.count(/runs/);
          return `${c.requests} run-ingest requests, ${kb(c.bytes)} to the sink`;
        },
        close: async () => {
          await client.awaitPendingTraceBatches();
          client.cleanup();
        },
      };
    }
  }
}

// ---------------------------------------------------------------------------------------------
// recording and replaying callbacks

/** The callbacks of one real agent run, in order, with the arguments LangChain passed. */
async function recordRun(): Promise<Call[]> {
  const calls: Call[] = [];
  class Recorder extends BaseCallbackHandler {
    name = "bench-recorder";
  }
  // Awaited like ours: recorded in exactly the order the manager makes the calls.
  const recorder = new Recorder({ _awaitHandler: true });
  for (const method of HANDLE_METHODS) {
    (recorder as unknown as Record<string, Handle>)[method] = (...args: unknown[]) => {
      calls.push({ method, args });
    };
  }
  const out = await benchAgent().invoke(benchInput(), { callbacks: [recorder], metadata: benchMetadata("bench-record") });
  await awaitAllCallbacks();
  checkAnswer(out);
  return calls;
}

/** The run with fresh run ids (UUIDv7, as LangChain makes them): each replay is a new trace. */
function withFreshRunIds(calls: Call[]): Call[] {
  const ids = new Map<string, string>();
  for (const call of calls) {
    const runId = call.method.endsWith("Start") ? call.args[2] : undefined;
    if (typeof runId === "string") ids.set(runId, newEventId());
  }
  return calls.map((call) => ({ method: call.method, args: call.args.map((a) => (typeof a === "string" ? (ids.get(a) ?? a) : a)) }));
}

const kindOf = (method: string) => method.replace(/^handle/, "");

function bound(handler: BaseCallbackHandler, calls: Call[]): { method: string; fn: Handle | undefined }[] {
  return calls.map(({ method }) => {
    const fn = (handler as unknown as Record<string, unknown>)[method];
    return { method, fn: typeof fn === "function" ? (fn as Handle).bind(handler) : undefined };
  });
}

const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

interface ReplayTiming {
  perCallback: number[];
  perKind: Map<string, number[]>;
  cpuUsPerCallback: number;
}

/**
 * Replays the recorded run `warmup + iterations` times into each handler, the handlers taking
 * turns replay by replay (rotating order), so drift or a noisy neighbour hits them all alike.
 * After each replay the handler is flushed (untimed for the per-callback figure, as after each
 * agent run; counted in its CPU figure) and the event loop turns once.
 */
async function replayTiming(
  instances: [VariantName, Instance][],
  recording: Call[],
  iterations: number,
  warmup: number,
): Promise<Map<VariantName, ReplayTiming>> {
  const states = instances.map(([name, instance]) => ({
    name,
    instance,
    methods: bound(instance.handler!, recording),
    perCallback: [] as number[],
    perKind: new Map<string, number[]>(),
    cpu: 0,
    counted: 0,
  }));
  for (let i = 0; i < warmup + iterations; i += 1) {
    const measured = i >= warmup;
    for (let k = 0; k < states.length; k += 1) {
      const s = states[(i + k) % states.length]!;
      const calls = withFreshRunIds(recording);
      const cpu0 = process.cpuUsage();
      for (let c = 0; c < calls.length; c += 1) {
        const fn = s.methods[c]!.fn;
        if (!fn) continue;
        const args = calls[c]!.args;
        const t0 = performance.now();
        await fn(...args);
        const us = (performance.now() - t0) * 1000;
        if (measured) {
          s.perCallback.push(us);
          const kind = kindOf(s.methods[c]!.method);
          let list = s.perKind.get(kind);
          if (!list) s.perKind.set(kind, (list = []));
          list.push(us);
        }
      }
      await s.instance.flush();
      await tick();
      if (measured) {
        const used = process.cpuUsage(cpu0);
        s.cpu += used.user + used.system;
        s.counted += calls.length;
      }
    }
  }
  return new Map(states.map((s) => [s.name, { perCallback: s.perCallback, perKind: s.perKind, cpuUsPerCallback: s.counted ? s.cpu / s.counted : NaN }]));
}

type Gc = (options?: { type?: "major" | "minor"; execution?: "sync" | "async" }) => void;

/**
 * Heap bytes allocated per callback: a minor GC empties the young generation, one replay
 * runs, and the growth of the used heap divided by its callbacks is what it allocated. A
 * replay during which V8 collected on its own is not counted (its growth understates).
 */
async function replayHeap(instance: Instance, recording: Call[], iterations: number): Promise<number | null> {
  const gc = (globalThis as { gc?: Gc }).gc;
  if (!gc || iterations <= 0) return null;
  const handler = instance.handler!;
  const methods = bound(handler, recording);
  const gcTimes: number[] = [];
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) gcTimes.push(entry.startTime);
  });
  observer.observe({ entryTypes: ["gc"] });
  const windows: { start: number; end: number; perCallback: number }[] = [];
  try {
    for (let i = 0; i < iterations; i += 1) {
      const calls = withFreshRunIds(recording);
      await instance.flush();
      await tick();
      gc({ type: "minor", execution: "sync" });
      const start = performance.now();
      const before = getHeapStatistics().used_heap_size;
      for (let c = 0; c < calls.length; c += 1) {
        const fn = methods[c]!.fn;
        if (fn) await fn(...calls[c]!.args);
      }
      const after = getHeapStatistics().used_heap_size;
      windows.push({ start, end: performance.now(), perCallback: (after - before) / calls.length });
    }
    await instance.flush();
    await tick();
    await tick();
  } finally {
    observer.disconnect();
  }
  const clean = windows.filter((w) => !gcTimes.some((t) => t >= w.start && t <= w.end)).map((w) => w.perCallback);
  return clean.length ? median(clean) : null;
}

// ---------------------------------------------------------------------------------------------
// agent runs

function checkAnswer(out: { messages: { text: string }[] }): void {
  const text = out.messages.at(-1)?.text ?? "";
  if (!text.includes(EXPECTED_ANSWER_FRAGMENT)) throw new Error(`the bench agent did not finish its script; last message: ${JSON.stringify(text)}`);
}

async function agentRun(instance: Instance, round: number): Promise<number> {
  const agent = benchAgent(); // a new model (its response queue is used up by one run), outside the timing
  const config = { callbacks: instance.handler ? [instance.handler] : [], metadata: benchMetadata(`bench-${round}`) };
  const t0 = performance.now();
  const out = await agent.invoke(benchInput(), config);
  await awaitAllCallbacks();
  const ms = performance.now() - t0;
  checkAnswer(out);
  // Untimed: what this variant still holds goes out now, not inside another variant's run.
  await instance.flush();
  return ms;
}

// ---------------------------------------------------------------------------------------------
// the benchmark

const intEnv = (name: string, fallback: number, env: NodeJS.ProcessEnv): number => {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a whole number >= 0, got ${JSON.stringify(raw)}`);
  return n;
};

export function optionsFromEnv(env: NodeJS.ProcessEnv = process.env): BenchOptions {
  const variants = (env.BENCH_VARIANTS ?? ALL_VARIANTS.join(","))
    .split(",")
    .map((v) => v.trim())
    .filter(Boolean);
  for (const v of variants) {
    if (!ALL_VARIANTS.includes(v as VariantName)) throw new Error(`BENCH_VARIANTS: unknown variant ${JSON.stringify(v)} (known: ${ALL_VARIANTS.join(", ")})`);
  }
  return {
    runs: Math.max(1, intEnv("BENCH_RUNS", 400, env)),
    warmup: intEnv("BENCH_WARMUP", 30, env),
    replay: Math.max(1, intEnv("BENCH_REPLAY", 500, env)),
    replayWarmup: intEnv("BENCH_REPLAY_WARMUP", 50, env),
    heap: intEnv("BENCH_HEAP", 100, env),
    variants: variants as VariantName[],
    redis: { host: "127.0.0.1", port: intEnv("BENCH_REDIS_PORT", 6379, env) },
    log: (line) => console.log(line),
  };
}

export async function runBenchmark(partial: Partial<BenchOptions> = {}): Promise<BenchResult> {
  const options: BenchOptions = { ...optionsFromEnv({}), ...partial };
  const { log } = options;
  const wanted = ALL_VARIANTS.filter((v) => options.variants.includes(v) || v === "none"); // the baseline always runs
  const sink = await startSink();
  const instances = new Map<VariantName, Instance>();
  const results = new Map<VariantName, VariantResult>();
  try {
    for (const name of wanted) {
      try {
        const instance = await makeVariant(name, sink, options);
        instances.set(name, instance);
        results.set(name, { name, label: instance.label, ran: true });
      } catch (error) {
        const reason = (error as Error).message.split("\n")[0] ?? String(error);
        results.set(name, { name, label: name, ran: false, skipped: reason });
        log(`  ${name}: could not be set up, left out: ${reason}`);
      }
    }
    const running = wanted.filter((v) => instances.has(v));
    const t0 = performance.now();
    const elapsed = () => `${((performance.now() - t0) / 1000).toFixed(1)} s`;

    // 1. the callbacks of one real run
    const recording = await recordRun();
    const callbackKinds: Record<string, number> = {};
    for (const call of recording) callbackKinds[kindOf(call.method)] = (callbackKinds[kindOf(call.method)] ?? 0) + 1;
    log(
      `  recorded one agent run: ${recording.length} callbacks (${Object.entries(callbackKinds)
        .map(([k, n]) => `${k} ${n}`)
        .join(", ")})`,
    );

    // 2. agent wall time, variants interleaved, rotating the order every round
    log(`  agent runs: ${options.warmup} warm-up + ${options.runs} measured rounds x ${running.length} variants ...`);
    const wall = new Map<VariantName, number[]>(running.map((v) => [v, []]));
    const rounds: Map<VariantName, number>[] = [];
    for (let round = 0; round < options.warmup + options.runs; round += 1) {
      const inRound = new Map<VariantName, number>();
      for (let k = 0; k < running.length; k += 1) {
        const name = running[(round + k) % running.length]!;
        const ms = await agentRun(instances.get(name)!, round);
        if (round >= options.warmup) {
          wall.get(name)!.push(ms);
          inRound.set(name, ms);
        }
      }
      if (round >= options.warmup) rounds.push(inRound);
    }
    log(`  agent runs done (${elapsed()})`);
    for (const name of running) {
      const r = results.get(name)!;
      r.wallMs = stats(wall.get(name)!);
      r.pairedRatioToNone = median(rounds.map((m) => m.get(name)! / m.get("none")!));
    }

    // 3. per callback, by replay
    const gcAvailable = typeof (globalThis as { gc?: unknown }).gc === "function";
    const heapNote = gcAvailable
      ? `heap: median over ${options.heap} replays of (used-heap growth / callbacks) after a minor GC; replays with a GC inside are not counted`
      : "heap: not measured (run node with --expose-gc, as `npm run bench` does)";
    const withHandler = running.filter((v) => instances.get(v)!.handler).map((v): [VariantName, Instance] => [v, instances.get(v)!]);
    log(
      `  replaying the ${recording.length} callbacks into ${withHandler.map(([v]) => v).join(", ")} in turn: ${options.replayWarmup} warm-up + ${options.replay} measured each ...`,
    );
    const timings = await replayTiming(withHandler, recording, options.replay, options.replayWarmup);
    log(`  replays done (${elapsed()})`);
    for (const [name, instance] of withHandler) {
      const timing = timings.get(name)!;
      const r = results.get(name)!;
      r.perCallbackUs = stats(timing.perCallback);
      r.perKindUs = Object.fromEntries([...timing.perKind].map(([kind, list]) => [kind, median(list)]));
      r.cpuUsPerCallback = timing.cpuUsPerCallback;
      r.heapBytesPerCallback = gcAvailable ? await replayHeap(instance, recording, options.heap) : null;
    }
    if (gcAvailable) log(`  heap replays done (${elapsed()})`);

    for (const name of running) {
      const instance = instances.get(name)!;
      await instance.flush();
      results.get(name)!.exported = await instance.exported();
    }

    // ratios and goals
    const ours = results.get("auditgraph");
    const none = results.get("none");
    const peerOverOurs: BenchResult["peerOverOurs"] = {};
    for (const peer of PEERS) {
      const p = results.get(peer);
      if (ours?.perCallbackUs && p?.perCallbackUs) peerOverOurs[peer] = p.perCallbackUs.p50 / ours.perCallbackUs.p50;
    }
    const oursOverNone = ours?.wallMs && none?.wallMs ? ours.wallMs.p50 / none.wallMs.p50 : undefined;
    const peerP50s = PEERS.map((p) => results.get(p)?.perCallbackUs?.p50).filter((v): v is number => v !== undefined);
    const bestPeer = peerP50s.length ? Math.min(...peerP50s) : undefined;
    const goals: BenchResult["goals"] = [
      {
        name: "ours per-callback p50 <= 1/3 of the best peer's",
        holds: ours?.perCallbackUs && bestPeer !== undefined ? ours.perCallbackUs.p50 <= bestPeer / 3 : undefined,
        detail:
          ours?.perCallbackUs && bestPeer !== undefined
            ? `ours ${fmtUs(ours.perCallbackUs.p50)} µs vs best peer ${fmtUs(bestPeer)} µs (limit ${fmtUs(bestPeer / 3)} µs)`
            : "not measured (ours or every peer missing)",
      },
      {
        name: "agent wall time with ours within 5% of no handler",
        holds: oursOverNone !== undefined ? oursOverNone <= 1.05 : undefined,
        detail:
          oursOverNone !== undefined ? `p50 ratio ${oursOverNone.toFixed(3)} (paired per-round median ${ours!.pairedRatioToNone!.toFixed(3)})` : "not measured",
      },
    ];

    return {
      options: {
        runs: options.runs,
        warmup: options.warmup,
        replay: options.replay,
        replayWarmup: options.replayWarmup,
        heap: options.heap,
        variants: options.variants,
        redis: options.redis,
      },
      environment: {
        node: process.version,
        cpus: String(availableParallelism()),
        LANGCHAIN_CALLBACKS_BACKGROUND: process.env.LANGCHAIN_CALLBACKS_BACKGROUND ?? "(unset: peers run on LangChain's background queue)",
        gc: gcAvailable ? "exposed" : "not exposed",
      },
      callbacksPerRun: recording.length,
      callbackKinds,
      heapNote,
      variants: wanted.map((v) => results.get(v)!),
      peerOverOurs,
      oursOverNone,
      goals,
    };
  } finally {
    for (const [name, instance] of instances) {
      await instance.close().catch((error: unknown) => log(`  closing ${name}: ${(error as Error).message}`));
    }
    if (process.env.BENCH_DEBUG_SINK) log(`  sink routes: ${JSON.stringify([...sink.stats.byRoute])}`);
    await sink.close();
  }
}

// ---------------------------------------------------------------------------------------------
// report

const fmtUs = (us: number) => (us >= 100 ? us.toFixed(0) : us >= 10 ? us.toFixed(1) : us.toFixed(2));
const fmtMs = (ms: number) => ms.toFixed(2);

export function formatReport(result: BenchResult): string {
  const out: string[] = [];
  const o = result.options;
  out.push(
    `capture overhead: one agent run = createAgent + fakeModel (2 tool calls, 3 model turns) + 2 tools = ${result.callbacksPerRun} callbacks`,
    `node ${result.environment.node}, ${result.environment.cpus} cpus, runs ${o.runs} (+${o.warmup} warm-up) per variant, replays ${o.replay} (+${o.replayWarmup}), heap replays ${o.heap}, gc ${result.environment.gc}`,
    `LANGCHAIN_CALLBACKS_BACKGROUND=${result.environment.LANGCHAIN_CALLBACKS_BACKGROUND}`,
    "",
  );
  const ran = result.variants.filter((v) => v.ran);
  out.push(
    table(
      ["variant", "cb p50 µs", "cb p99 µs", "heap KB/cb", "CPU µs/cb +export", "run p50 ms", "run p99 ms", "run mean ms", "run / none"],
      ran.map((v) => [
        v.name,
        v.perCallbackUs ? fmtUs(v.perCallbackUs.p50) : "-",
        v.perCallbackUs ? fmtUs(v.perCallbackUs.p99) : "-",
        v.heapBytesPerCallback != null ? (v.heapBytesPerCallback / 1024).toFixed(1) : v.perCallbackUs ? "n/a" : "-",
        v.cpuUsPerCallback !== undefined ? fmtUs(v.cpuUsPerCallback) : "-",
        v.wallMs ? fmtMs(v.wallMs.p50) : "-",
        v.wallMs ? fmtMs(v.wallMs.p99) : "-",
        v.wallMs ? fmtMs(v.wallMs.mean) : "-",
        v.wallMs && result.variants[0]?.wallMs ? (v.wallMs.p50 / result.variants[0].wallMs.p50).toFixed(3) : "-",
      ]),
    ),
  );
  const kinds = Object.keys(result.callbackKinds);
  const handlers = ran.filter((v) => v.perKindUs);
  if (handlers.length) {
    out.push("", "per-callback p50 µs by callback kind (count per run):");
    out.push(
      table(
        ["kind", ...handlers.map((v) => v.name)],
        kinds.map((k) => [`${k} (${result.callbackKinds[k]})`, ...handlers.map((v) => (v.perKindUs![k] !== undefined ? fmtUs(v.perKindUs![k]) : "—"))]),
      ),
    );
  }
  out.push("", "variants:");
  for (const v of result.variants) {
    out.push(v.ran ? `  ${v.name}: ${v.label}; exported: ${v.exported ?? "?"}` : `  ${v.name}: NOT RUN — ${v.skipped}`);
  }
  out.push("", "ratios:");
  for (const peer of PEERS) {
    const r = result.peerOverOurs[peer];
    out.push(`  ${peer} / ours, per-callback p50: ${r !== undefined ? `${r.toFixed(2)}x` : "n/a (not run)"}`);
  }
  out.push(`  ours / no handler, agent run p50: ${result.oursOverNone !== undefined ? result.oursOverNone.toFixed(3) : "n/a"}`);
  const noop = result.variants.find((v) => v.name === "noop")?.wallMs;
  const oursWall = result.variants.find((v) => v.name === "auditgraph")?.wallMs;
  if (noop && oursWall)
    out.push(`  ours / do-nothing handler, agent run p50: ${(oursWall.p50 / noop.p50).toFixed(3)} (LangChain's callback plumbing taken out)`);
  out.push("", "goals:");
  for (const g of result.goals) out.push(`  [${g.holds === undefined ? "n/a" : g.holds ? "HOLDS" : "MISSED"}] ${g.name}: ${g.detail}`);
  out.push(
    "",
    "notes: per callback = recorded callbacks of one real run replayed into the handler, each timed as `await handler.handleX(...)`",
    "  (sync work + any async continuation; export on timers/flush not included). CPU µs/cb +export = process CPU over the",
    "  replays including each replay's flush (batch serialisation, Redis/HTTP client, and the in-process sink's HTTP parsing).",
    `  run = agent.invoke() + awaitAllCallbacks(); each variant flushed untimed after its run. ${result.heapNote}.`,
  );
  return out.join("\n");
}

async function main(): Promise<void> {
  const options = optionsFromEnv();
  const started = performance.now();
  console.log("auditgraph bench: capture-overhead");
  const result = await runBenchmark(options);
  console.log("");
  console.log(formatReport(result));
  console.log(`\n(took ${((performance.now() - started) / 1000).toFixed(1)} s)`);
  if (process.env.BENCH_JSON) console.log(JSON.stringify(result, null, 2));
}

runIfMain(import.meta.url, main);
