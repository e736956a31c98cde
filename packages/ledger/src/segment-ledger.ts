import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { appendSynced, parseWith, type StoredEvent, type LedgerRecord } from "@auditgraph/core";
import {
  DeadLetterReplaySchema,
  type AppendResult,
  type DeadLetter,
  type DeadLetterReplay,
  type Ledger,
  type StreamScope,
  type StreamSummary,
  type TornTailRepair,
  inScope,
  type VerifyOptions,
  type VerifyReport,
} from "./types.js";
import type { Checkpoint } from "./checkpoint.js";
import { proveConsistencyInStream, proveInStream, verifyStream } from "./chain.js";
import { LedgerErrorCodes, ledgerError } from "./errors.js";
import { noEvent, type ConsistencyBundle, type InclusionBundle } from "./proof.js";
import { segmentLedgerId } from "./ledger-id.js";
import { firstPosition, readLines } from "./line-reader.js";
import { TraceIndex } from "./trace-index.js";
import { SegmentFiles, type SegmentLedgerOptions } from "./segment-files.js";
import { SegmentWriter } from "./segment-writer.js";
import { SegmentRetention } from "./segment-retention.js";
import type { ExpiredRange } from "./retention.js";
import { proveConsistencyFromTiles, proveInclusionFromTiles, type FoundRecord } from "./tiles-proofs.js";
import type { StreamTiles, TiledLedger, TileStore } from "./tiles-tree.js";

export type { SegmentLedgerOptions } from "./segment-files.js";

const REPLAYS = "dead-letter-replays.jsonl";
const DEAD_LETTERS = "dead-letter.jsonl";
const NEWLINE = Buffer.from("\n");

/**
 * The embedded ledger: one directory per stream, each an append-only file of canonical JSON
 * records, one a line, split into segments of `maxSegmentBytes`. Writing is the writer's
 * (segment-writer.ts: one lease per stream), reading the files' (segment-files.ts), and
 * retention and legal holds are `retention` (segment-retention.ts).
 */
export class SegmentLedger implements Ledger, TiledLedger {
  /** Retention and legal holds: the segment files keep them. */
  readonly retention: SegmentRetention;
  private readonly files: SegmentFiles;
  private readonly writer: SegmentWriter;
  /** Traces by id, read once per line and caught up on each lookup (a console reads traces often). */
  private readonly traceIndex = new TraceIndex(readLines);
  private ledgerId?: Promise<string>;
  private deadLetterIds: Set<string> | undefined;

  constructor(
    readonly dir: string,
    private readonly options: SegmentLedgerOptions = {},
  ) {
    this.files = new SegmentFiles(dir);
    this.writer = new SegmentWriter(this.files, options);
    this.retention = new SegmentRetention(this.files, this.writer);
  }

  /** The ledger's id, from `ledger.json` in its directory; made (with the directory) by the first append or the first ask. */
  id(): Promise<string> {
    this.ledgerId ??= segmentLedgerId(this.dir).catch((error: unknown) => {
      this.ledgerId = undefined;
      throw error;
    });
    return this.ledgerId;
  }

  /** The path of one of the stream's segment files (for tools and tests that look at the files). */
  segmentPath(streamId: string, index = 0): string {
    return this.files.segmentPath(streamId, index);
  }

  /** The stream's live segment files (not expired), in order. */
  segments(streamId: string): Promise<string[]> {
    return this.files.segments(streamId);
  }

  /** Torn tails cut off when a stream was opened for writing, oldest first. */
  repairs(): Promise<TornTailRepair[]> {
    return this.files.repairs();
  }

