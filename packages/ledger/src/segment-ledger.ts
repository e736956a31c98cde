import { createReadStream } from "node:fs";
import { mkdir, open, readdir, readFile, stat, truncate, unlink, type FileHandle } from "node:fs/promises";
import { join } from "node:path";
import { z } from "zod";
import { appendSynced, lockDir, newEventId, parseWith, streamIdFor, subjectRef, type StoredEvent, type LedgerRecord } from "@auditgraph/core";
import { DeadLetterReplaySchema, type AppendResult, type DeadLetter, type DeadLetterReplay, type Ledger, type StreamSummary, type TornTailRepair, type VerifyOptions, type VerifyReport } from "./types.js";
import { CheckpointSchema, type Checkpoint, type CheckpointSigner } from "./checkpoint.js";
import { StreamTail, proveConsistencyInStream, proveInStream, verifyStream } from "./chain.js";
import { noEvent, type ConsistencyBundle, type InclusionBundle } from "./proof.js";
import { CompactTree, leafHash } from "./merkle.js";
import { segmentLedgerId } from "./ledger-id.js";
import { TraceIndex } from "./trace-index.js";
import {
  ExpiredRangeSchema,
  HoldRequestSchema,
  LegalHoldSchema,
  RetentionPolicySchema,
  expiresAt,
  holding,
  type ExpiredRange,
  type HoldRequest,
  type LegalHold,
  type RetentionPolicy,
} from "./retention.js";

/** What `expire` did to one stream, and why it stopped where it did. */
export interface ExpiryReport {
  streamId: string;
  expired: ExpiredRange[];
  keptBecause: string;
}

const SEGMENT_FILE = /^segment-(\d{6})\.jsonl$/;
const segmentName = (index: number) => `segment-${String(index).padStart(6, "0")}.jsonl`;
const CHECKPOINTS = "checkpoints.jsonl";
const REPLAYS = "dead-letter-replays.jsonl";
const EXPIRED = "expired.jsonl";
const HOLDS = "holds.jsonl";
const NEWLINE = Buffer.from("\n");
const STREAM_ID = /^[A-Za-z0-9_-]{1,128}$/;

interface Located {
  segment: number;
  position: number;
  offset: number;
  length: number;
}

/** What this process knows of a stream's files, refreshed when it takes the writer lease. */
interface StreamState {
  tail: StreamTail;
  /** The segment appends go to, and how far this process has read it. */
  segment: number;
  size: number;
  byEventId: Map<string, Located>;
  /** Held while this process is the stream's writer: the lock, and the open segment and checkpoint files. */
  lease?: { release: () => Promise<void>; segment: FileHandle; checkpoints?: FileHandle; idle?: NodeJS.Timeout; lost?: Error };
}

export interface SegmentLedgerOptions {
  /** Signs a checkpoint (tree head) after every appended batch; without one none is made. */
  signer?: CheckpointSigner;
  /** Called with each checkpoint once it is stored, to hand it to an outside party. */
  onCheckpoint?: (checkpoint: Checkpoint) => void | Promise<void>;
  /** A segment file that reaches this size is closed; the next batch starts a new one. */
  maxSegmentBytes?: number;
  /** How long a writer keeps a stream after its last append, so the next batch pays no lock (ms). */
  leaseIdleMs?: number;
  /** How long an append waits for another process's lease on the stream before failing (ms). */
  lockWaitMs?: number;
}

/**
 * The embedded ledger: one directory per stream, each an append-only file of canonical JSON
 * records, one a line. A stream has one writer at a time: the first append takes a lock file
 * (a lease) and keeps the segment open, so the batches that follow cost one write and one fsync;
 * the lease is given up after `leaseIdleMs` without appends, or on `close()`. Another process
 * waits for it (then first reads what was appended meanwhile), and after `lockWaitMs` gets an
 * error naming the holder: never a fork of the chain.
 */
