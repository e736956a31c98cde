import { createReadStream } from "node:fs";
import { mkdir, open, readdir, readFile, stat, truncate } from "node:fs/promises";
import { join } from "node:path";
import { lockDir, type AuditEvent, type LedgerRecord } from "@auditgraph/core";
import type { AppendResult, DeadLetter, Ledger, StreamSummary, TornTailRepair, VerifyReport } from "./types.js";
import { CheckpointSchema, type Checkpoint, type CheckpointSigner } from "./checkpoint.js";
import { StreamTail, proveConsistencyInStream, proveInStream, verifyStream } from "./chain.js";
import type { ConsistencyBundle, InclusionBundle } from "./proof.js";

const SEGMENT_FILE = /^segment-(\d{6})\.jsonl$/;
const segmentName = (index: number) => `segment-${String(index).padStart(6, "0")}.jsonl`;
const CHECKPOINTS = "checkpoints.jsonl";
const STREAM_ID = /^[A-Za-z0-9_-]{1,128}$/;

interface Located {
  segment: number;
  position: number;
  offset: number;
  length: number;
}

/** What this process knows of a stream's files, refreshed under the lock before each append. */
interface StreamState {
  tail: StreamTail;
  /** The segment appends go to, and how far this process has read it. */
  segment: number;
  size: number;
  byEventId: Map<string, Located>;
}

export interface SegmentLedgerOptions {
  /** Signs a checkpoint (tree head) after every appended batch; without one none is made. */
  signer?: CheckpointSigner;
  /** Called with each checkpoint once it is stored, to hand it to an outside party. */
  onCheckpoint?: (checkpoint: Checkpoint) => void | Promise<void>;
  /** A segment file that reaches this size is closed; the next batch starts a new one. */
  maxSegmentBytes?: number;
}

/**
 * The embedded ledger: one directory per stream, each an append-only file of canonical JSON
 * records, one a line. Appends hold a per-stream lock file and first read what other
 * processes appended, so several workers share one ledger without forking a chain.
 */
export class SegmentLedger implements Ledger {
  private readonly states = new Map<string, StreamState>();

  constructor(
    readonly dir: string,
    private readonly options: SegmentLedgerOptions = {},
  ) {}

  private streamDir(streamId: string): string {
    if (!STREAM_ID.test(streamId)) throw new RangeError(`invalid streamId ${JSON.stringify(streamId)}: use [A-Za-z0-9_-]{1,128}`);
    return join(this.dir, "streams", streamId);
  }

  segmentPath(streamId: string, index = 0): string {
    return join(this.streamDir(streamId), segmentName(index));
  }

  /** The stream's segment files, in order. */
  async segments(streamId: string): Promise<string[]> {
    const names = await readdir(this.streamDir(streamId)).catch(() => [] as string[]);
    return names
      .filter((n) => SEGMENT_FILE.test(n))
      .sort()
      .map((n) => join(this.streamDir(streamId), n));
  }

  /** Every line of every segment of a stream, in order. */
  private async *streamLines(streamId: string): AsyncGenerator<{ line: string; length: number }> {
    for (const path of await this.segments(streamId)) yield* readLines(path, 0);
  }

  async append(streamId: string, events: AuditEvent[], recordedAt = new Date().toISOString()): Promise<AppendResult> {
    const dir = this.streamDir(streamId);
    await mkdir(dir, { recursive: true });
    // A writer that died holding the lock gives it up at once (its pid is gone); a live one
    // is waited for.
    const release = await lockDir(dir, { name: "writer", waitMs: 30_000 });
    try {
      const state = await this.catchUp(streamId);
      if (state.size >= (this.options.maxSegmentBytes ?? 64 * 1024 * 1024)) {
        state.segment += 1;
        state.size = 0;
      }
      const path = this.segmentPath(streamId, state.segment);
      const records: LedgerRecord[] = [];
      const fresh: string[] = [];
      const pending = new Map<string, LedgerRecord>();
      let appended = 0;
      let offset = state.size;
      for (const event of events) {
        const known = pending.get(event.eventId) ?? (await this.readLocated(streamId, state.byEventId.get(event.eventId)));
        if (known) {
          records.push(known);
          continue;
        }
        const { record, json } = state.tail.seal(event, recordedAt);
        const line = `${json}\n`;
        const length = Buffer.byteLength(line);
        fresh.push(line);
        pending.set(event.eventId, record);
        state.byEventId.set(event.eventId, { segment: state.segment, position: record.position, offset, length });
        offset += length;
        records.push(record);
        appended += 1;
      }
      if (fresh.length > 0) {
        const handle = await open(path, "a");
        try {
          await handle.write(fresh.join(""));
          // Acknowledged means on disk: the worker acks the job only after this returns.
          await handle.sync();
        } finally {
          await handle.close();
        }
        state.size = offset;
        if (this.options.signer) await this.checkpoint(streamId, state.tail.sign(this.options.signer));
      }
      return { records, appended };
    } catch (error) {
      // Our view of the file may now be ahead of it; rebuild it from disk next time.
      this.states.delete(streamId);
      throw error;
    } finally {
      await release();
    }
  }