  async append(streamId: string, events: StoredEvent[], recordedAt = new Date().toISOString()): Promise<AppendResult> {
    // A bad stream id is refused before anything is made, the ledger's id included.
    this.files.streamDir(streamId);
    // The ledger is named when it is created, before its first record.
    await this.id();
    return this.writer.withLease(streamId, async (state, lease) => {
      if (lease.lost)
        throw ledgerError(LedgerErrorCodes.lockLost, `stream ${streamId}: the writer lock was lost (${lease.lost.message}); not appending`, {
          cause: lease.lost,
        });
      if (state.size >= (this.options.maxSegmentBytes ?? 64 * 1024 * 1024)) await this.writer.nextSegment(streamId, state, lease);
      const tiles = await this.writer.tiles(streamId, state);
      const records: LedgerRecord[] = [];
      const fresh: Buffer[] = [];
      const pending = new Map<string, LedgerRecord>();
      let appended = 0;
      let offset = state.size;
      for (const event of events) {
        const stored = state.byEventId.get(event.eventId);
        const known = pending.get(event.eventId) ?? (stored && (await this.files.readLocated(streamId, stored)));
        if (known) {
          records.push(known);
          continue;
        }
        const { record, bytes, leaf } = state.tail.seal(event, recordedAt);
        tiles?.append(leaf);
        const length = bytes.length + 1;
        fresh.push(bytes, NEWLINE);
        appended += 1;
        pending.set(event.eventId, record);
        state.byEventId.set(event.eventId, { segment: state.segment, position: record.position, offset, length });
        offset += length;
        records.push(record);
      }
      if (fresh.length === 0) return { records, appended };
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
      // Before the checkpoint (when they are written at all: see flushAppended).
      await this.writer.flushAppended(streamId, state);
      if (this.options.signer) {
        const checkpoint = state.tail.sign(this.options.signer);
        const file = await this.writer.checkpointFile(streamId, lease);
        await file.appendFile(`${JSON.stringify(checkpoint)}\n`);
        await file.sync();
        await this.options.onCheckpoint?.(checkpoint);
      }
      return { records, appended };
    });
  }

  /** Gives up every stream this process writes (their locks and open files). */
  close(): Promise<void> {
    return this.writer.close();
  }

  streams(): Promise<string[]> {
    return this.files.streams();
  }

  /** The stream's live records, counted by their line ends without parsing them (a rebuild's progress total). */
  count(streamId: string): Promise<number> {
    return this.files.count(streamId);
  }

  async *readStream(streamId: string, from = 0, to = Infinity): AsyncGenerator<LedgerRecord> {
    const paths = await this.files.segments(streamId);
    // Positions start after the expired range, if the stream's start has expired.
    let position = (await this.files.lastExpired(streamId))?.to ?? 0;
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
      for await (const { line } of readLines(path)) {
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
      for await (const line of this.files.texts(streamId)) {
        // Most lines are not it: look for the id before parsing.
        if (!line.includes(eventId)) continue;
        const record = JSON.parse(line) as LedgerRecord;
        if (record.event.eventId === eventId) return record;
      }
    }
    return undefined;
  }

  async readTrace(traceId: string, options: StreamScope = {}): Promise<LedgerRecord[]> {
    const out: LedgerRecord[] = [];
    for (const streamId of (await this.streams()).filter((s) => inScope(s, options)))
      out.push(...(await this.traceIndex.read(streamId, traceId, await this.files.segmentIndices(streamId), (i) => this.files.segmentPath(streamId, i))));
    return out;
  }

  /** The stream's signed checkpoints, oldest first. */
  checkpoints(streamId: string): Promise<Checkpoint[]> {
    return this.files.checkpoints(streamId);
  }

