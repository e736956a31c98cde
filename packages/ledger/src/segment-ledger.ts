import { createReadStream } from "node:fs";
import { mkdir, open, readdir, readFile, stat, truncate } from "node:fs/promises";
import { join } from "node:path";
import { canonicalJson, lockDir, type AuditEvent } from "@auditgraph/core";
import { GENESIS_HASH, sealRecord, recordHash, type LedgerRecord } from "@auditgraph/core";
import type { AppendResult, DeadLetter, Ledger, StreamSummary, TornTailRepair, VerifyFailure, VerifyReport } from "./types.js";
import { CheckpointSchema, verifyCheckpointSignature, type Checkpoint, type CheckpointSigner } from "./checkpoint.js";
import { CompactTree, consistencyProof, inclusionProof, leafHash, rootOf, verifyConsistency } from "./merkle.js";
import type { InclusionBundle } from "./proof.js";

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

/** What this process knows of a stream's file, refreshed under the lock before each append. */
interface StreamState {
  /** The segment appends go to, and how far this process has read it. */
  segment: number;
  size: number;
  nextPosition: number;
  lastHash: string;
  byEventId: Map<string, Located>;
  /** RFC 9162 leaf hashes of the records, in order, and the tree over them. */
  leaves: Buffer[];
  tree: CompactTree;
  lastCheckpoint: Checkpoint | undefined;
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
        const record = sealRecord({ position: state.nextPosition, streamId, recordedAt, prevHash: state.lastHash, event });
        const json = canonicalJson(record);
        const line = `${json}\n`;
        const length = Buffer.byteLength(line);
        fresh.push(line);
        const leaf = leafHash(json);
        state.leaves.push(leaf);
        state.tree.append(leaf);
        pending.set(event.eventId, record);
        state.byEventId.set(event.eventId, { segment: state.segment, position: record.position, offset, length });
        offset += length;
        state.nextPosition += 1;
        state.lastHash = record.hash;
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
        if (this.options.signer) await this.checkpoint(streamId, state, this.options.signer);
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
      state = {
        segment: 0,
        size: 0,
        nextPosition: 0,
        lastHash: GENESIS_HASH,
        byEventId: new Map(),
        leaves: [],
        tree: new CompactTree(),
        lastCheckpoint: (await this.checkpoints(streamId)).at(-1),
      };
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
        const leaf = leafHash(line.slice(0, -1));
        state.leaves.push(leaf);
        state.tree.append(leaf);
        state.byEventId.set(record.event.eventId, { segment: index, position: record.position, offset, length });
        state.nextPosition = record.position + 1;
        state.lastHash = record.hash;
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