  /** Brings this process's view of a stream up to what is on disk (other writers' appends too). */
  private async catchUp(streamId: string): Promise<StreamState> {
    let state = this.states.get(streamId);
    if (!state) {
      state = { tail: new StreamTail(streamId, (await this.checkpoints(streamId)).at(-1)), segment: 0, size: 0, byEventId: new Map() };
      this.states.set(streamId, state);
    }
    const segments = await this.segments(streamId);
    for (let index = state.segment; index < segments.length; index++) {
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

  private async checkpoint(streamId: string, checkpoint: Checkpoint): Promise<void> {
    await appendSynced(join(this.streamDir(streamId), CHECKPOINTS), `${JSON.stringify(checkpoint)}\n`);
    await this.options.onCheckpoint?.(checkpoint);
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

  proveConsistency(streamId: string, fromSize: number, toSize?: number): Promise<ConsistencyBundle> {
    return this.checkpoints(streamId).then((checkpoints) => proveConsistencyInStream(streamId, this.texts(streamId), checkpoints, fromSize, toSize));
  }

  /**
   * The record of `eventId`, its RFC 9162 inclusion proof and the latest checkpoint that covers
   * it: everything a third party needs to check it with the public key alone.
   */
  async prove(eventId: string): Promise<InclusionBundle> {
    for (const streamId of await this.streams()) {
      const bundle = await proveInStream(eventId, streamId, this.texts(streamId), (await this.checkpoints(streamId)).at(-1));
      if (bundle) return bundle;
    }
    throw new Error(`no event ${eventId} in the ledger`);
  }

  /** A stream's records as stored (each with its line end), in order. */
  private async *texts(streamId: string): AsyncGenerator<string> {
    for await (const { line } of this.streamLines(streamId)) yield line;
  }

  /** Torn tails cut off when a stream was opened for writing, oldest first. */
  async repairs(): Promise<TornTailRepair[]> {
    const text = await readFile(join(this.dir, "repairs.jsonl"), "utf8").catch(() => "");
    return text.split("\n").filter(Boolean).map((l) => JSON.parse(l) as TornTailRepair);
  }

  private recordRepair(repair: TornTailRepair): Promise<void> {
    return appendSynced(join(this.dir, "repairs.jsonl"), `${JSON.stringify(repair)}\n`);
  }

  async streams(): Promise<string[]> {
    const names = await readdir(join(this.dir, "streams")).catch(() => [] as string[]);
    return names.filter((n) => STREAM_ID.test(n)).sort();
  }

  async *readStream(streamId: string, from = 0, to = Infinity): AsyncGenerator<LedgerRecord> {
    let position = 0;
    for await (const { line } of this.streamLines(streamId)) {
      if (position >= to) return;
      if (position++ < from) continue;
      yield JSON.parse(line) as LedgerRecord;
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

  async readTrace(traceId: string): Promise<LedgerRecord[]> {
    const out: LedgerRecord[] = [];
    for (const streamId of await this.streams()) {
      for await (const { line } of this.streamLines(streamId)) {
        if (!line.includes(traceId)) continue;
        const record = JSON.parse(line) as LedgerRecord;
        if (record.event.traceId === traceId) out.push(record);
      }
    }
    return out;
  }

  /**
   * Recomputes every stream from its first record: positions, the hash chain, each record's
   * hash, then each stored checkpoint (its root over the records it covers, and its signature
   * when `publicKeyPem` is given). The first failure is reported with its place.
   */
  async verify(publicKeyPem?: string, kept: Checkpoint[] = []): Promise<VerifyReport> {
    const streams: StreamSummary[] = [];
    const names = new Set([...(await this.streams()), ...kept.map((c) => c.streamId)]);
    for (const streamId of [...names].sort()) {
      // The ledger's own checkpoints, and those an outside party kept (which survive a cut
      // that took the local ones with it).
      const checkpoints = [...(await this.checkpoints(streamId)), ...kept.filter((c) => c.streamId === streamId)];
      const outcome = await verifyStream(streamId, this.texts(streamId), checkpoints, publicKeyPem, (p) => this.positionLater(streamId, p));
      if ("reason" in outcome) return { ok: false, failure: outcome, streams };
      streams.push(outcome);
    }
    return { ok: true, count: streams.reduce((n, s) => n + s.count, 0), streams };
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
}

async function appendSynced(path: string, text: string): Promise<void> {
  const handle = await open(path, "a");
  try {
    await handle.write(text);
    await handle.sync();
  } finally {
    await handle.close();
  }
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

