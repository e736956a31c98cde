/**
 * Options of bench/deployment.ts: each one a flag (`--seconds 30`) or a variable
 * (`BENCH_DEPLOY_SECONDS=30`); the flag wins. Unknown flags and variables are refused, named.
 */
import { parseArgs } from "node:util";

export type Layout = "one" | "many";

export interface DeploymentBenchOptions {
  /** Worker process counts, one scenario each per layout. */
  workers: number[];
  /** `one`: one tenant over `shards` shards; `many`: `tenants` tenants, one shard each. */
  layouts: Layout[];
  /** Seconds of load per scenario. */
  seconds: number;
  agentProcesses: number;
  /** Concurrent agent loops per agent process. */
  loops: number;
  /** The fake model's delay per call: uniform in [min, max] ms. */
  modelMinMs: number;
  modelMaxMs: number;
  /** AUDITGRAPH_SHARDS of the one-tenant layout. */
  shards: number;
  /** Tenants of the many-tenant layout. */
  tenants: number;
  /** One event in this many is sampled for the lags. */
  sampleEvery: number;
  /** Poll interval of the ledger and the graph cursors (ms): it bounds the graph lag's error. */
  pollMs: number;
  /** Longest wait after the load for the ledger and the graph to hold everything (ms). */
  drainTimeoutMs: number;
  /** `--concurrency` of each worker. */
  workerConcurrency: number;
  log: (line: string) => void;
}

type Parse = (raw: string, name: string) => unknown;
const whole =
  (min: number): Parse =>
  (raw, name) => {
    const n = Number(raw.replaceAll("_", ""));
    if (!Number.isInteger(n) || n < min) throw new Error(`${name} must be a whole number >= ${min}, got ${JSON.stringify(raw)}`);
    return n;
  };
const list =
  <T>(item: (s: string) => T | undefined, what: string): Parse =>
  (raw, name) => {
    const out = raw.split(",").map((s) => item(s.trim()));
    if (out.length === 0 || out.some((v) => v === undefined)) throw new Error(`${name} must be a comma list of ${what}, got ${JSON.stringify(raw)}`);
    return out;
  };
const range: Parse = (raw, name) => {
  const m = /^(\d+)-(\d+)$/.exec(raw.trim());
  if (!m || Number(m[1]) > Number(m[2])) throw new Error(`${name} must be min-max in ms (e.g. 200-800), got ${JSON.stringify(raw)}`);
  return [Number(m[1]), Number(m[2])];
};

/** flag -> [default, parser]; the variable is BENCH_DEPLOY_ + the flag in upper snake case. */
const OPTIONS: Record<string, [string, Parse]> = {
  workers: ["1,2,4", list((s) => (/^[1-9]\d*$/.test(s) ? Number(s) : undefined), "worker counts >= 1")],
  layouts: ["one,many", list((s) => (s === "one" || s === "many" ? s : undefined), "one | many")],
  seconds: ["30", whole(1)],
  "agent-processes": ["2", whole(1)],
  loops: ["300", whole(1)],
  "model-ms": ["200-800", range],
  shards: ["8", whole(1)],
  tenants: ["8", whole(1)],
  "sample-every": ["20", whole(1)],
  "poll-ms": ["100", whole(10)],
  "drain-seconds": ["60", whole(1)],
  "worker-concurrency": ["1", whole(1)],
};
const envName = (flag: string) => `BENCH_DEPLOY_${flag.toUpperCase().replaceAll("-", "_")}`;

export function optionsFromArgs(args: string[], env: NodeJS.ProcessEnv): DeploymentBenchOptions {
  const known = new Set(Object.keys(OPTIONS).map(envName));
  const unknown = Object.keys(env).filter((k) => k.startsWith("BENCH_DEPLOY_") && k !== "BENCH_DEPLOY_CHILD" && !known.has(k));
  if (unknown.length > 0) throw new Error(`unknown variable ${unknown.join(", ")} (known: ${[...known].join(", ")})`);
  const { values } = parseArgs({ args, options: Object.fromEntries(Object.keys(OPTIONS).map((k) => [k, { type: "string" as const }])), strict: true });
  const v: Record<string, unknown> = {};
  for (const [flag, [fallback, parse]] of Object.entries(OPTIONS)) {
    const given = values[flag] as string | undefined;
    v[flag] = parse(given ?? (env[envName(flag)] || fallback), given !== undefined ? `--${flag}` : envName(flag));
  }
  const [modelMinMs, modelMaxMs] = v["model-ms"] as [number, number];
  return {
    workers: v.workers as number[],
    layouts: v.layouts as Layout[],
    seconds: v.seconds as number,
    agentProcesses: v["agent-processes"] as number,
    loops: v.loops as number,
    modelMinMs,
    modelMaxMs,
    shards: v.shards as number,
    tenants: v.tenants as number,
    sampleEvery: v["sample-every"] as number,
    pollMs: v["poll-ms"] as number,
    drainTimeoutMs: (v["drain-seconds"] as number) * 1000,
    workerConcurrency: v["worker-concurrency"] as number,
    log: (line) => console.log(line),
  };
}
