import { open, stat } from "node:fs/promises";
import type { LedgerRecord } from "@auditgraph/core";
import { LedgerErrorCodes, ledgerError } from "./errors.js";

/** Where one stream's records are, by trace: [segment, byte offset, byte length] triples, flat. */
interface StreamIndex {
  /** The first live segment when built: retention removing segments makes it stale. */
  firstSegment: number;
  /** How far the segments have been read: whole lines only. */
  segment: number;
  offset: number;
  byTrace: Map<string, number[]>;
}

type LineReader = (path: string, start: number) => AsyncGenerator<{ line: string; length: number }>;

/**
 * A reader's index of a segment-file stream by trace id, so that reading a trace costs its own
 * records rather than a scan of the stream. Each line is read once: every lookup first catches
 * up from where the last one stopped (other processes append to the same files), and a stream
 * whose first segments were expired is indexed again. Lookups of one stream take turns.
 */
export class TraceIndex {
  private readonly streams = new Map<string, StreamIndex>();
  private readonly turns = new Map<string, Promise<unknown>>();

  constructor(private readonly readLines: LineReader) {}

  read(streamId: string, traceId: string, segments: number[], pathOf: (segment: number) => string): Promise<LedgerRecord[]> {
    const run = (this.turns.get(streamId) ?? Promise.resolve()).then(async () => {
      const found = await readTriples(traceId, (await this.caughtUp(streamId, segments, pathOf)).byTrace.get(traceId) ?? [], pathOf);
      if (found) return found;
      // Lines it had read were cut since (a writer's short write on a full disk is truncated): read the stream again.
      this.streams.delete(streamId);
      const again = await readTriples(traceId, (await this.caughtUp(streamId, segments, pathOf)).byTrace.get(traceId) ?? [], pathOf);
      if (!again) throw ledgerError(LedgerErrorCodes.traceMoved, `stream ${streamId}: the records of trace ${traceId} moved while they were read; read again`);
      return again;
    });
    this.turns.set(
      streamId,
      run.catch(() => undefined),
    );
    return run;
  }

  private async caughtUp(streamId: string, segments: number[], pathOf: (segment: number) => string): Promise<StreamIndex> {
    let index = this.streams.get(streamId);
    const first = segments[0] ?? 0;
    // A segment shorter than what was read of it was cut (a short write rolled back): read it all again.
    const cut =
      index !== undefined &&
      (await stat(pathOf(index.segment)).then(
        (s) => s.size < index!.offset,
        () => true,
      ));
    if (!index || index.firstSegment !== first || cut) {
      index = { firstSegment: first, segment: first, offset: 0, byTrace: new Map() };
      this.streams.set(streamId, index);
    }
    for (const segment of segments.filter((s) => s >= index.segment)) {
      let offset = segment === index.segment ? index.offset : 0;
      for await (const { line, length } of this.readLines(pathOf(segment), offset)) {
        // An unterminated last line is an append under way (or torn, and cut by its writer): read it next time.
        if (!line.endsWith("\n")) break;
        const traceId = (JSON.parse(line) as LedgerRecord).event.traceId;
        let triples = index.byTrace.get(traceId);
        if (!triples) index.byTrace.set(traceId, (triples = []));
        triples.push(segment, offset, length);
        offset += length;
      }
      index.segment = segment;
      index.offset = offset;
    }
    return index;
  }
}

/** The records at the triples, or undefined when one is not a whole record of that trace any more. */
async function readTriples(traceId: string, triples: number[], pathOf: (segment: number) => string): Promise<LedgerRecord[] | undefined> {
  const out: LedgerRecord[] = [];
  for (let i = 0; i < triples.length; ) {
    const segment = triples[i]!;
    // Gone (expired since it was read): the index is stale.
    const handle = await open(pathOf(segment), "r").catch(() => undefined);
    if (!handle) return undefined;
    try {
      for (; i < triples.length && triples[i] === segment; i += 3) {
        const buffer = Buffer.alloc(triples[i + 2]!);
        const { bytesRead } = await handle.read(buffer, 0, buffer.length, triples[i + 1]!);
        if (bytesRead !== buffer.length || buffer[buffer.length - 1] !== 10) return undefined;
        let record: LedgerRecord;
        try {
          record = JSON.parse(buffer.toString("utf8")) as LedgerRecord;
        } catch {
          return undefined;
        }
        if (record.event.traceId !== traceId) return undefined;
        out.push(record);
      }
    } finally {
      await handle.close();
    }
  }
  return out;
}