export class SegmentLedger implements Ledger {
  private readonly states = new Map<string, StreamState>();
  /** Appends (and lease ends) of one stream in this process, one after another. */
  private readonly turns = new Map<string, Promise<unknown>>();
  /** Traces by id, read once per line and caught up on each lookup (a console reads traces often). */
  private readonly traceIndex = new TraceIndex(readLines);
  private ledgerId?: Promise<string>;

  constructor(
    readonly dir: string,
    private readonly options: SegmentLedgerOptions = {},
  ) {}

  /** The ledger's id, from `ledger.json` in its directory; made (with the directory) by the first append or the first ask. */
  id(): Promise<string> {
    this.ledgerId ??= segmentLedgerId(this.dir).catch((error: unknown) => {
      this.ledgerId = undefined;
      throw error;
    });
    return this.ledgerId;
  }

  private streamDir(streamId: string): string {
    if (!STREAM_ID.test(streamId)) throw new RangeError(`invalid streamId ${JSON.stringify(streamId)}: use [A-Za-z0-9_-]{1,128}`);
    return join(this.dir, "streams", streamId);
  }

  segmentPath(streamId: string, index = 0): string {
    return join(this.streamDir(streamId), segmentName(index));
  }

  /** The stream's live segment files (not expired), in order. */
  async segments(streamId: string): Promise<string[]> {
    return (await this.segmentIndices(streamId)).map((index) => this.segmentPath(streamId, index));
  }

  private async segmentIndices(streamId: string, expired?: ExpiredRange): Promise<number[]> {
    const last = expired ?? (await this.expiredRanges(streamId)).at(-1);
    const names = await readdir(this.streamDir(streamId)).catch(() => [] as string[]);
    return names
      .map((n) => SEGMENT_FILE.exec(n)?.[1])
      .filter((n): n is string => n !== undefined)
      .map(Number)
      .filter((index) => last === undefined || index > last.segment)
      .sort((a, b) => a - b);
  }

  /** The runs of records removed by retention, oldest first; they are always the stream's start. */
  async expiredRanges(streamId: string): Promise<ExpiredRange[]> {
    const text = await readFile(join(this.streamDir(streamId), EXPIRED), "utf8").catch(() => "");
    return text
      .split("\n")
      .filter(Boolean)
      .map((l) => parseWith(ExpiredRangeSchema, JSON.parse(l), `${EXPIRED} of stream ${streamId}`));
  }

  private lastExpired = async (streamId: string): Promise<ExpiredRange | undefined> => (await this.expiredRanges(streamId)).at(-1);

  /** Every line of every segment of a stream, in order. */
  private async *streamLines(streamId: string): AsyncGenerator<{ line: string; length: number }> {
    // Whole lines only: an unterminated last one is an append under way, or torn (its writer cuts it).
    for (const path of await this.segments(streamId)) for await (const l of readLines(path, 0)) if (l.line.endsWith("\n")) yield l;
  }

  private inTurn<T>(streamId: string, work: () => Promise<T>): Promise<T> {
    const run = (this.turns.get(streamId) ?? Promise.resolve()).then(work, work);
    this.turns.set(streamId, run.catch(() => undefined));
    return run;
  }

