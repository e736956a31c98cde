import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import type { LedgerRecord } from "@auditgraph/core";

/**
 * The one line reader of the segment files: a file's lines from a byte offset, as bytes (each
 * with its line end; an unterminated last one without), in batches of what one read gave. Bytes,
 * not text, so a verify hashes them without decoding; a missing file has no lines.
 */
export async function* readLineBatches(path: string, start = 0, chunkBytes = 1 << 20): AsyncGenerator<Buffer[]> {
  const exists = await stat(path).then(
    () => true,
    () => false,
  );
  if (!exists) return;
  let carry: Buffer | undefined;
  for await (const chunk of createReadStream(path, { start, highWaterMark: chunkBytes }) as AsyncIterable<Buffer>) {
    const buffer = carry ? Buffer.concat([carry, chunk]) : chunk;
    const batch: Buffer[] = [];
    let from = 0;
    for (let newline = buffer.indexOf(10); newline !== -1; newline = buffer.indexOf(10, from)) {
      batch.push(buffer.subarray(from, newline + 1));
      from = newline + 1;
    }
    // Copied: the rest of the chunk would otherwise be kept alive (and shared) until the next read.
    carry = from < buffer.length ? Buffer.from(buffer.subarray(from)) : undefined;
    if (batch.length > 0) yield batch;
  }
  if (carry) yield [carry];
}

/**
 * The same lines one at a time, as text with their byte length (what an offset index needs). Reads
 * are smaller by default: these callers often stop early (a range, a first line, one event).
 */
export async function* readLines(path: string, start = 0, chunkBytes = 64 * 1024): AsyncGenerator<{ line: string; length: number }> {
  for await (const batch of readLineBatches(path, start, chunkBytes)) {
    for (const bytes of batch) yield { line: bytes.toString("utf8"), length: bytes.length };
  }
}

/** The position of a segment's first record; undefined when it has no whole, readable one. */
export async function firstPosition(path: string): Promise<number | undefined> {
  for await (const { line } of readLines(path)) {
    try {
      return (JSON.parse(line) as LedgerRecord).position;
    } catch {
      return undefined;
    }
  }
  return undefined;
}
