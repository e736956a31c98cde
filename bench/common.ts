import { loadavg } from "node:os";
import { pathToFileURL } from "node:url";

/** A plain-text table: the first column left-aligned, the rest right-aligned. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ");
  return [line(header), widths.map((w) => "-".repeat(w)).join("  "), ...rows.map(line)].join("\n");
}

/**
 * A bench's command line, run when `url` is the script node was started with: its options from
 * the environment, a title line (with the load average when `loadAverage`), the report, the time
 * it took, and the whole result as JSON with BENCH_JSON.
 */
export function benchMain<O, R extends { seconds: number }>(
  url: string,
  name: string,
  bench: { options: () => O; run: (options: O) => Promise<R>; format: (result: R) => string; loadAverage?: boolean },
): void {
  runIfMain(url, async () => {
    const options = bench.options();
    const load = bench.loadAverage
      ? ` (load average ${loadavg()
          .map((l) => l.toFixed(2))
          .join(" ")})`
      : "";
    console.log(`auditgraph bench: ${name}${load}`);
    const result = await bench.run(options);
    console.log("");
    console.log(bench.format(result));
    console.log(`\n(took ${result.seconds.toFixed(1)} s)`);
    if (process.env.BENCH_JSON) console.log(JSON.stringify(result, null, 2));
  });
}

/** Runs `main` when `url` is the script node was started with (not when a test imports it). */
export function runIfMain(url: string, main: () => Promise<void>): void {
  if (!process.argv[1] || url !== pathToFileURL(process.argv[1]).href) return;
  main().then(
    () => process.exit(0),
    (error: unknown) => {
      console.error(error);
      process.exit(1);
    },
  );
}

export interface Stats {
  n: number;
  p50: number;
  p95: number;
  p99: number;
  mean: number;
  min: number;
  max: number;
}

/** Order statistics of a sample (nearest rank); NaN everywhere for an empty one. */
export function stats(samples: number[]): Stats {
  if (samples.length === 0) return { n: 0, p50: NaN, p95: NaN, p99: NaN, mean: NaN, min: NaN, max: NaN };
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
  return {
    n: sorted.length,
    p50: at(0.5),
    p95: at(0.95),
    p99: at(0.99),
    mean: sorted.reduce((s, v) => s + v, 0) / sorted.length,
    min: sorted[0]!,
    max: sorted.at(-1)!,
  };
}

/** A whole-number setting from the environment (`1_000_000` reads too); refused, named, below `min`. */
export const numEnv = (name: string, fallback: number, env: NodeJS.ProcessEnv, min = 0): number => {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw.replaceAll("_", ""));
  if (!Number.isInteger(n) || n < min) throw new Error(`${name} must be a whole number >= ${min}, got ${JSON.stringify(raw)}`);
  return n;
};