  async append(streamId: string, events: StoredEvent[], recordedAt = new Date().toISOString()): Promise<AppendResult> {
    const dir = this.streamDir(streamId);
    // The ledger is named when it is created, before its first record.
    await this.id();
    return this.inTurn(streamId, async () => {
      const state = await this.lease(streamId, dir);
      const lease = state.lease!;
      clearTimeout(lease.idle);
      try {
        if (lease.lost) throw new Error(`stream ${streamId}: the writer lock was lost (${lease.lost.message}); not appending`, { cause: lease.lost });
        if (state.size >= (this.options.maxSegmentBytes ?? 64 * 1024 * 1024)) {
          state.segment += 1;
          state.size = 0;
          await lease.segment.close();
          lease.segment = await openSegment(this.segmentPath(streamId, state.segment), dir);
        }
        const records: LedgerRecord[] = [];
        const fresh: Buffer[] = [];
        const pending = new Map<string, LedgerRecord>();
        let appended = 0;
        let offset = state.size;
        for (const event of events) {
          const stored = state.byEventId.get(event.eventId);
          const known = pending.get(event.eventId) ?? (stored && (await this.readLocated(streamId, stored)));
          if (known) {
            records.push(known);
            continue;
          }
          const { record, bytes } = state.tail.seal(event, recordedAt);
          const length = bytes.length + 1;
          fresh.push(bytes, NEWLINE);
          appended += 1;
          pending.set(event.eventId, record);
          state.byEventId.set(event.eventId, { segment: state.segment, position: record.position, offset, length });
          offset += length;
          records.push(record);
        }
        if (fresh.length > 0) {
          // appendFile, not write: a write may take part of the buffer and resolve (a disk filling up).
          await lease.segment.appendFile(Buffer.concat(fresh)).catch(async (error: unknown) => {
            // What a full disk did take is cut off now, not at the next lease, which may be a
            // long way off while the disk stays full, and readers meet it meanwhile.
            await lease.segment.truncate(state.size).catch(() => undefined);
            throw error;
          });
          // Acknowledged means on disk: the worker acks the job only after this returns.
          await lease.segment.sync();
          state.size = offset;
          if (this.options.signer) {
            const checkpoint = state.tail.sign(this.options.signer);
            lease.checkpoints ??= await open(join(dir, CHECKPOINTS), "a");
            await lease.checkpoints.appendFile(`${JSON.stringify(checkpoint)}\n`);
            await lease.checkpoints.sync();
            await this.options.onCheckpoint?.(checkpoint);
          }
        }
        lease.idle = setTimeout(() => void this.inTurn(streamId, () => this.endLease(streamId)), this.options.leaseIdleMs ?? 250).unref();
        return { records, appended };
      } catch (error) {
        // Our view of the file may now be ahead of it: give the stream up, and read it afresh next time.
        await this.endLease(streamId);
        this.states.delete(streamId);
        throw error;
      }
    });
  }

  /** Takes the stream's writer lock (if this process does not hold it) and catches up with the files. */
  private async lease(streamId: string, dir: string): Promise<StreamState> {
    const held = this.states.get(streamId);
    if (held?.lease) return held;
    await mkdir(dir, { recursive: true });
    const lost: { error?: Error } = {};
    // A writer that died holding the lock gives it up at once (its pid is gone); a live one is waited for.
    const release = await lockDir(dir, {
      name: "writer",
      waitMs: this.options.lockWaitMs ?? 30_000,
      onCompromised: (error) => {
        const lease = this.states.get(streamId)?.lease;
        if (lease) lease.lost = error;
        else lost.error = error;
      },
    });
    try {
      const state = await this.catchUp(streamId);
      await this.repairCheckpoints(streamId);
      state.lease = { release, segment: await openSegment(this.segmentPath(streamId, state.segment), dir), ...(lost.error ? { lost: lost.error } : {}) };
      return state;
    } catch (error) {
      await release();
      throw error;
    }
  }

  private async endLease(streamId: string): Promise<void> {
    const state = this.states.get(streamId);
    const lease = state?.lease;
    if (!lease) return;
    state.lease = undefined;
    clearTimeout(lease.idle);
    await lease.segment.close().catch(() => undefined);
    await lease.checkpoints?.close().catch(() => undefined);
    await lease.release().catch(() => undefined);
  }

  /** Gives up every stream this process writes (their locks and open files). */
  async close(): Promise<void> {
    await Promise.all([...this.states.keys()].map((streamId) => this.inTurn(streamId, () => this.endLease(streamId))));
  }

