/**
 * Tiles: what proofs from stored tlog tiles cost on a long stream, and what keeping the tiles
 * costs an append.
 *
 * One process, one temporary directory (removed at the end). Three parts:
 *   1. append: events/s of SegmentLedger with tiles (the default) against the same ledger with
 *      `tiles: false` (the baseline: no tiles, proofs rehash the stream), batches of 100 and
 *      1000 (one fsync per batch), ~1 KB events (bench/ledger.ts's), no signer; the two take
 *      turns round by round (rotating order) so drift hits them alike;
 *   2. build: a stream of N records (batches of 1000, a signer making a checkpoint per batch);
 *   3. proofs on it: `prove(eventId)` of random records on the writing ledger (which knows
 *      where each record is), the same from a fresh SegmentLedger (which finds the record by
 *      reading the stream first), `tileInclusionProof` alone (tiles read and hashed, nothing
 *      else), `proveConsistency` between random checkpoints, and the rehashing baseline
 *      (`tiles: false`) for a few proofs.
 * Goals: a proof under 10 ms (p50 of `prove` on the writing ledger), append with tiles at most
 * +10% per record over the baseline (batch 100).
 *
 * At 10M the proof stream is ~10 GB of segments in the temporary directory and the process
 * ~7 GB resident (the writer's index by event id, and the ids kept to pick from); building it
 * took 11 minutes on a 2-core machine.
 *
 * Run: npm run bench:tiles [-- --records <n>]. Counts: --records or BENCH_TILES_N (default 10,000,000),
 * BENCH_TILES_PROOFS, BENCH_TILES_ROUNDS, BENCH_TILES_BATCHES_PER_ROUND, BENCH_TILES_BASELINE_PROOFS.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { CheckpointSigner, SegmentLedger, TileReader, generateSigningKey, tileInclusionProof, verifyInclusionBundle } from "@auditgraph/ledger";
import { benchEvent } from "./ledger.js";
import { benchMain, stats, table, type Stats } from "./common.js";

export interface TilesBenchOptions {
  /** Records in the proof stream. */
  records: number;
  /** Random records proven per kind. */
  proofs: number;
  /** Proofs made by rehashing the stream (the baseline; each reads and hashes all of it). */
  baselineProofs: number;
  /** Rounds of the append part, and batches per variant per round. */
  rounds: number;
  batchesPerRound: number;
  log: (line: string) => void;
}

export interface AppendCell {
  batch: number;
  variant: "baseline" | "tiles";
  events: number;
  seconds: number;
  usPerRecord: number;
  /** tiles' cost per record / baseline's, minus 1 (0.05: 5% more). */
  overBaseline?: number;
}

export interface TilesBenchResult {
  options: Omit<TilesBenchOptions, "log">;
  append: AppendCell[];
  buildSeconds: number;
  /** `prove` on the ledger that wrote the stream, ms. */
  proveMs: Stats;
  /** `prove` on a fresh ledger instance: finding the record by reading the stream, then the tiles, ms. */
  coldProveMs: Stats;
  /** Tiles alone: `tileInclusionProof` from a leaf index, ms. */
  tileProofMs: Stats;
  consistencyMs: Stats;
  /** `prove` with tiles off: the stream rehashed, ms. */
  baselineProveMs: Stats;
  goals: { name: string; holds: boolean; detail: string }[];
  seconds: number;
}

const ms = (from: number) => performance.now() - from;
const pick = <T>(list: readonly T[]) => list[Math.floor(Math.random() * list.length)]!;