  /**
   * Signs the stream's new tree head, after checking that it extends the last one signed:
   * a checkpoint inconsistent with an earlier one is never made.
   */
  private async checkpoint(streamId: string, state: StreamState, signer: CheckpointSigner): Promise<void> {
    const root = state.tree.root();
    const previous = state.lastCheckpoint;
    if (previous) {
      const proof = consistencyProof(state.leaves, previous.treeSize, state.tree.size);
      verifyConsistency(previous.treeSize, state.tree.size, proof, Buffer.from(previous.rootHash, "hex"), root);
    }
    const checkpoint = signer.sign({ streamId, treeSize: state.tree.size, rootHash: root.toString("hex"), time: new Date().toISOString() });
    await appendSynced(join(this.streamDir(streamId), CHECKPOINTS), `${JSON.stringify(checkpoint)}\n`);
    state.lastCheckpoint = checkpoint;
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

  /**
   * The record of `eventId`, its RFC 9162 inclusion proof and the latest checkpoint that covers
   * it: everything a third party needs to check it with the public key alone.
   */
  async prove(eventId: string): Promise<InclusionBundle> {
    for (const streamId of await this.streams()) {
      const leaves: Buffer[] = [];
      let found: { record: LedgerRecord; index: number } | undefined;
      for await (const { line } of this.streamLines(streamId)) {
        if (!line.endsWith("\n")) break;
        if (!found && line.includes(eventId)) {
          const record = JSON.parse(line) as LedgerRecord;
          if (record.event.eventId === eventId) found = { record, index: leaves.length };
        }
        leaves.push(leafHash(line.slice(0, -1)));
      }
      if (!found) continue;
      const checkpoint = (await this.checkpoints(streamId)).at(-1);
      if (!checkpoint || checkpoint.treeSize <= found.index) {
        throw new Error(`event ${eventId} (stream ${streamId}, position ${found.index}) is not yet covered by a signed checkpoint`);
      }
      const proof = inclusionProof(leaves, found.index, checkpoint.treeSize);
      return { record: found.record, leafIndex: found.index, treeSize: checkpoint.treeSize, proof: proof.map((h) => h.toString("hex")), checkpoint };
    }
    throw new Error(`no event ${eventId} in the ledger`);
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

  async *readStream(streamId: string, from = 0): AsyncGenerator<LedgerRecord> {
    let position = 0;
    for await (const { line } of this.streamLines(streamId)) {
      if (position++ < from) continue;
      yield JSON.parse(line) as LedgerRecord;
    }
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
      const outcome = await this.verifyStream(streamId, publicKeyPem, kept.filter((c) => c.streamId === streamId));
      if ("reason" in outcome) return { ok: false, failure: outcome, streams };
      streams.push(outcome);
    }
    return { ok: true, count: streams.reduce((n, s) => n + s.count, 0), streams };
  }

  private async verifyStream(streamId: string, publicKeyPem: string | undefined, kept: Checkpoint[]): Promise<StreamSummary | VerifyFailure> {
    let expectedPrev = GENESIS_HASH;
    let position = 0;
    const leaves: Buffer[] = [];
    const fail = (reason: VerifyFailure["reason"], detail: string, eventId: string | null): VerifyFailure => ({
      streamId,
      position,
      eventId,
      reason,
      detail,
    });
    for await (const { line } of this.streamLines(streamId)) {
      const eventIdHint = /"eventId":"([^"]+)"/.exec(line)?.[1] ?? null;
      if (!line.endsWith("\n")) return fail("torn", "last record is incomplete (no line end)", eventIdHint);
      let record: LedgerRecord;
      try {
        record = JSON.parse(line) as LedgerRecord;
      } catch {
        return fail("unparseable", "record is not valid JSON", eventIdHint);
      }
      const eventId = typeof record.event?.eventId === "string" ? record.event.eventId : eventIdHint;
      if (record.position !== position) {
        const reason = record.position < position || (await this.positionLater(streamId, position)) ? "reorder" : "gap";
        return fail(reason, `expected position ${position}, found ${String(record.position)}`, eventId);
      }
      if (record.prevHash !== expectedPrev)
        return fail("chain-broken", "prevHash does not match the previous record's hash", eventId);
      if (recordHash(record) !== record.hash) return fail("edited", "content does not match its hash", eventId);
      leaves.push(leafHash(line.slice(0, -1)));
      expectedPrev = record.hash;
      position += 1;
    }
    // The ledger's own checkpoints, and those an outside party kept (which survive a cut that
    // took the local ones with it).
    const checkpoints = [...(await this.checkpoints(streamId)), ...kept];
    for (const checkpoint of checkpoints) {
      if (checkpoint.treeSize > leaves.length) {
        return fail("truncated", `a checkpoint of ${checkpoint.time} covers ${checkpoint.treeSize} records; only ${leaves.length} remain`, null);
      }
      if (rootOf(leaves, 0, checkpoint.treeSize).toString("hex") !== checkpoint.rootHash) {
        position = checkpoint.treeSize - 1;
        return fail("checkpoint-mismatch", `the records do not give the root signed at ${checkpoint.time} for size ${checkpoint.treeSize}`, null);
      }
      if (publicKeyPem && !verifyCheckpointSignature(checkpoint, publicKeyPem)) {
        position = checkpoint.treeSize - 1;
        return fail("bad-signature", `the checkpoint of ${checkpoint.time} (size ${checkpoint.treeSize}) is not signed by this key`, null);
      }
    }
    return { streamId, count: position, head: expectedPrev, root: rootOf(leaves).toString("hex"), checkpoints: checkpoints.length };
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