  /** Brings this process's view of a stream up to what is on disk (other writers' appends too). */
  private async catchUp(streamId: string): Promise<StreamState> {
    let state = this.states.get(streamId);
    if (!state) {
      const expired = await this.lastExpired(streamId);
      const tail = new StreamTail(streamId, await this.latestCheckpoint(streamId), expired);
      state = { tail, segment: expired ? expired.segment + 1 : 0, size: 0, byEventId: new Map() };
      this.states.set(streamId, state);
    }
    for (const index of await this.segmentIndices(streamId)) {
      if (index < state.segment) continue;
      const path = this.segmentPath(streamId, index);
      const start = index === state.segment ? state.size : 0;
      const size = await stat(path).then((st) => st.size, () => 0);
      if (size === start && index === state.segment) continue;
      let offset = start;
      for await (const { line, length } of readLines(path, start)) {
        if (!line.endsWith("\n")) {
          // A writer died in the middle of a record: that append never resolved, so its job
          // was never acknowledged and will be delivered again. Cut it off, and say so.
          await truncate(path, offset);
          await this.recordRepair({ streamId, offset, bytes: length, recordedAt: new Date().toISOString(), eventId: /"eventId":"([^"]+)"/.exec(line)?.[1] ?? null });
          break;
        }
        const record = JSON.parse(line) as LedgerRecord;
        state.tail.absorb(line.slice(0, -1), record);
        state.byEventId.set(record.event.eventId, { segment: index, position: record.position, offset, length });
        offset += length;
      }
      state.segment = index;
      state.size = offset;
    }
    return state;
  }

  /**
   * A checkpoint write cut short (a full disk, a crash) leaves half a line after the last
   * whole one: cut it off, as a torn record is, so that the file parses. The records it would
   * have signed are on disk already; the next batch's checkpoint covers them.
   */
  private async repairCheckpoints(streamId: string): Promise<void> {
    const path = join(this.streamDir(streamId), CHECKPOINTS);
    const handle = await open(path, "r").catch(() => undefined);
    if (!handle) return;
    let keep: number;
    let size: number;
    try {
      size = (await handle.stat()).size;
      // Only the end is read: a checkpoint line is a few hundred bytes.
      const tail = Buffer.alloc(Math.min(size, 64 * 1024));
      await handle.read(tail, 0, tail.length, size - tail.length);
      if (tail.length === 0 || tail[tail.length - 1] === 10) return;
      const newline = tail.lastIndexOf(10);
      keep = newline < 0 ? size - tail.length : size - tail.length + newline + 1;
    } finally {
      await handle.close();
    }
    await truncate(path, keep);
    await this.recordRepair({ streamId, offset: keep, bytes: size - keep, recordedAt: new Date().toISOString(), eventId: null, file: CHECKPOINTS });
  }

  private async readLocated(streamId: string, at: Located | undefined): Promise<LedgerRecord | undefined> {
    if (!at) return undefined;
    const handle = await open(this.segmentPath(streamId, at.segment), "r");
    try {
      const buffer = Buffer.alloc(at.length);
      await handle.read(buffer, 0, at.length, at.offset);
      return JSON.parse(buffer.toString("utf8")) as LedgerRecord;
    } finally {
      await handle.close();
    }
  }

  /** The stream's signed checkpoints, oldest first. */
  async checkpoints(streamId: string): Promise<Checkpoint[]> {
    const text = await readFile(join(this.streamDir(streamId), CHECKPOINTS), "utf8").catch(() => "");
    return text
      .split("\n")
      .filter(Boolean)
      .map((l) => CheckpointSchema.parse(JSON.parse(l)));
  }

  async latestCheckpoint(streamId: string): Promise<Checkpoint | undefined> {
    return (await this.checkpoints(streamId)).at(-1);
  }

  async proveConsistency(streamId: string, fromSize: number, toSize?: number): Promise<ConsistencyBundle> {
    const expired = await this.lastExpired(streamId);
    return proveConsistencyInStream(streamId, this.texts(streamId, expired), await this.checkpoints(streamId), fromSize, toSize, expired);
  }

  /**
   * The record of `eventId`, its RFC 9162 inclusion proof and the latest checkpoint that covers
   * it: everything a third party needs to check it with the public key alone.
   */
  async prove(eventId: string, options: { streamId?: string } = {}): Promise<InclusionBundle> {
    for (const streamId of (await this.streams()).filter((s) => options.streamId === undefined || s === options.streamId)) {
      const expired = await this.lastExpired(streamId);
      const bundle = await proveInStream(eventId, streamId, this.texts(streamId, expired), await this.latestCheckpoint(streamId), expired);
      if (bundle) return bundle;
    }
    throw noEvent(eventId);
  }