  async latestCheckpoint(streamId: string): Promise<Checkpoint | undefined> {
    return this.files.latestCheckpoint(streamId);
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
      const expired = await this.files.lastExpired(streamId);
      const outcome = await verifyStream(
        streamId,
        this.files.lineBatches(streamId, expired),
        checkpoints,
        publicKeyPem,
        (p) => this.positionLater(streamId, p),
        expired,
        options.onProgress,
      );
      if ("reason" in outcome) return { ok: false, failure: outcome, streams };
      streams.push(outcome);
    }
    return { ok: true, count: streams.reduce((n, s) => n + s.count, 0), streams };
  }

  /** Whether a record with `position` is somewhere in the stream (a reorder rather than a gap). */
  private async positionLater(streamId: string, position: number): Promise<boolean> {
    for await (const line of this.files.texts(streamId)) {
      try {
        if ((JSON.parse(line) as LedgerRecord).position === position) return true;
      } catch {
        // an unparseable line says nothing about positions
      }
    }
    return false;
  }

  async proveConsistency(streamId: string, fromSize: number, toSize?: number): Promise<ConsistencyBundle> {
    const expired = await this.files.lastExpired(streamId);
    // The two checkpoints asked for; all of them only when one is missing (the error names them all).
    const checkpoints = (await this.files.checkpointsOfSizes(streamId, fromSize, toSize)) ?? (await this.checkpoints(streamId));
    if (this.options.tiles !== false) {
      const held = await this.files.held(streamId);
      const bundle = await proveConsistencyFromTiles(streamId, checkpoints, fromSize, toSize, held, this.tileStore(streamId), expired);
      if (bundle) return bundle;
    }
    return proveConsistencyInStream(streamId, this.files.texts(streamId, expired), checkpoints, fromSize, toSize, expired);
  }

  /**
   * The record of `eventId`, its RFC 9162 inclusion proof and the latest checkpoint that covers
   * it: everything a third party needs to check it with the public key alone. The proof is read
   * from the stream's tiles; the records are rehashed only when tiles cannot give it.
   */
  async prove(eventId: string, options: StreamScope = {}): Promise<InclusionBundle> {
    for (const streamId of (await this.streams()).filter((s) => inScope(s, options))) {
      const expired = await this.files.lastExpired(streamId);
      const latest = await this.latestCheckpoint(streamId);
      if (this.options.tiles !== false) {
        const found = await this.find(streamId, eventId, expired);
        if (!found) continue;
        const bundle = await proveInclusionFromTiles(eventId, streamId, found, latest, this.tileStore(streamId), expired);
        if (bundle) return bundle;
      }
      const bundle = await proveInStream(eventId, streamId, this.files.texts(streamId, expired), latest, expired);
      if (bundle) return bundle;
    }
    throw noEvent(eventId);
  }

  /** The stream's tiles as stored (tlog-tiles layout), for serving and export: read them through a `TileReader`, which rebuilds what is missing. */
  async tiles(streamId: string): Promise<StreamTiles> {
    return { store: this.tileStore(streamId), firstLive: (await this.files.lastExpired(streamId))?.to ?? 0 };
  }

  /** The stream's tile files, with the tiles this process's writer holds and has not written yet. */
  private tileStore(streamId: string): TileStore {
    const files = this.files.tiles(streamId);
    return {
      read: async (level, index) => {
        const stored = await files.read(level, index);
        const held = this.writer.held(streamId, level, index);
        return held && held.length > (stored?.length ?? 0) ? held : stored;
      },
      write: (tiles, replace) => files.write(tiles, replace),
      leaves: (from, to) => files.leaves(from, to),
    };
  }

  /**
   * A live record by its event id: where this process's writer put it, else by reading the
   * stream (looking for the id in each line before parsing it).
   */
  private async find(streamId: string, eventId: string, expired: ExpiredRange | undefined): Promise<FoundRecord | undefined> {
    const first = expired?.to ?? 0;
    const at = this.writer.located(streamId, eventId);
    if (at && at.position >= first) {
      const text = await this.files.readLocatedText(streamId, at).catch(() => "");
      if (text.endsWith("\n")) {
        const record = JSON.parse(text) as LedgerRecord;
        if (record.event.eventId === eventId && record.position === at.position) return { record, text: text.slice(0, -1), index: at.position };
      }
    }
    let index = first;
    for await (const text of this.files.texts(streamId, expired)) {
      if (text.includes(eventId)) {
        const record = JSON.parse(text) as LedgerRecord;
        if (record.event.eventId === eventId) return { record, text: text.slice(0, -1), index };
      }
      index += 1;
    }
    return undefined;
  }

  async deadLetter(entry: DeadLetter): Promise<void> {
    this.deadLetterIds ??= new Set((await this.readDeadLetters()).map((d) => d.id));
    if (this.deadLetterIds.has(entry.id)) return;
    await mkdir(this.dir, { recursive: true });
    await appendSynced(join(this.dir, DEAD_LETTERS), `${JSON.stringify(entry)}\n`);
    this.deadLetterIds.add(entry.id);
  }

  async readDeadLetters(): Promise<DeadLetter[]> {
    const out: DeadLetter[] = [];
    for await (const { line } of readLines(join(this.dir, DEAD_LETTERS))) out.push(JSON.parse(line) as DeadLetter);
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
    for await (const { line } of readLines(join(this.dir, REPLAYS)))
      if (line.endsWith("\n")) out.push(parseWith(DeadLetterReplaySchema, JSON.parse(line), `${REPLAYS} line ${++n}`));
    return out;
  }
}
