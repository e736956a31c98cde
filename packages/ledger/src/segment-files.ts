import { createReadStream } from "node:fs";
import { open, readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { parseWith, type LedgerRecord } from "@auditgraph/core";
import { CheckpointSchema, type Checkpoint } from "./checkpoint.js";
import { LedgerErrorCodes, ledgerError } from "./errors.js";
import { readLineBatches, readLines } from "./line-reader.js";
import { ExpiredRangeSchema, type ExpiredRange } from "./retention.js";
import type { LedgerCheckpointOptions, TornTailRepair } from "./types.js";

export interface SegmentLedgerOptions extends LedgerCheckpointOptions {
  /** A segment file that reaches this size is closed; the next batch starts a new one. */
  maxSegmentBytes?: number;
  /** How long a writer keeps a stream after its last append, so the next batch pays no lock (ms). */
  leaseIdleMs?: number;
  /** How long an append waits for another process's lease on the stream before failing (ms). */
  lockWaitMs?: number;
}

export const SEGMENT_FILE = /^segment-(\d{6})\.jsonl$/;
const segmentName = (index: number) => `segment-${String(index).padStart(6, "0")}.jsonl`;
export const CHECKPOINTS = "checkpoints.jsonl";
export const EXPIRED = "expired.jsonl";
export const REPAIRS = "repairs.jsonl";
const STREAM_ID = /^[A-Za-z0-9_-]{1,128}$/;

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
  constructor(readonly dir: string) {}

  streamDir(streamId: string): string {
    if (!STREAM_ID.test(streamId)) throw ledgerError(LedgerErrorCodes.streamId, `invalid streamId ${JSON.stringify(streamId)}: use [A-Za-z0-9_-]{1,128}`);
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

  /** The record at a known place, read alone. */
  async readLocated(streamId: string, at: Located): Promise<LedgerRecord> {
    const handle = await open(this.segmentPath(streamId, at.segment), "r");
    try {
      const buffer = Buffer.alloc(at.length);
      await handle.read(buffer, 0, at.length, at.offset);
      return JSON.parse(buffer.toString("utf8")) as LedgerRecord;
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