  /** The same as bytes, a read's worth at a time. */
  private async *lineBatches(streamId: string, expired: ExpiredRange | undefined): AsyncGenerator<Buffer[]> {
    for (const index of await this.segmentIndices(streamId, expired)) yield* readLineBatches(this.segmentPath(streamId, index));
  }

  /** A stream's live records as stored (each with its line end), in order: those after `expired`. */
  private async *texts(streamId: string, expired: ExpiredRange | undefined): AsyncGenerator<string> {
    for (const index of await this.segmentIndices(streamId, expired)) {
      for await (const { line } of readLines(this.segmentPath(streamId, index), 0)) if (line.endsWith("\n")) yield line;
    }
  }

  /** Torn tails cut off when a stream was opened for writing, oldest first. */
  async repairs(): Promise<TornTailRepair[]> {
    const text = await readFile(join(this.dir, "repairs.jsonl"), "utf8").catch(() => "");
    // Up to the last whole line: a repair being written as the disk filled is not one yet.
    return text.slice(0, text.lastIndexOf("\n") + 1).split("\n").filter(Boolean).map((l) => JSON.parse(l) as TornTailRepair);
  }

  private recordRepair(repair: TornTailRepair): Promise<void> {
    return appendSynced(join(this.dir, "repairs.jsonl"), `${JSON.stringify(repair)}\n`);
  }

  async streams(): Promise<string[]> {
    const names = await readdir(join(this.dir, "streams")).catch(() => [] as string[]);
    return names.filter((n) => STREAM_ID.test(n)).sort();
  }

  async *readStream(streamId: string, from = 0, to = Infinity): AsyncGenerator<LedgerRecord> {
    const paths = await this.segments(streamId);
    // Positions start after the expired range, if the stream's start has expired.
    let position = (await this.lastExpired(streamId))?.to ?? 0;
    let start = 0;
    // A reader catching up from a position (the projection) skips the whole segments before it:
    // the last segment whose first record is at or before `from` holds it.
    for (let i = paths.length - 1; i > 0 && from > position; i--) {
      const first = await firstPosition(paths[i]!);
      if (first !== undefined && first <= from) {
        [start, position] = [i, first];
        break;
      }
    }
    for (const path of paths.slice(start)) {
      for await (const { line } of readLines(path, 0)) {
        // An unterminated last line is an append under way, or a torn one its writer will cut.
        if (!line.endsWith("\n")) break;
        if (position >= to) return;
        if (position++ < from) continue;
        yield JSON.parse(line) as LedgerRecord;
      }
    }
  }

  async readEvent(eventId: string): Promise<LedgerRecord | undefined> {
    for (const streamId of await this.streams()) {
      for await (const { line } of this.streamLines(streamId)) {
        // Most lines are not it: look for the id before parsing.
        if (!line.includes(eventId)) continue;
        const record = JSON.parse(line) as LedgerRecord;
        if (record.event.eventId === eventId) return record;
      }
    }
    return undefined;
  }

  async readTrace(traceId: string, options: { streamId?: string } = {}): Promise<LedgerRecord[]> {
    const out: LedgerRecord[] = [];
    for (const streamId of (await this.streams()).filter((s) => options.streamId === undefined || s === options.streamId))
      out.push(...(await this.traceIndex.read(streamId, traceId, await this.segmentIndices(streamId), (i) => this.segmentPath(streamId, i))));
    return out;
  }