async function appendPart(root: string, options: TilesBenchOptions): Promise<AppendCell[]> {
  const cells: AppendCell[] = [];
  const recordedAt = new Date().toISOString();
  let n = 0;
  for (const batch of [100, 1000]) {
    const ledgers = {
      baseline: new SegmentLedger(join(root, `append-baseline-${batch}`), { tiles: false }),
      tiles: new SegmentLedger(join(root, `append-tiles-${batch}`)),
    };
    const seconds = { baseline: 0, tiles: 0 };
    const events = { baseline: 0, tiles: 0 };
    // One warm-up batch each: the writer lease and the files.
    for (const v of ["baseline", "tiles"] as const)
      await ledgers[v].append(
        "s",
        Array.from({ length: batch }, () => benchEvent(n++)),
        recordedAt,
      );
    for (let round = 0; round < options.rounds; round++) {
      const order = round % 2 === 0 ? (["baseline", "tiles"] as const) : (["tiles", "baseline"] as const);
      for (const v of order) {
        const lists = Array.from({ length: options.batchesPerRound }, () => Array.from({ length: batch }, () => benchEvent(n++)));
        const start = performance.now();
        for (const list of lists) await ledgers[v].append("s", list, recordedAt);
        seconds[v] += ms(start) / 1000;
        events[v] += batch * lists.length;
      }
    }
    for (const v of ["baseline", "tiles"] as const) await ledgers[v].close();
    const us = (v: "baseline" | "tiles") => (seconds[v] / events[v]) * 1e6;
    cells.push({ batch, variant: "baseline", events: events.baseline, seconds: seconds.baseline, usPerRecord: us("baseline") });
    cells.push({
      batch,
      variant: "tiles",
      events: events.tiles,
      seconds: seconds.tiles,
      usPerRecord: us("tiles"),
      overBaseline: us("tiles") / us("baseline") - 1,
    });
    options.log(`append batch ${batch}: ${us("baseline").toFixed(1)} us/record without tiles, ${us("tiles").toFixed(1)} with`);
  }
  return cells;
}

