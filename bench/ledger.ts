/**
 * Ledger throughput: what the tamper-evident ledger costs over writing the same bytes to a file.
 *
 * One process, one temporary directory (removed at the end). Four parts:
 *   1. append: events/s with batches of 1, 100 and 1000 (one fsync per batch) for
 *        plain           open('a') + write + fsync + close of the same canonical-JSON record
 *                        bytes per batch (what SegmentLedger does per batch, nothing else):
 *                        the baseline
 *        ledger          SegmentLedger without a signer (the writer lease, taken at the first
 *                        batch and kept; per record seal + canonical JSON + hash chain + Merkle
 *                        leaf; the same write + fsync on the segment it keeps open)
 *        ledger+signer   SegmentLedger with a CheckpointSigner: also a signed checkpoint per batch
 *      taking turns round by round (rotating order) so drift hits them alike;
 *   2. verify: events/s of SegmentLedger.verify over one stream of N records (built by appending
 *      batches of 1000, a signer making a checkpoint every N/C records), records only, with the
 *      checkpoint roots, and with roots + Ed25519 signatures; single core (process CPU is shown);
 *   3. signed append on a long stream: batches of 100 with a signer on top of the verify stream,
 *      to see whether a checkpoint's cost grows with the stream (part 1 starts every stream empty);
 *   4. inclusion proof in a tree of 1M leaves (in memory, leafHash): proof size, time to make one
 *      (inclusionProof) and to check one (verifyInclusion), over random indices.
 * Then whether the goals hold: append at batch 100 >= 50% of the plain append; verify > 100,000
 * events/s on one core.
 *
 * Run: npm run bench:ledger (see bench/README.md). Counts: BENCH_SCALE, BENCH_BATCHES,
 * BENCH_ROUNDS, BENCH_VERIFY_N, BENCH_VERIFY_CHECKPOINTS, BENCH_SIGNED_LONG_BATCHES,
 * BENCH_PROOF_N, BENCH_PROOF_GEN, BENCH_PROOF_VERIFY.
 */