  /**
   * Recomputes every stream from its first record: positions, the hash chain, each record's
   * hash, then each stored checkpoint (its root over the records it covers, and its signature
   * when `publicKeyPem` is given). The first failure is reported with its place.
   */
  async verify(publicKeyPem?: string, kept: Checkpoint[] = [], options: VerifyOptions = {}): Promise<VerifyReport> {
    const streams: StreamSummary[] = [];
    const names = new Set([...(await this.streams()), ...kept.map((c) => c.streamId)]);
    for (const streamId of [...names].sort()) {
      if (options.streamIds && !options.streamIds.includes(streamId)) continue;
      // The ledger's own checkpoints, and those an outside party kept (which survive a cut
      // that took the local ones with it).
      const checkpoints = [...(await this.checkpoints(streamId)), ...kept.filter((c) => c.streamId === streamId)];
      const expired = await this.lastExpired(streamId);
      const outcome = await verifyStream(streamId, this.lineBatches(streamId, expired), checkpoints, publicKeyPem, (p) => this.positionLater(streamId, p), expired, options.onProgress);
      if ("reason" in outcome) return { ok: false, failure: outcome, streams };
      streams.push(outcome);
    }
    return { ok: true, count: streams.reduce((n, s) => n + s.count, 0), streams };
  }

  /** Places a legal hold: no record it covers expires until it is released. */
  async placeHold(request: HoldRequest): Promise<LegalHold> {
    const { tenantId, userId, traceId, reason, placedBy } = parseWith(HoldRequestSchema, request, "legal hold");
    const hold = LegalHoldSchema.parse({
      id: newEventId(),
      streamId: streamIdFor(tenantId),
      ...(userId ? { subject: subjectRef(tenantId, userId) } : {}),
      ...(traceId ? { traceId } : {}),
      reason,
      placedAt: new Date().toISOString(),
      ...(placedBy ? { placedBy } : {}),
    });
    await mkdir(this.dir, { recursive: true });
    await appendSynced(join(this.dir, HOLDS), `${JSON.stringify({ place: hold })}\n`);
    return hold;
  }

  /** Releases a hold (a new line in the holds file: nothing is edited). */
  async releaseHold(id: string, releasedBy?: string): Promise<LegalHold> {
    const hold = (await this.holds()).find((h) => h.id === id);
    if (!hold) throw new RangeError(`no legal hold with id ${JSON.stringify(id)}`);
    if (hold.releasedAt) throw new RangeError(`legal hold ${id} was already released at ${hold.releasedAt}`);
    const release = { id, releasedAt: new Date().toISOString(), ...(releasedBy ? { releasedBy } : {}) };
    await appendSynced(join(this.dir, HOLDS), `${JSON.stringify({ release })}\n`);
    return { ...hold, ...release };
  }

  /** Every hold ever placed, released ones with their release. */
  async holds(): Promise<LegalHold[]> {
    const text = await readFile(join(this.dir, HOLDS), "utf8").catch(() => "");
    const holds = new Map<string, LegalHold>();
    for (const line of text.split("\n").filter(Boolean)) {
      const entry = JSON.parse(line) as { place?: LegalHold; release?: Pick<LegalHold, "id" | "releasedAt" | "releasedBy"> };
      if (entry.place) holds.set(entry.place.id, LegalHoldSchema.parse(entry.place));
      else if (entry.release && holds.has(entry.release.id)) holds.set(entry.release.id, { ...holds.get(entry.release.id)!, ...entry.release });
    }
    return [...holds.values()];
  }

  /**
   * Removes, from the start of each stream, the whole segments every record of which has passed
   * its retention and is under no legal hold, and whose end is a signed checkpoint that has been
   * exported (is in `exported`): so an outside party can still hold the ledger to what was there.
   * The stream's last segment is never removed. Each removal leaves an expired range first.
   */
  async expire(options: { policy: RetentionPolicy; exported: Checkpoint[]; now?: Date; dryRun?: boolean }): Promise<ExpiryReport[]> {
    const policy = parseWith(RetentionPolicySchema, options.policy, "retention policy");
    const now = (options.now ?? new Date()).getTime();
    const holds = await this.holds();
    const reports: ExpiryReport[] = [];
    for (const streamId of await this.streams()) {
      const dir = this.streamDir(streamId);
      reports.push(
        await this.inTurn(streamId, async () => {
          // The writer lease: nothing is appended to (or cut from) the stream meanwhile.
          const state = await this.lease(streamId, dir);
          const lease = state.lease!;
          clearTimeout(lease.idle);
          try {
            return await this.expireStream(streamId, policy, holds, options.exported, now, options.dryRun ?? false, state);
          } finally {
            lease.idle = setTimeout(() => void this.inTurn(streamId, () => this.endLease(streamId)), this.options.leaseIdleMs ?? 250).unref();
          }
        }),
      );
    }
    return reports;
  }