export async function runTilesBenchmark(options: TilesBenchOptions): Promise<TilesBenchResult> {
  const started = performance.now();
  const root = await mkdtemp(join(tmpdir(), "bench-tiles-"));
  try {
    const append = await appendPart(root, options);

    const keys = generateSigningKey();
    const dir = join(root, "proofs");
    const ledger = new SegmentLedger(dir, { signer: new CheckpointSigner(keys.privateKeyPem) });
    const ids: string[] = [];
    const buildStart = performance.now();
    for (let n = 0; n < options.records; n += 1000) {
      const list = Array.from({ length: Math.min(1000, options.records - n) }, (_, i) => benchEvent(n + i));
      for (const e of list) ids.push(e.eventId);
      await ledger.append("s", list);
      if ((n / 1000) % 500 === 499) options.log(`built ${n + 1000} records (${(ms(buildStart) / 1000).toFixed(0)} s)`);
    }
    const buildSeconds = ms(buildStart) / 1000;

    const proveMs: number[] = [];
    for (let i = 0; i < options.proofs; i++) {
      const id = pick(ids);
      const start = performance.now();
      const bundle = await ledger.prove(id, { streamId: "s" });
      proveMs.push(ms(start));
      if (i < 5) verifyInclusionBundle(bundle, keys.publicKeyPem);
    }
    const latest = (await ledger.latestCheckpoint("s"))!;
    const { store } = await ledger.tiles("s");
    const tileProofMs: number[] = [];
    for (let i = 0; i < options.proofs; i++) {
      const start = performance.now();
      await tileInclusionProof(new TileReader(store), Math.floor(Math.random() * latest.treeSize), latest.treeSize);
      tileProofMs.push(ms(start));
    }
    const sizes = (await ledger.checkpoints("s")).map((c) => c.treeSize);
    const consistencyMs: number[] = [];
    for (let i = 0; i < Math.min(options.proofs, 50); i++) {
      const [a, b] = [pick(sizes), pick(sizes)].sort((x, y) => x - y);
      const start = performance.now();
      await ledger.proveConsistency("s", a!, b);
      consistencyMs.push(ms(start));
    }
    await ledger.close();
    const coldProveMs: number[] = [];
    for (let i = 0; i < Math.min(options.baselineProofs, 3); i++) {
      const start = performance.now();
      await new SegmentLedger(dir).prove(pick(ids), { streamId: "s" });
      coldProveMs.push(ms(start));
    }
    const baselineProveMs: number[] = [];
    for (let i = 0; i < options.baselineProofs; i++) {
      const start = performance.now();
      await new SegmentLedger(dir, { tiles: false }).prove(pick(ids), { streamId: "s" });
      baselineProveMs.push(ms(start));
    }

    const prove = stats(proveMs);
    const over = append.find((c) => c.batch === 100 && c.variant === "tiles")!.overBaseline!;
    return {
      options: {
        records: options.records,
        proofs: options.proofs,
        baselineProofs: options.baselineProofs,
        rounds: options.rounds,
        batchesPerRound: options.batchesPerRound,
      },
      append,
      buildSeconds,
      proveMs: prove,
      coldProveMs: stats(coldProveMs),
      tileProofMs: stats(tileProofMs),
      consistencyMs: stats(consistencyMs),
      baselineProveMs: stats(baselineProveMs),
      goals: [
        {
          name: `proof of a random record of ${options.records.toLocaleString("en")} under 10 ms`,
          holds: prove.p50 < 10,
          detail: `p50 ${prove.p50.toFixed(2)} ms, p99 ${prove.p99.toFixed(2)} ms`,
        },
        { name: "append with tiles at most +10% per record (batch 100)", holds: over <= 0.1, detail: `${(over * 100).toFixed(1)}%` },
      ],
      seconds: ms(started) / 1000,
    };
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

const f = (x: number) => (Number.isFinite(x) ? x.toFixed(x < 10 ? 2 : 1) : "-");
const row = (name: string, s: Stats) => [name, String(s.n), f(s.p50), f(s.p95), f(s.p99), f(s.max)];

export function formatReport(r: TilesBenchResult): string {
  const appendTable = table(
    ["append", "events", "us/record", "vs baseline"],
    r.append.map((c) => [
      `batch ${c.batch} ${c.variant === "tiles" ? "with tiles" : "baseline (no tiles)"}`,
      String(c.events),
      f(c.usPerRecord),
      c.overBaseline === undefined ? "" : `${c.overBaseline >= 0 ? "+" : ""}${(c.overBaseline * 100).toFixed(1)}%`,
    ]),
  );
  const proofTable = table(
    [`proofs, stream of ${r.options.records.toLocaleString("en")} (built in ${r.buildSeconds.toFixed(0)} s)`, "n", "p50 ms", "p95 ms", "p99 ms", "max ms"],
    [
      row("prove(eventId), writing ledger", r.proveMs),
      row("tileInclusionProof (tiles only)", r.tileProofMs),
      row("proveConsistency", r.consistencyMs),
      row("prove(eventId), fresh ledger (finds it by reading)", r.coldProveMs),
      row("baseline: prove with tiles off (rehash)", r.baselineProveMs),
    ],
  );
  const ratio = r.baselineProveMs.p50 / r.proveMs.p50;
  const goals = r.goals.map((g) => `  ${g.holds ? "holds" : "MISSED"}  ${g.name}: ${g.detail}`).join("\n");
  return `${appendTable}\n\n${proofTable}\n\nprove vs rehash baseline (p50): ${f(ratio)}x faster\n\ngoals:\n${goals}`;
}

const num = (name: string, fallback: number) => (process.env[name] ? Number(process.env[name]) : fallback);

/** `--records <n>` (the proof stream's size; BENCH_TILES_N too); any other flag is refused, naming it. */
function recordsFlag(args: string[]): number | undefined {
  let records: number | undefined;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const [flag, inline] = arg.split("=", 2) as [string, string | undefined];
    if (flag !== "--records") throw new Error(`bench/tiles: unknown flag ${JSON.stringify(arg)} (known: --records <n>)`);
    const value = inline ?? args[++i];
    records = Number(value?.replace(/_/g, ""));
    if (!Number.isSafeInteger(records) || records < 1) throw new Error(`bench/tiles: --records must be a positive integer, got ${JSON.stringify(value)}`);
  }
  return records;
}

benchMain(import.meta.url, "tiles (proofs from stored tlog tiles)", {
  loadAverage: true,
  options: (): TilesBenchOptions => ({
    records: recordsFlag(process.argv.slice(2)) ?? num("BENCH_TILES_N", 10_000_000),
    proofs: num("BENCH_TILES_PROOFS", 200),
    baselineProofs: num("BENCH_TILES_BASELINE_PROOFS", 2),
    rounds: num("BENCH_TILES_ROUNDS", 6),
    batchesPerRound: num("BENCH_TILES_BATCHES_PER_ROUND", 50),
    log: (line) => console.log(line),
  }),
  run: runTilesBenchmark,
  format: formatReport,
});