import { mkdtemp, open, readdir, rename, rm, stat } from "node:fs/promises";
import { availableParallelism, loadavg, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { execFileSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { performance } from "node:perf_hooks";
import { EventSchema, GENESIS_HASH, SCHEMA_VERSION, canonicalJson, newEventId, sealRecord, type AuditEvent } from "@auditgraph/core";
import {
  CheckpointSigner,
  SegmentLedger,
  generateSigningKey,
  inclusionProof,
  leafHash,
  nodeHash,
  verifyCheckpointSignature,
  verifyInclusion,
} from "@auditgraph/ledger";
import { benchMain, stats, table, type Stats } from "./common.js";
export type { Stats } from "./common.js";

export type AppendVariant = "plain" | "ledger" | "ledger+signer";
export const APPEND_VARIANTS: readonly AppendVariant[] = ["plain", "ledger", "ledger+signer"];

export interface LedgerBenchOptions {
  /** Multiplies every append count (each append cell is sized for ~2.5 s at 1). */
  scale: number;
  /** Batch sizes of the append part. */
  batches: number[];
  /** Rounds the append variants take turns in, per batch size. */
  rounds: number;
  /** Batches per variant and batch size before measuring (into throwaway streams); their median time sizes the cells. */
  warmupBatches: number;
  /** Records in the verify stream (rounded to batches of 1000; 0 skips parts 2 and 3). */
  verifyRecords: number;
  /** Signed checkpoints in the verify stream (evenly spaced, the last on the last record); 0: one per batch of 1000, as a signing ledger makes them. */
  verifyCheckpoints: number;
  /** Timed batches of 100 appended with a signer on top of the verify stream (0: skip). */
  signedLongBatches: number;
  /** Leaves of the in-memory tree for the inclusion proof part (0 skips it). */
  proofSize: number;
  /** Proofs made with inclusionProof (each hashes about the whole tree). */
  proofGenerations: number;
  /** Proofs checked with verifyInclusion, at random indices. */
  proofVerifications: number;
  log: (line: string) => void;
}

export interface AppendCell {
  batch: number;
  variant: AppendVariant;
  events: number;
  batches: number;
  seconds: number;
  eventsPerSec: number;
  /** Wall time of one batch (append call, or open+write+fsync+close), ms. */
  batchMs: Stats;
  /** This variant's events/s / plain's at the same batch size. */
  overPlain?: number;
  /** Records in the stream when the cell ended (its cost can grow with it). */
  streamEnd: number;
}

export interface VerifyMode {
  name: string;
  /** What `verify` was called with and on what. */
  what: string;
  seconds: number;
  eventsPerSec: number;
  /** Process CPU time / wall time over the call (1.0 = one core busy). */
  cpuOverWall: number;
}

export interface VerifyResult {
  records: number;
  checkpoints: number;
  checkpointEvery: number;
  bytes: number;
  buildSeconds: number;
  modes: VerifyMode[];
  /** What checking the checkpoints added, per checkpoint: (roots + signatures run - records-only run) / checkpoints, ms (noisy: a difference of two long runs). */
  checkpointMsPerCheckpoint: number;
  /** verifyCheckpointSignature on its own, ms per call. */
  signatureMsPerCheckpoint: number;
}

export interface SignedLongResult {
  streamSize: number;
  batch: number;
  batches: number;
  eventsPerSec: number;
  batchMs: Stats;
}

export interface ProofResult {
  size: number;
  leavesSeconds: number;
  /** Proof length in hashes over the sampled indices. */
  hashes: Stats;
  /** Raw proof bytes (32 per hash) at the p50 length; the bundle carries them as hex (64 chars each). */
  bytes: number;
  hexChars: number;
  generateMs: Stats;
  verifyUs: Stats;
  /** Reference, not the library: proofs read from a tree whose interior nodes are kept. */
  levelsSeconds: number;
  levelsProofUs: Stats;
}

export interface LedgerBenchResult {
  options: Omit<LedgerBenchOptions, "log">;
  environment: Record<string, string>;
  eventBytes: number;
  recordBytes: number;
  append: AppendCell[];
  verify: VerifyResult | undefined;
  signedLong: SignedLongResult | undefined;
  proof: ProofResult | undefined;
  goals: { name: string; holds: boolean | undefined; detail: string }[];
  seconds: number;
}

// ---------------------------------------------------------------------------------------------
// statistics

// ---------------------------------------------------------------------------------------------
// events

const IDENTITY = {
  user: { id: "user-4821", tenantId: "acme-retail", roles: ["analyst", "catalog-reader"] },
  agent: { id: "catalog-agent", name: "Catalog assistant", version: "2.3.1" },
};
const TRACE = randomUUID();
const SESSION = `session-${randomUUID()}`;

/**
 * A tool.end event as the LangChain handler emits it for a catalog lookup (the tool's JSON
 * answer as the ToolMessage content, a string): about 1 KB of canonical JSON.
 */
export function benchEvent(n: number): AuditEvent {
  const sku = `SKU-${String(100_000 + (n % 900_000)).padStart(6, "0")}`;
  const output = JSON.stringify({
    sku,
    title: `Stainless steel insulated bottle, 750 ml, model ${n % 97}`,
    price: { amount: 24.9 + (n % 50), currency: "EUR" },
    stock: [
      { warehouse: "FRA-1", available: (n * 7) % 400, reserved: n % 13 },
      { warehouse: "AMS-2", available: (n * 3) % 250, reserved: n % 5 },
    ],
    attributes: { color: ["black", "steel", "green"][n % 3], material: "18/8 stainless steel", dishwasherSafe: true, weightGrams: 380 },
    description: "Double-walled vacuum insulation keeps drinks cold for 24 hours and hot for 12. Leak-proof screw cap.",
  });
  return {
    eventId: newEventId(),
    schemaVersion: SCHEMA_VERSION,
    type: "tool.end",
    occurredAt: new Date().toISOString(),
    traceId: TRACE,
    runId: randomUUID(),
    parentRunId: randomUUID(),
    sessionId: SESSION,
    identity: IDENTITY,
    name: "catalog_lookup",
    tags: ["graph:step:3", "tools"],
    payload: { toolCallId: `call_${n.toString(36).padStart(12, "0")}`, output, timing: { latencyMs: 12.5 + (n % 40) } },
  };
}

const events = (from: number, count: number): AuditEvent[] => Array.from({ length: count }, (_, i) => benchEvent(from + i));

/** The canonical-JSON lines SegmentLedger writes for `list` appended in order to an empty stream. */
function recordLines(streamId: string, list: AuditEvent[], recordedAt: string): string[] {
  let prevHash = GENESIS_HASH;
  return list.map((event, position) => {
    const record = sealRecord({ position, streamId, recordedAt, prevHash, event });
    prevHash = record.hash;
    return `${canonicalJson(record)}\n`;
  });
}

// ---------------------------------------------------------------------------------------------
// part 1: append

/** What SegmentLedger does to the file per batch, and nothing else. */
async function plainAppend(path: string, text: string): Promise<void> {
  const handle = await open(path, "a");
  try {
    await handle.write(text);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Seconds each append cell aims at, at scale 1. */
const CELL_SECONDS = 2.5;
/** The plain append at large batches would write gigabytes in 2.5 s: at most 300k events (~400 MB) per cell. */
const PLAIN_CAP = 300_000;

/**
 * Events per cell for ~2.5 s x scale: from the median warm-up batch time of that variant, or
 * without warm-up from a rough model of a 2-core VM (fsync ~0.5 ms, ~85 µs per ledger record).
 */
function cellCount(variant: AppendVariant, batch: number, options: LedgerBenchOptions, warmupMs: number[]): number {
  const target = CELL_SECONDS * options.scale;
  const model = { plain: 0.5e-3 + 1.5e-6 * batch, ledger: 5e-3 + 85e-6 * batch, "ledger+signer": 7e-3 + 85e-6 * batch }[variant];
  const perBatch = warmupMs.length >= 2 ? stats(warmupMs).p50 / 1000 : model;
  const n = (target / perBatch) * batch;
  const unit = batch * options.rounds;
  const capped = variant === "plain" ? Math.min(n, PLAIN_CAP * options.scale) : n;
  return Math.max(unit, Math.round(capped / unit) * unit);
}

async function appendPart(root: string, options: LedgerBenchOptions, keys: { privateKeyPem: string }): Promise<AppendCell[]> {
  const { log, rounds } = options;
  const cells: AppendCell[] = [];
  const recordedAt = "2026-01-01T00:00:00.000Z";
  for (const batch of options.batches) {
    const streamId = `bench-b${batch}`;
    const ledgerDir = join(root, `append-b${batch}-ledger`);
    const signedDir = join(root, `append-b${batch}-signed`);
    const plainPath = join(root, `append-b${batch}-plain.jsonl`);
    const ledger = new SegmentLedger(ledgerDir);
    const signed = new SegmentLedger(signedDir, { signer: new CheckpointSigner(keys.privateKeyPem) });

    // Warm-up into throwaway streams and a throwaway file; its batch times size the cells.
    const warmupMs: Record<AppendVariant, number[]> = { plain: [], ledger: [], "ledger+signer": [] };
    const time = async (variant: AppendVariant, fn: () => Promise<unknown>) => {
      const t0 = performance.now();
      await fn();
      warmupMs[variant].push(performance.now() - t0);
    };
    for (let i = 0; i < options.warmupBatches; i += 1) {
      const warm = events(1_000_000 + i * batch, batch);
      const text = recordLines("warmup", warm, recordedAt).join("");
      await time("ledger", () => ledger.append("warmup", warm, recordedAt));
      await time("ledger+signer", () => signed.append("warmup", warm, recordedAt));
      await time("plain", () => plainAppend(`${plainPath}.warmup`, text));
    }
    const counts = Object.fromEntries(APPEND_VARIANTS.map((v) => [v, cellCount(v, batch, options, warmupMs[v].slice(1))])) as Record<AppendVariant, number>;

    // The events (untimed): ledger and signed ledger append the same ones; the plain append
    // writes the very bytes the ledger writes for them, batch by batch, cycling through a pool
    // of them when it runs longer.
    const list = events(0, Math.max(counts.ledger, counts["ledger+signer"]));
    const poolEvents = Math.min(counts.ledger, Math.max(batch, Math.floor(10_000 / batch) * batch));
    const poolLines = recordLines(streamId, list.slice(0, poolEvents), recordedAt);
    const pool: string[] = [];
    for (let i = 0; i < poolLines.length; i += batch) pool.push(poolLines.slice(i, i + batch).join(""));

    const done: Record<AppendVariant, number> = { plain: 0, ledger: 0, "ledger+signer": 0 };
    const seconds: Record<AppendVariant, number> = { plain: 0, ledger: 0, "ledger+signer": 0 };
    const samples: Record<AppendVariant, number[]> = { plain: [], ledger: [], "ledger+signer": [] };
    log(`  append, batch ${batch}: ${APPEND_VARIANTS.map((v) => `${v} ${counts[v]}`).join(", ")} events in ${rounds} rounds ...`);
    for (let round = 0; round < rounds; round += 1) {
      for (let k = 0; k < APPEND_VARIANTS.length; k += 1) {
        const variant = APPEND_VARIANTS[(round + k) % APPEND_VARIANTS.length]!;
        const perRound = counts[variant] / rounds;
        // A variant slower than its warm-up promised stops its round early (its rate stays exact).
        const roundLimitMs = ((1.5 * CELL_SECONDS * options.scale) / rounds) * 1000;
        const t0 = performance.now();
        for (let n = 0; n < perRound && (n === 0 || performance.now() - t0 < roundLimitMs); n += batch) {
          const from = done[variant];
          const b0 = performance.now();
          if (variant === "plain") await plainAppend(plainPath, pool[(from / batch) % pool.length]!);
          else await (variant === "ledger" ? ledger : signed).append(streamId, list.slice(from, from + batch), recordedAt);
          samples[variant].push(performance.now() - b0);
          done[variant] = from + batch;
        }
        seconds[variant] += (performance.now() - t0) / 1000;
      }
    }

    // The ledger wrote what the plain append wrote (same bytes, batch for batch).
    const expected = poolLines.slice(0, done.ledger).join("");
    const head = await readHead(ledger.segmentPath(streamId), Buffer.byteLength(expected));
    if (head !== expected) throw new Error(`batch ${batch}: the ledger's records are not the bytes the plain append wrote`);
    const plainEvents = done.plain;
    for (const variant of APPEND_VARIANTS) {
      const eventsPerSec = done[variant] / seconds[variant];
      cells.push({
        batch,
        variant,
        events: done[variant],
        batches: samples[variant].length,
        seconds: seconds[variant],
        eventsPerSec,
        batchMs: stats(samples[variant]),
        streamEnd: variant === "plain" ? plainEvents : done[variant],
      });
    }
    const plainRate = cells.find((c) => c.batch === batch && c.variant === "plain")!.eventsPerSec;
    for (const c of cells) if (c.batch === batch) c.overPlain = c.eventsPerSec / plainRate;
    // Keep the disk in check: these files are not needed any more.
    await ledger.close();
    await signed.close();
    await rm(plainPath, { force: true });
    await rm(`${plainPath}.warmup`, { force: true });
    await rm(ledgerDir, { recursive: true, force: true });
    await rm(signedDir, { recursive: true, force: true });
  }
  return cells;
}

async function readHead(path: string, bytes: number): Promise<string> {
  const handle = await open(path, "r");
  try {
    const buffer = Buffer.alloc(bytes);
    const { bytesRead } = await handle.read(buffer, 0, bytes, 0);
    return buffer.subarray(0, bytesRead).toString("utf8");
  } finally {
    await handle.close();
  }
}

// ---------------------------------------------------------------------------------------------
// part 2 and 3: verify, and a signed append on a long stream

async function timed<T>(fn: () => Promise<T>): Promise<{ value: T; seconds: number; cpuOverWall: number }> {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const value = await fn();
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  return { value, seconds, cpuOverWall: (cpu.user + cpu.system) / 1e6 / seconds };
}

async function verifyPart(
  root: string,
  options: LedgerBenchOptions,
  keys: { privateKeyPem: string; publicKeyPem: string },
): Promise<{ verify: VerifyResult; signedLong: SignedLongResult | undefined }> {
  const { log } = options;
  const streamId = "verify";
  const batch = 1000;
  const total = Math.max(batch, Math.round(options.verifyRecords / batch) * batch);
  const batches = total / batch;
  const checkpoints = options.verifyCheckpoints > 0 ? Math.min(batches, options.verifyCheckpoints) : batches;
  const every = Math.floor(batches / checkpoints); // batches between checkpoints
  const verifyDir = join(root, "verify");

  // Build: batches of 1000; a signing instance appends every `every`-th batch (ending on the
  // last), an unsigned one the rest (by default none: a checkpoint per batch, as a signing
  // ledger makes them), so the stream has `checkpoints` evenly spaced checkpoints.
  log(`  verify: building a stream of ${total} records (batches of ${batch}, a signed checkpoint every ${every * batch} records) ...`);
  const t0 = performance.now();
  const unsigned = new SegmentLedger(verifyDir);
  const signing = new SegmentLedger(verifyDir, { signer: new CheckpointSigner(keys.privateKeyPem) });
  let made = 0;
  let writer: SegmentLedger | undefined;
  for (let j = 0; j < batches; j += 1) {
    const withCheckpoint = (batches - 1 - j) % every === 0 && made < checkpoints;
    const list = events(j * batch, batch);
    const next = withCheckpoint ? signing : unsigned;
    // One writer per stream: the other instance hands its lease over.
    if (writer && writer !== next) await writer.close();
    writer = next;
    await next.append(streamId, list);
    if (withCheckpoint) made += 1;
  }
  await unsigned.close();
  const buildSeconds = (performance.now() - t0) / 1000;
  const stored = await signing.checkpoints(streamId);
  const streamDir = join(verifyDir, "streams", streamId);
  const bytes = await segmentBytes(streamDir);
  // Whatever of the build is still only in the page cache goes to disk now, not during a verify.
  for (const name of await readdir(streamDir)) {
    const handle = await open(join(streamDir, name), "r").catch(() => undefined);
    await handle?.sync().catch(() => {});
    await handle?.close();
  }
  log(`  verify: built in ${buildSeconds.toFixed(1)} s (${stored.length} checkpoints, ${(bytes / 1024 / 1024).toFixed(0)} MB); verifying ...`);

  const run = async (name: string, what: string, publicKeyPem: string | undefined, wantCheckpoints: number): Promise<VerifyMode> => {
    const { value: report, seconds, cpuOverWall } = await timed(() => new SegmentLedger(verifyDir).verify(publicKeyPem));
    if (!report.ok) throw new Error(`verify (${name}) failed: ${JSON.stringify(report.failure)}`);
    if (report.count !== total || report.streams[0]?.checkpoints !== wantCheckpoints) {
      throw new Error(`verify (${name}): ${report.count} records / ${report.streams[0]?.checkpoints} checkpoints, expected ${total} / ${wantCheckpoints}`);
    }
    log(`    ${name}: ${seconds.toFixed(2)} s`);
    return { name, what, seconds, eventsPerSec: total / seconds, cpuOverWall };
  };
  // Records only: the same stream with its checkpoints file moved aside for the call.
  const checkpointsFile = join(streamDir, "checkpoints.jsonl");
  await rename(checkpointsFile, `${checkpointsFile}.aside`);
  const bareMode = await run("records only", "verify() with checkpoints.jsonl moved aside: positions, chain, record hashes, leaf hashes", undefined, 0).finally(
    () => rename(`${checkpointsFile}.aside`, checkpointsFile),
  );
  const modes = [
    bareMode,
    await run(
      "+ checkpoint roots",
      `verify(): the same + each of the ${stored.length} checkpoints' root checked against the records`,
      undefined,
      stored.length,
    ),
    await run("+ roots + signatures", "verify(publicKeyPem): the same + each checkpoint's Ed25519 signature", keys.publicKeyPem, stored.length),
  ];
  const [bare, , signatures] = modes as [VerifyMode, VerifyMode, VerifyMode];
  // The signature check on its own (a difference of two long runs is noisy at this size).
  const signatureRuns = Math.max(20, stored.length);
  const m0 = performance.now();
  for (let i = 0; i < signatureRuns; i += 1) {
    if (!verifyCheckpointSignature(stored[i % stored.length]!, keys.publicKeyPem)) throw new Error("a checkpoint's signature does not verify");
  }
  const signatureMsPerCheckpoint = (performance.now() - m0) / signatureRuns;
  const verify: VerifyResult = {
    records: total,
    checkpoints: stored.length,
    checkpointEvery: every * batch,
    bytes,
    buildSeconds,
    modes,
    checkpointMsPerCheckpoint: ((signatures.seconds - bare.seconds) * 1e3) / stored.length,
    signatureMsPerCheckpoint,
  };

  let signedLong: SignedLongResult | undefined;
  if (options.signedLongBatches > 0) {
    // The signing instance is up to date (it wrote the last batch): what a checkpoint costs on
    // a long stream, without the first append's catch-up.
    log(`  signed append on the ${total}-record stream: ${options.signedLongBatches} batches of 100 ...`);
    const samples: number[] = [];
    for (let i = 0; i < options.signedLongBatches; i += 1) {
      const list = events(total + i * 100, 100);
      const b0 = performance.now();
      await signing.append(streamId, list);
      samples.push(performance.now() - b0);
    }
    const s = stats(samples);
    signedLong = {
      streamSize: total,
      batch: 100,
      batches: samples.length,
      eventsPerSec: (100 * samples.length) / (samples.reduce((a, b) => a + b, 0) / 1000),
      batchMs: s,
    };
  }
  await signing.close();
  await rm(verifyDir, { recursive: true, force: true });
  return { verify, signedLong };
}

/** Bytes of a stream's record files (segment-NNNNNN.jsonl). */
async function segmentBytes(dir: string): Promise<number> {
  let total = 0;
  for (const name of await readdir(dir)) if (/^segment-\d+\.jsonl$/.test(name)) total += (await stat(join(dir, name))).size;
  return total;
}

// ---------------------------------------------------------------------------------------------
// part 4: inclusion proofs

/** Every level of the RFC 9162 tree (a node without a right sibling moves up unchanged). */
function treeLevels(leaves: Buffer[]): Buffer[][] {
  const levels: Buffer[][] = [leaves];
  let level = leaves;
  while (level.length > 1) {
    const up: Buffer[] = new Array<Buffer>(Math.ceil(level.length / 2));
    for (let i = 0; i + 1 < level.length; i += 2) up[i / 2] = nodeHash(level[i]!, level[i + 1]!);
    if (level.length % 2 === 1) up[up.length - 1] = level[level.length - 1]!;
    levels.push(up);
    level = up;
  }
  return levels;
}

/** The audit path from stored levels: the sibling at each level that has one, bottom up. */
function proofFromLevels(levels: Buffer[][], index: number): Buffer[] {
  const proof: Buffer[] = [];
  let i = index;
  for (let l = 0; l < levels.length - 1; l += 1) {
    const sibling = i ^ 1;
    if (sibling < levels[l]!.length) proof.push(levels[l]![sibling]!);
    i >>= 1;
  }
  return proof;
}

function proofPart(options: LedgerBenchOptions): ProofResult {
  const { log } = options;
  const size = Math.max(2, options.proofSize);
  const random = () => Math.floor(Math.random() * size);
  log(`  proof: ${size} leaf hashes in memory (leafHash) ...`);
  let t0 = performance.now();
  const leaves: Buffer[] = new Array<Buffer>(size);
  for (let i = 0; i < size; i += 1) leaves[i] = leafHash(`{"position":${i},"streamId":"proof","event":"record ${i}"}`);
  const leavesSeconds = (performance.now() - t0) / 1000;

  // Reference: the tree's interior nodes kept (what inclusionProof would need to be O(log n)).
  t0 = performance.now();
  const levels = treeLevels(leaves);
  const levelsSeconds = (performance.now() - t0) / 1000;
  const root = levels.at(-1)![0]!;

  log(`  proof: ${options.proofGenerations} x inclusionProof over ${size} leaves ...`);
  const generateMs: number[] = [];
  for (let k = 0; k < options.proofGenerations; k += 1) {
    const index = random();
    const g0 = performance.now();
    const proof = inclusionProof(leaves, index, size);
    generateMs.push(performance.now() - g0);
    // The reference reads the same path, and the library checks it.
    const reference = proofFromLevels(levels, index);
    if (proof.length !== reference.length || proof.some((h, j) => !h.equals(reference[j]!)))
      throw new Error(`proof for ${index}: inclusionProof and the stored levels disagree`);
    verifyInclusion(leaves[index]!, index, size, proof, root);
  }

  log(`  proof: ${options.proofVerifications} x verifyInclusion at random indices ...`);
  const verifyUs: number[] = [];
  const levelsUs: number[] = [];
  const lengths: number[] = [];
  for (let k = 0; k < options.proofVerifications; k += 1) {
    const index = random();
    const l0 = performance.now();
    const proof = proofFromLevels(levels, index);
    levelsUs.push((performance.now() - l0) * 1000);
    lengths.push(proof.length);
    const v0 = performance.now();
    verifyInclusion(leaves[index]!, index, size, proof, root);
    verifyUs.push((performance.now() - v0) * 1000);
  }
  const hashes = stats(lengths);
  return {
    size,
    leavesSeconds,
    hashes,
    bytes: hashes.p50 * 32,
    hexChars: hashes.p50 * 64,
    generateMs: stats(generateMs),
    verifyUs: stats(verifyUs),
    levelsSeconds,
    levelsProofUs: stats(levelsUs),
  };
}

// ---------------------------------------------------------------------------------------------
// the benchmark

/** The commit measured, and whether the ledger's sources differ from it (best effort). */
function codeVersion(): string {
  const root = join(dirname(fileURLToPath(import.meta.url)), "..");
  try {
    const git = (...args: string[]) => execFileSync("git", args, { cwd: root, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
    const changed = git("status", "--porcelain", "--", "packages/ledger/src", "packages/core/src").split("\n").filter(Boolean).length;
    return `${git("rev-parse", "--short", "HEAD")}${changed ? ` + ${changed} uncommitted file(s) in packages/{ledger,core}/src` : ""}`;
  } catch {
    return "unknown (no git)";
  }
}

const numEnv = (name: string, fallback: number, env: NodeJS.ProcessEnv, integer = true): number => {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < 0 || (integer && !Number.isInteger(n)))
    throw new Error(`${name} must be a ${integer ? "whole " : ""}number >= 0, got ${JSON.stringify(raw)}`);
  return n;
};

export function optionsFromEnv(env: NodeJS.ProcessEnv = process.env): LedgerBenchOptions {
  const batches = (env.BENCH_BATCHES ?? "1,100,1000").split(",").map((b) => Number(b.trim()));
  for (const b of batches)
    if (!Number.isInteger(b) || b < 1) throw new Error(`BENCH_BATCHES: ${JSON.stringify(env.BENCH_BATCHES)} is not a comma list of whole numbers >= 1`);
  const scale = numEnv("BENCH_SCALE", 1, env, false);
  if (scale <= 0) throw new Error("BENCH_SCALE must be > 0");
  return {
    scale,
    batches,
    rounds: Math.max(1, numEnv("BENCH_ROUNDS", 4, env)),
    warmupBatches: numEnv("BENCH_WARMUP", 5, env),
    verifyRecords: numEnv("BENCH_VERIFY_N", 200_000, env),
    verifyCheckpoints: numEnv("BENCH_VERIFY_CHECKPOINTS", 0, env),
    signedLongBatches: numEnv("BENCH_SIGNED_LONG_BATCHES", 3, env),
    proofSize: numEnv("BENCH_PROOF_N", 1_000_000, env),
    proofGenerations: Math.max(1, numEnv("BENCH_PROOF_GEN", 3, env)),
    proofVerifications: Math.max(1, numEnv("BENCH_PROOF_VERIFY", 2000, env)),
    log: (line) => console.log(line),
  };
}

export async function runLedgerBenchmark(partial: Partial<LedgerBenchOptions> = {}): Promise<LedgerBenchResult> {
  const options: LedgerBenchOptions = { ...optionsFromEnv({}), ...partial };
  const { log } = options;
  const started = performance.now();
  const load = loadavg()
    .map((l) => l.toFixed(2))
    .join(" ");
  const root = await mkdtemp(join(tmpdir(), "auditgraph-bench-ledger-"));
  try {
    // The event is what the worker would accept.
    const sample = benchEvent(0);
    EventSchema.parse(sample);
    const eventBytes = Buffer.byteLength(canonicalJson(sample));
    const recordBytes = Buffer.byteLength(recordLines("bench", [sample], new Date().toISOString())[0]!);
    const keys = generateSigningKey();

    const append = await appendPart(root, options, keys);
    log(`  append done (${((performance.now() - started) / 1000).toFixed(1)} s)`);
    const { verify, signedLong } = options.verifyRecords > 0 ? await verifyPart(root, options, keys) : { verify: undefined, signedLong: undefined };
    log(`  verify done (${((performance.now() - started) / 1000).toFixed(1)} s)`);
    const proof = options.proofSize > 1 ? proofPart(options) : undefined;
    log(`  proof done (${((performance.now() - started) / 1000).toFixed(1)} s)`);

    const at100 = (variant: AppendVariant) => append.find((c) => c.batch === 100 && c.variant === variant);
    const ledger100 = at100("ledger");
    const signed100 = at100("ledger+signer");
    const plain100 = at100("plain");
    const full = verify?.modes.at(-1);
    const goals: LedgerBenchResult["goals"] = [
      {
        name: "append at batch 100 >= 50% of the plain append's throughput",
        holds: ledger100?.overPlain !== undefined ? ledger100.overPlain >= 0.5 : undefined,
        detail:
          ledger100 && plain100
            ? `ledger ${fmtRate(ledger100.eventsPerSec)} vs plain ${fmtRate(plain100.eventsPerSec)} events/s = ${pct(ledger100.overPlain!)}` +
              (signed100 ? ` (with a signer: ${fmtRate(signed100.eventsPerSec)} = ${pct(signed100.overPlain!)})` : "")
            : "not measured (batch 100 not in BENCH_BATCHES)",
      },
      {
        name: "verify > 100,000 events/s on one core",
        holds: full ? full.eventsPerSec > 100_000 : undefined,
        detail: verify
          ? `${verify.modes.map((m) => `${m.name} ${fmtRate(m.eventsPerSec)}`).join(", ")} events/s over ${verify.records} records (${verify.checkpoints} checkpoints); the goal is judged on the last, full check`
          : "not measured",
      },
    ];

    return {
      options: {
        scale: options.scale,
        batches: options.batches,
        rounds: options.rounds,
        warmupBatches: options.warmupBatches,
        verifyRecords: options.verifyRecords,
        verifyCheckpoints: options.verifyCheckpoints,
        signedLongBatches: options.signedLongBatches,
        proofSize: options.proofSize,
        proofGenerations: options.proofGenerations,
        proofVerifications: options.proofVerifications,
      },
      environment: {
        node: process.version,
        cpus: String(availableParallelism()),
        loadavg: load,
        loadavgEnd: loadavg()
          .map((l) => l.toFixed(2))
          .join(" "),
        tmpdir: tmpdir(),
        code: codeVersion(),
      },
      eventBytes,
      recordBytes,
      append,
      verify,
      signedLong,
      proof,
      goals,
      seconds: (performance.now() - started) / 1000,
    };
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// report

const fmtRate = (r: number) => (r >= 100 ? Math.round(r).toLocaleString("en-US") : r.toFixed(1));
const fmtMs = (ms: number) => (ms >= 100 ? ms.toFixed(0) : ms >= 10 ? ms.toFixed(1) : ms.toFixed(2));
const pct = (r: number) => `${(r * 100).toFixed(1)}%`;

function signedDelta(v: VerifyResult): string {
  const d = (v.checkpointMsPerCheckpoint * v.checkpoints) / 1000;
  return `${Math.abs(d).toFixed(2)} s ${d >= 0 ? "longer" : "less"}`;
}

export function formatReport(result: LedgerBenchResult): string {
  const out: string[] = [];
  const o = result.options;
  const e = result.environment;
  out.push(
    `ledger throughput: SegmentLedger vs a plain append of the same bytes; event = tool.end, ${result.eventBytes} B canonical JSON (record line ${result.recordBytes} B)`,
    `code ${e.code} (as built in dist/); node ${e.node}, ${e.cpus} cpus, load average at start ${e.loadavg}, at end ${e.loadavgEnd}, temp dir under ${e.tmpdir}; scale ${o.scale}, ${o.rounds} rounds, ${o.warmupBatches} warm-up batches`,
    "",
    "append (one fsync per batch; the variants take turns round by round):",
    table(
      ["batch", "variant", "events", "s", "events/s", "batch p50 ms", "batch p99 ms", "/ plain", "stream at end"],
      result.append.map((c) => [
        String(c.batch),
        c.variant,
        String(c.events),
        c.seconds.toFixed(2),
        fmtRate(c.eventsPerSec),
        fmtMs(c.batchMs.p50),
        fmtMs(c.batchMs.p99),
        c.overPlain !== undefined ? c.overPlain.toFixed(3) : "-",
        c.variant === "plain" ? "-" : String(c.streamEnd),
      ]),
    ),
  );
  if (result.signedLong) {
    const s = result.signedLong;
    const short = result.append.find((c) => c.batch === s.batch && c.variant === "ledger+signer");
    out.push(
      "",
      `signed append on a long stream: batches of ${s.batch} on top of ${s.streamSize} records: ${fmtRate(s.eventsPerSec)} events/s, batch p50 ${fmtMs(s.batchMs.p50)} ms` +
        (short ? ` (vs ${fmtRate(short.eventsPerSec)} events/s, p50 ${fmtMs(short.batchMs.p50)} ms on a stream of 0..${short.streamEnd} above)` : ""),
    );
  }
  if (result.verify) {
    const v = result.verify;
    out.push(
      "",
      `verify (single call, one stream of ${v.records} records, ${(v.bytes / 1024 / 1024).toFixed(0)} MB, ${v.checkpoints} checkpoints = one every ${v.checkpointEvery} records; built in ${v.buildSeconds.toFixed(1)} s):`,
      table(
        ["mode", "s", "events/s", "CPU/wall"],
        v.modes.map((m) => [m.name, m.seconds.toFixed(2), fmtRate(m.eventsPerSec), m.cpuOverWall.toFixed(2)]),
      ),
      ...v.modes.map((m) => `  ${m.name}: ${m.what}`),
      `  checkpoints: the full check took ${signedDelta(v)} than records only, ${v.checkpointMsPerCheckpoint.toFixed(2)} ms per checkpoint (single runs: differences`,
      `    of a few percent are noise); one signature check alone (verifyCheckpointSignature) takes ${v.signatureMsPerCheckpoint.toFixed(3)} ms`,
      `  a signing ledger makes one checkpoint per append batch (here one per ${v.checkpointEvery} records; BENCH_VERIFY_CHECKPOINTS sets how many)`,
    );
  }
  if (result.proof) {
    const p = result.proof;
    out.push(
      "",
      `inclusion proof, tree of ${p.size} leaves in memory (leafHash: ${p.leavesSeconds.toFixed(1)} s for all):`,
      `  size: ${p.hashes.p50} hashes (min ${p.hashes.min}, max ${p.hashes.max} over ${p.hashes.n} random indices) = ${p.bytes} B raw, ${p.hexChars} hex chars in a bundle`,
      `  generate (inclusionProof): p50 ${fmtMs(p.generateMs.p50)} ms, min ${fmtMs(p.generateMs.min)}, max ${fmtMs(p.generateMs.max)} over ${p.generateMs.n} random indices`,
      `  verify (verifyInclusion): p50 ${p.verifyUs.p50.toFixed(1)} µs, p99 ${p.verifyUs.p99.toFixed(1)} µs over ${p.verifyUs.n} random indices`,
      `  reference, not the library: with the tree's interior nodes kept (built once in ${p.levelsSeconds.toFixed(1)} s) a proof is read in p50 ${p.levelsProofUs.p50.toFixed(1)} µs`,
    );
  }
  out.push("", "goals:");
  for (const g of result.goals) out.push(`  [${g.holds === undefined ? "n/a" : g.holds ? "HOLDS" : "MISSED"}] ${g.name}: ${g.detail}`);
  out.push(
    "",
    "notes: plain = open('a') + write + fsync + close of the ledger's own record bytes per batch (checked equal), the",
    "  ledger's per-batch file work and nothing else. ledger = SegmentLedger.append: the writer lease (lock file taken once",
    "  and kept, segment kept open), per record the sealed record's canonical JSON, its chain hash and Merkle leaf, then the",
    "  same write + fsync.",
    "  ledger+signer adds per batch a signed checkpoint (checked to extend the last one, Ed25519, a second fsynced append);",
    "  the long-stream line shows whether that cost grows with the stream. Cells are sized from the warm-up batch times;",
    "  verify runs on the main thread (CPU/wall above 1 is GC and file reads on other threads).",
  );
  return out.join("\n");
}

benchMain(import.meta.url, "ledger", { options: optionsFromEnv, run: runLedgerBenchmark, format: formatReport });
