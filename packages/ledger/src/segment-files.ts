import { createReadStream } from "node:fs";
import { open, readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { parseWith, type LedgerRecord } from "@auditgraph/core";
import { CheckpointSchema, type Checkpoint } from "./checkpoint.js";
import { LedgerErrorCodes, ledgerError } from "./errors.js";
import { firstPosition, readLineBatches, readLines } from "./line-reader.js";
import { leafHash } from "./merkle-tree.js";
import { SegmentTileStore } from "./tiles-segment.js";
import { ExpiredRangeSchema, type ExpiredRange } from "./retention.js";
import type { LedgerCheckpointOptions, TornTailRepair } from "./types.js";

export interface SegmentLedgerOptions extends LedgerCheckpointOptions {
  /** A segment file that reaches this size is closed; the next batch starts a new one. */
  maxSegmentBytes?: number;
  /** How long a writer keeps a stream after its last append, so the next batch pays no lock (ms). */
  leaseIdleMs?: number;
  /** How long an append waits for another process's lease on the stream before failing (ms). */
  lockWaitMs?: number;
  /**
   * Whether appends keep the stream's Merkle tree as tlog tiles beside it (default true), which
   * proofs then read instead of rehashing the stream. Off, proofs rehash as before.
   */
  tiles?: boolean;
}

export const SEGMENT_FILE = /^segment-(\d{6})\.jsonl$/;
const segmentName = (index: number) => `segment-${String(index).padStart(6, "0")}.jsonl`;
export const CHECKPOINTS = "checkpoints.jsonl";
export const EXPIRED = "expired.jsonl";
export const REPAIRS = "repairs.jsonl";
/** A stream id, which names a directory: a tenant's shard i > 0 is `<base>.<i>` (see `streamIdFor`). */
const STREAM_ID = /^[A-Za-z0-9_-]{1,128}(\.[1-9][0-9]{0,2})?$/;

/** Where one record is: its segment, position, and byte offset and length in the segment. */
export interface Located {
  segment: number;
  position: number;
  offset: number;
  length: number;
}

/**
 * A segment ledger's directory as files, read only: where each stream's segments, checkpoints
 * and expired ranges are, and their records as stored. The writer (segment-writer.ts) and
 * retention (segment-retention.ts) change them; everything reads through here.
 */
export class SegmentFiles {
  /** One tile store per stream, kept: it remembers the partial tiles it wrote. */
  private readonly tileStores = new Map<string, SegmentTileStore>();

  constructor(readonly dir: string) {}

  /** The stream's tiles (tiles-segment.ts), under `tile/` in its directory. */
  tiles(streamId: string): SegmentTileStore {
    let store = this.tileStores.get(streamId);
    if (!store) {
      store = new SegmentTileStore(this.streamDir(streamId), (from, to) => this.leafHashes(streamId, from, to));
      this.tileStores.set(streamId, store);
    }
    return store;
  }

  /**
   * The leaf hashes of the live records at positions [from, to), read from the segment that holds
   * `from` on (each segment's first record says where it starts): what a lost tile is rebuilt from.
   */
  async leafHashes(streamId: string, from: number, to: number): Promise<Buffer[]> {
    const indices = await this.segmentIndices(streamId);
    let start = 0;
    let position = (await this.lastExpired(streamId))?.to ?? 0;
    for (let i = indices.length - 1; i > 0; i--) {
      const first = await firstPosition(this.segmentPath(streamId, indices[i]!));
      if (first !== undefined && first <= from) {
        [start, position] = [i, first];
        break;
      }
    }
    if (from < position) throw ledgerError(LedgerErrorCodes.expired, `stream ${streamId}: the records from position ${from} have expired`);
    const out: Buffer[] = [];
    for (const index of indices.slice(start)) {
      for await (const { line } of readLines(this.segmentPath(streamId, index))) {
        if (!line.endsWith("\n") || position >= to) return finish();
        if (position++ >= from) out.push(leafHash(line.slice(0, -1)));
      }
    }
    return finish();
    function finish(): Buffer[] {
      if (out.length !== to - from)
        throw ledgerError(LedgerErrorCodes.short, `stream ${streamId} holds no records at positions ${from + out.length} to ${to - 1}`);
      return out;
    }
  }

  /** How many records the stream holds (its last whole record's position + 1, expired ones included), read from the end of its last segments. */
  async held(streamId: string): Promise<number> {
    const indices = await this.segmentIndices(streamId);
    for (const index of indices.reverse()) {
      const handle = await open(this.segmentPath(streamId, index), "r").catch(() => undefined);
      if (!handle) continue;
      try {
        const size = (await handle.stat()).size;
        const tail = Buffer.alloc(Math.min(size, 256 * 1024));
        await handle.read(tail, 0, tail.length, size - tail.length);
        const end = tail.lastIndexOf(10);
        if (end < 0) continue;
        const start = tail.lastIndexOf(10, end - 1) + 1;
        const match = /,"position":(\d{1,16}),"prevHash":"[0-9a-f]{64}","recordedAt":"[^"\\]*","streamId":"[A-Za-z0-9_.-]{1,132}"\}$/.exec(
          tail.toString("latin1", start, end),
        );
        // A record this does not read (a long one, an edited one): counted the slow way.
        if (!match) return this.heldByCount(streamId);
        return Number(match[1]) + 1;
      } finally {
        await handle.close();
      }
    }
    return (await this.lastExpired(streamId))?.to ?? 0;
  }

  private async heldByCount(streamId: string): Promise<number> {
    return ((await this.lastExpired(streamId))?.to ?? 0) + (await this.count(streamId));
  }

  streamDir(streamId: string): string {
    if (!STREAM_ID.test(streamId))
      throw ledgerError(LedgerErrorCodes.streamId, `invalid streamId ${JSON.stringify(streamId)}: use [A-Za-z0-9_-]{1,128}, with .<shard> (1-999) for a shard`);
    return join(this.dir, "streams", streamId);
  }

  segmentPath(streamId: string, index = 0): string {
    return join(this.streamDir(streamId), segmentName(index));
  }

  /** The stream's live segment files (not expired), in order. */
  async segments(streamId: string): Promise<string[]> {
    return (await this.segmentIndices(streamId)).map((index) => this.segmentPath(streamId, index));
  }

  /** The indices of the stream's segments after `expired` (default: its last expired range), in order. */
  async segmentIndices(streamId: string, expired?: ExpiredRange): Promise<number[]> {
    const last = expired ?? (await this.lastExpired(streamId));
    const names = await readdir(this.streamDir(streamId)).catch(() => [] as string[]);
    return names
      .map((n) => SEGMENT_FILE.exec(n)?.[1])
      .filter((n): n is string => n !== undefined)
      .map(Number)
      .filter((index) => last === undefined || index > last.segment)
      .sort((a, b) => a - b);
  }

  async streams(): Promise<string[]> {
    const names = await readdir(join(this.dir, "streams")).catch(() => [] as string[]);
    return names.filter((n) => STREAM_ID.test(n)).sort();
  }

  /** The runs of records removed by retention, oldest first; they are always the stream's start. */
  async expiredRanges(streamId: string): Promise<ExpiredRange[]> {
    const text = await readFile(join(this.streamDir(streamId), EXPIRED), "utf8").catch(() => "");
    return text
      .split("\n")
      .filter(Boolean)
      .map((l) => parseWith(ExpiredRangeSchema, JSON.parse(l), `${EXPIRED} of stream ${streamId}`));
  }

  async lastExpired(streamId: string): Promise<ExpiredRange | undefined> {
    return (await this.expiredRanges(streamId)).at(-1);
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
   * The checkpoints of sizes `from` and `to` (undefined: the latest), the only lines parsed (a
   * long stream has thousands); undefined when either is missing, for the caller to read them all.
   */
  async checkpointsOfSizes(streamId: string, from: number, to: number | undefined): Promise<Checkpoint[] | undefined> {
    const lines = (await readFile(join(this.streamDir(streamId), CHECKPOINTS), "utf8").catch(() => "")).split("\n").filter(Boolean);
    const sized = (n: number) => lines.find((l) => /"treeSize":(\d+)/.exec(l)?.[1] === String(n));
    const first = sized(from);
    const last = to === undefined ? lines.at(-1) : sized(to);
    if (!first || !last) return undefined;
    return [first, last].map((l) => CheckpointSchema.parse(JSON.parse(l)));
  }

  /**
   * The stream's last signed checkpoint, read from the end of its file alone: a long stream has
   * thousands, and a proof wants the latest only.
   */
  async latestCheckpoint(streamId: string): Promise<Checkpoint | undefined> {
    const handle = await open(join(this.streamDir(streamId), CHECKPOINTS), "r").catch(() => undefined);
    if (!handle) return undefined;
    try {
      const size = (await handle.stat()).size;
      const tail = Buffer.alloc(Math.min(size, 64 * 1024));
      await handle.read(tail, 0, tail.length, size - tail.length);
      const end = tail.lastIndexOf(10);
      const start = end < 0 ? -1 : tail.lastIndexOf(10, end - 1);
      // A line longer than what was read (or a file being repaired): read it whole.
      if (end < 0 || (start < 0 && tail.length < size)) return (await this.checkpoints(streamId)).at(-1);
      return CheckpointSchema.parse(JSON.parse(tail.toString("utf8", start + 1, end)));
    } finally {
      await handle.close();
    }
  }

  /** The record at a known place, read alone. */
  async readLocated(streamId: string, at: Located): Promise<LedgerRecord> {
    return JSON.parse(await this.readLocatedText(streamId, at)) as LedgerRecord;
  }

  /** The stored text (with its line end) at a known place, read alone. */
  async readLocatedText(streamId: string, at: Located): Promise<string> {
    const handle = await open(this.segmentPath(streamId, at.segment), "r");
    try {
      const buffer = Buffer.alloc(at.length);
      const { bytesRead } = await handle.read(buffer, 0, at.length, at.offset);
      return buffer.toString("utf8", 0, bytesRead);
    } finally {
      await handle.close();
    }
  }

  /** A stream's live records as stored (each with its line end), in order: those after `expired` (default: its last expired range). */
  async *texts(streamId: string, expired?: ExpiredRange): AsyncGenerator<string> {
    for (const index of await this.segmentIndices(streamId, expired)) {
      // Whole lines only: an unterminated last one is an append under way, or torn (its writer cuts it).
      for await (const { line } of readLines(this.segmentPath(streamId, index))) if (line.endsWith("\n")) yield line;
    }
  }

  /** The same as bytes, a read's worth at a time (the last line may be unterminated). */
  async *lineBatches(streamId: string, expired: ExpiredRange | undefined): AsyncGenerator<Buffer[]> {
    for (const index of await this.segmentIndices(streamId, expired)) yield* readLineBatches(this.segmentPath(streamId, index));
  }

  /** The stream's whole live records, counted by their line ends without parsing them. */
  async count(streamId: string): Promise<number> {
    let n = 0;
    for (const path of await this.segments(streamId)) {
      for await (const chunk of createReadStream(path) as AsyncIterable<Buffer>) {
        for (let at = chunk.indexOf(10); at !== -1; at = chunk.indexOf(10, at + 1)) n += 1;
      }
    }
    return n;
  }

  /** Torn tails cut off when a stream was opened for writing, oldest first. */
  async repairs(): Promise<TornTailRepair[]> {
    const text = await readFile(join(this.dir, REPAIRS), "utf8").catch(() => "");
    // Up to the last whole line: a repair being written as the disk filled is not one yet.
    return text
      .slice(0, text.lastIndexOf("\n") + 1)
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l) as TornTailRepair);
  }
}