  private async expireStream(
    streamId: string,
    policy: z.output<typeof RetentionPolicySchema>,
    holds: LegalHold[],
    exported: Checkpoint[],
    now: number,
    dryRun: boolean,
    state: StreamState,
  ): Promise<ExpiryReport> {
    const dir = this.streamDir(streamId);
    let last = await this.lastExpired(streamId);
    // A removal that was cut short (its range written, its file not yet gone) is finished first.
    for (const name of await readdir(dir)) {
      const index = Number(SEGMENT_FILE.exec(name)?.[1] ?? NaN);
      if (!dryRun && last && index <= last.segment) await unlink(join(dir, name));
    }
    const checkpoints = await this.checkpoints(streamId);
    const expired: ExpiredRange[] = [];
    const live = await this.segmentIndices(streamId, last);
    const report = (keptBecause: string): ExpiryReport => ({ streamId, expired, keptBecause });
    for (const index of live.slice(0, -1)) {
      const tree = CompactTree.restore(last?.to ?? 0, (last?.frontier ?? []).map((h) => Buffer.from(h, "hex")));
      let lastHash = last?.lastHash ?? "";
      let newest = "";
      for await (const { line } of readLines(this.segmentPath(streamId, index), 0)) {
        const record = JSON.parse(line) as LedgerRecord;
        const hold = holding(record, holds);
        if (hold) return report(`segment ${index}: position ${record.position} is under legal hold ${hold.id} (${hold.reason})`);
        const until = expiresAt(record, policy);
        if (until > now) return report(`segment ${index}: position ${record.position} (${record.event.type}) is kept until ${Number.isFinite(until) ? new Date(until).toISOString() : "forever"}`);
        tree.append(leafHash(line.slice(0, -1)));
        lastHash = record.hash;
        if (record.recordedAt > newest) newest = record.recordedAt;
      }
      const to = tree.size;
      const root = tree.root().toString("hex");
      const checkpoint = checkpoints.find((c) => c.treeSize === to);
      if (!checkpoint) return report(`segment ${index}: no signed checkpoint of size ${to} (its end)`);
      if (checkpoint.rootHash !== root) throw new Error(`stream ${streamId}: the records do not give the root signed for size ${to}; run \`auditgraph verify\``);
      if (!exported.some((c) => c.streamId === streamId && c.treeSize === to && c.rootHash === root)) {
        return report(`segment ${index}: its checkpoint (size ${to}) has not been exported`);
      }
      const range = ExpiredRangeSchema.parse({
        streamId,
        segment: index,
        from: 0,
        to,
        lastHash,
        frontier: tree.frontier().map((h) => h.toString("hex")),
        checkpoint,
        newestRecordedAt: newest,
        expiredAt: new Date(now).toISOString(),
      });
      expired.push(range);
      last = range;
      if (dryRun) continue;
      // The range first, then the file: a crash in between leaves a range whose file is removed next time.
      await appendSynced(join(dir, EXPIRED), `${JSON.stringify(range)}\n`);
      await unlink(this.segmentPath(streamId, index));
      const directory = await open(dir, "r");
      await directory.sync().finally(() => directory.close());
      for (const [eventId, at] of state.byEventId) if (at.segment <= index) state.byEventId.delete(eventId);
    }
    return report(`segment ${String(live.at(-1) ?? 0)} is the one being written, and is never removed`);
  }

  private deadLetterIds: Set<string> | undefined;

  /** Whether a record with `position` is somewhere in the stream (a reorder rather than a gap). */
  private async positionLater(streamId: string, position: number): Promise<boolean> {
    for await (const { line } of this.streamLines(streamId)) {
      try {
        if ((JSON.parse(line) as LedgerRecord).position === position) return true;
      } catch {
        // an unparseable line says nothing about positions
      }
    }
    return false;
  }

  async deadLetter(entry: DeadLetter): Promise<void> {
    this.deadLetterIds ??= new Set((await this.readDeadLetters()).map((d) => d.id));
    if (this.deadLetterIds.has(entry.id)) return;
    await mkdir(this.dir, { recursive: true });
    await appendSynced(join(this.dir, "dead-letter.jsonl"), `${JSON.stringify(entry)}\n`);
    this.deadLetterIds.add(entry.id);
  }

  async readDeadLetters(): Promise<DeadLetter[]> {
    const out: DeadLetter[] = [];
    for await (const { line } of readLines(join(this.dir, "dead-letter.jsonl"), 0)) out.push(JSON.parse(line) as DeadLetter);
    return out;
  }

  async recordDeadLetterReplay(replay: DeadLetterReplay): Promise<void> {
    const checked = parseWith(DeadLetterReplaySchema, replay, "dead-letter replay");
    await mkdir(this.dir, { recursive: true });
    await appendSynced(join(this.dir, REPLAYS), `${JSON.stringify(checked)}\n`);
  }

  async readDeadLetterReplays(): Promise<DeadLetterReplay[]> {
    const out: DeadLetterReplay[] = [];
    let n = 0;
    for await (const { line } of readLines(join(this.dir, REPLAYS), 0))
      if (line.endsWith("\n")) out.push(parseWith(DeadLetterReplaySchema, JSON.parse(line), `${REPLAYS} line ${++n}`));
    return out;
  }
}

/** Opens a segment for appending; a new file's directory entry is made durable too. */
async function openSegment(path: string, dir: string): Promise<FileHandle> {
  const existed = await stat(path).then(() => true, () => false);
  const handle = await open(path, "a");
  if (!existed) {
    const directory = await open(dir, "r");
    await directory.sync().finally(() => directory.close());
  }
  return handle;
}


/** A file's lines as bytes (each with its line end, if any), in batches of what one read gave. */
async function* readLineBatches(path: string): AsyncGenerator<Buffer[]> {
  const exists = await stat(path).then(() => true, () => false);
  if (!exists) return;
  let carry: Buffer | undefined;
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>) {
    const buffer = carry ? Buffer.concat([carry, chunk]) : chunk;
    const batch: Buffer[] = [];
    let start = 0;
    for (let newline = buffer.indexOf(10); newline !== -1; newline = buffer.indexOf(10, start)) {
      batch.push(buffer.subarray(start, newline + 1));
      start = newline + 1;
    }
    carry = start < buffer.length ? Buffer.from(buffer.subarray(start)) : undefined;
    if (batch.length > 0) yield batch;
  }
  if (carry) yield [carry];
}

/** The position of a segment's first record; undefined when it has no whole, readable one. */
async function firstPosition(path: string): Promise<number | undefined> {
  for await (const { line } of readLines(path, 0)) {
    try {
      return (JSON.parse(line) as LedgerRecord).position;
    } catch {
      return undefined;
    }
  }
  return undefined;
}

/** Lines of a file from a byte offset, each with its line end (if any) and its byte length. */
async function* readLines(path: string, start: number): AsyncGenerator<{ line: string; length: number }> {
  const exists = await stat(path).then(() => true, () => false);
  if (!exists) return;
  const stream = createReadStream(path, { start });
  let carry = Buffer.alloc(0);
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    let buffer = carry.length ? Buffer.concat([carry, chunk]) : chunk;
    let newline: number;
    while ((newline = buffer.indexOf(10)) !== -1) {
      const bytes = buffer.subarray(0, newline + 1);
      yield { line: bytes.toString("utf8"), length: bytes.length };
      buffer = buffer.subarray(newline + 1);
    }
    carry = Buffer.from(buffer);
  }
  if (carry.length) yield { line: carry.toString("utf8"), length: carry.length };
}

