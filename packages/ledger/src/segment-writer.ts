import { mkdir, open, stat, truncate, type FileHandle } from "node:fs/promises";
import { join } from "node:path";
import { appendSynced, lockDir, lockWanted, type LedgerRecord } from "@auditgraph/core";
import { StreamTail } from "./chain.js";
import { readLines } from "./line-reader.js";
import { CHECKPOINTS, REPAIRS, type Located, type SegmentFiles, type SegmentLedgerOptions } from "./segment-files.js";
import type { TornTailRepair } from "./types.js";
import { TileAppender, TileReader } from "./tiles-tree.js";

/** A stream's writer lease: the lock, and the open segment and checkpoint files. */
/** How often a writer busy appending writes the tiles of its appends. */
const TILES_EVERY_MS = 1000;
/** How often an idle lease looks for a writer waiting for it. */
const IDLE_LOOK_MS = 10;

export interface Lease {
  release: () => Promise<void>;
  segment: FileHandle;
  checkpoints?: FileHandle;
  idle?: NodeJS.Timeout;
  /** Set when the lock was lost while held: nothing more may be written under it. */
  lost?: Error;
}

/** What this process knows of a stream's files, refreshed when it takes the writer lease. */
export interface StreamState {
  tail: StreamTail;
  /** The segment appends go to, and how far this process has read it. */
  segment: number;
  size: number;
  byEventId: Map<string, Located>;
  /** The tiles appends add (undefined with tiles off, or until they could be read). */
  tiles?: TileAppender;
  /** When this writer last wrote the tiles of its appends (ms since the epoch). */
  tilesAt?: number;
  /** Held while this process is the stream's writer. */
  lease?: Lease;
}

/**
 * The writer side of a segment ledger: one writer per stream at a time, by a lock file (a lease)
 * that is kept across batches, so the batches that follow cost one write and one fsync; it is
 * given up after `leaseIdleMs` without work, or on `close()`. Another process waits for it (then
 * first reads what was appended meanwhile), and after `lockWaitMs` gets an error naming the
 * holder: never a fork of the chain. Work on one stream in this process takes turns.
 */
export class SegmentWriter {
  private readonly states = new Map<string, StreamState>();
  /** Work (and lease ends) of one stream in this process, one after another. */
  private readonly turns = new Map<string, Promise<unknown>>();

  constructor(
    private readonly files: SegmentFiles,
    private readonly options: SegmentLedgerOptions,
  ) {}

  private inTurn<T>(streamId: string, work: () => Promise<T>): Promise<T> {
    const run = (this.turns.get(streamId) ?? Promise.resolve()).then(work, work);
    this.turns.set(
      streamId,
      run.catch(() => undefined),
    );
    return run;
  }

  /**
   * Runs `work` in the stream's turn, holding its writer lease and caught up with its files. The
   * lease is kept for `leaseIdleMs` after; if `work` fails, this process's view of the files may
   * be ahead of them, so the lease is given up and the stream read afresh next time.
   */
  withLease<T>(streamId: string, work: (state: StreamState, lease: Lease) => Promise<T>): Promise<T> {
    return this.inTurn(streamId, async () => {
      const state = await this.lease(streamId);
      const lease = state.lease!;
      clearTimeout(lease.idle);
      try {
        const result = await work(state, lease);
        // Another writer waits (another worker on this stream's shard): it gets the stream now, not after the lease's idle time.
        if (lockWanted(this.files.streamDir(streamId), "writer")) await this.endLease(streamId);
        else this.idleUntil(streamId, lease, Date.now() + (this.options.leaseIdleMs ?? 250));
        return result;
      } catch (error) {
        // Its tiles may hold leaves of records that never reached the file: not to be written.
        state.tiles = undefined;
        await this.endLease(streamId);
        this.states.delete(streamId);
        throw error;
      }
    });
  }

  /** Keeps the idle lease until `until`, or until another writer waits for it (looked at every 10 ms, one `stat`). */
  private idleUntil(streamId: string, lease: Lease, until: number): void {
    const wait = Math.min(IDLE_LOOK_MS, until - Date.now());
    lease.idle = setTimeout(
      () => {
        if (Date.now() < until && !lockWanted(this.files.streamDir(streamId), "writer")) this.idleUntil(streamId, lease, until);
        else void this.inTurn(streamId, () => this.endLease(streamId));
      },
      Math.max(0, wait),
    ).unref();
  }

  /** Takes the stream's writer lock (if this process does not hold it) and catches up with the files. */
  private async lease(streamId: string): Promise<StreamState> {
    const held = this.states.get(streamId);
    if (held?.lease) return held;
    const dir = this.files.streamDir(streamId);
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
      state.lease = { release, segment: await openSegment(this.files.segmentPath(streamId, state.segment), dir), ...(lost.error ? { lost: lost.error } : {}) };
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
    // The tiles held back while appends came: written now the stream goes idle.
    await this.flushTiles(streamId, state, true);
    await lease.segment.close().catch(() => undefined);
    await lease.checkpoints?.close().catch(() => undefined);
    await lease.release().catch(() => undefined);
  }

  /** Gives up every stream this process writes (their locks and open files). */
  async close(): Promise<void> {
    await Promise.all([...this.states.keys()].map((streamId) => this.inTurn(streamId, () => this.endLease(streamId))));
  }

  /** Closes the lease's segment and opens the next one (the current one is full). */
  async nextSegment(streamId: string, state: StreamState, lease: Lease): Promise<void> {
    state.segment += 1;
    state.size = 0;
    await lease.segment.close();
    lease.segment = await openSegment(this.files.segmentPath(streamId, state.segment), this.files.streamDir(streamId));
  }

  /** The lease's checkpoint file, opened for appending on first use. */
  async checkpointFile(streamId: string, lease: Lease): Promise<FileHandle> {
    lease.checkpoints ??= await open(join(this.files.streamDir(streamId), CHECKPOINTS), "a");
    return lease.checkpoints;
  }

  /** The place of a record this process has seen appended or read as the stream's writer. */
  located(streamId: string, eventId: string): Located | undefined {
    return this.states.get(streamId)?.byEventId.get(eventId);
  }

  /**
   * The stream's tile appender, opened at its current size if it is not (its edge read from the
   * tiles, and whatever of it a crash lost rebuilt from the records); undefined if tiles are off
   * or cannot be had (then proofs rebuild what they need, or rehash as before).
   */
  async tiles(streamId: string, state: StreamState): Promise<TileAppender | undefined> {
    if (this.options.tiles === false) return undefined;
    if (!state.tiles) {
      const firstLive = (await this.files.lastExpired(streamId))?.to ?? 0;
      state.tiles = await TileAppender.open(new TileReader(this.files.tiles(streamId), firstLive), state.tail.nextPosition).catch(() => undefined);
    }
    return state.tiles;
  }

  /**
   * Writes the tiles the records taken in since the last call made. `replace`: they are this
   * writer's appends (a partial tile replaces the narrower one); else records read at catch-up,
   * whose tiles are written only where the store lacks them. A failure is not the append's: the records are on disk, and the
   * tiles are opened afresh (and rebuilt) at the next append.
   */
  async flushTiles(streamId: string, state: StreamState, replace: boolean): Promise<void> {
    const tiles = state.tiles?.take();
    if (!tiles || tiles.length === 0) return;
    await this.files
      .tiles(streamId)
      .write(tiles, replace)
      .catch(() => {
        state.tiles = undefined;
      });
  }

  /**
   * The tiles of appends: written at most once a second while appends keep coming, and when the
   * lease ends. Every file made between two fsyncs of the segment is journalled by the next one
   * (ext4 commits it with the segment's), which for each batch would cost about as much as the
   * fsync itself; once a second it costs next to nothing. Meanwhile a proof in this process
   * reads the tiles not yet written from the writer (`held`), and one elsewhere rebuilds them
   * from the records.
   */
  async flushAppended(streamId: string, state: StreamState): Promise<void> {
    const now = Date.now();
    if (now - (state.tilesAt ?? 0) < TILES_EVERY_MS) return;
    state.tilesAt = now;
    await this.flushTiles(streamId, state, true);
  }

  /** Tile (level, index) as this process's writer of the stream holds it and has not written yet. */
  held(streamId: string, level: number, index: number): Buffer | undefined {
    return this.states.get(streamId)?.tiles?.held(level, index);
  }

  /** Brings this process's view of a stream up to what is on disk (other writers' appends too). */
  private async catchUp(streamId: string): Promise<StreamState> {
    let state = this.states.get(streamId);
    if (!state) {
      const expired = await this.files.lastExpired(streamId);
      const tail = new StreamTail(streamId, (await this.files.checkpoints(streamId)).at(-1), expired);
      state = { tail, segment: expired ? expired.segment + 1 : 0, size: 0, byEventId: new Map() };
      this.states.set(streamId, state);
      // Opened before the records are read, and fed each: the tiles a crash (or an older
      // version) left missing are rebuilt as the records go by.
      await this.tiles(streamId, state);
    }
    for (const index of await this.files.segmentIndices(streamId)) {
      if (index < state.segment) continue;
      const path = this.files.segmentPath(streamId, index);
      const start = index === state.segment ? state.size : 0;
      const size = await stat(path).then(
        (st) => st.size,
        () => 0,
      );
      if (size === start && index === state.segment) continue;
      let offset = start;
      for await (const { line, length } of readLines(path, start)) {
        if (!line.endsWith("\n")) {
          // A writer died in the middle of a record: that append never resolved, so its job
          // was never acknowledged and will be delivered again. Cut it off, and say so.
          await truncate(path, offset);
          await this.recordRepair({
            streamId,
            offset,
            bytes: length,
            recordedAt: new Date().toISOString(),
            eventId: /"eventId":"([^"]+)"/.exec(line)?.[1] ?? null,
          });
          break;
        }
        const record = JSON.parse(line) as LedgerRecord;
        state.tiles?.append(state.tail.absorb(line.slice(0, -1), record));
        state.byEventId.set(record.event.eventId, { segment: index, position: record.position, offset, length });
        offset += length;
      }
      state.segment = index;
      state.size = offset;
      await this.flushTiles(streamId, state, false);
    }
    return state;
  }

  /**
   * A checkpoint write cut short (a full disk, a crash) leaves half a line after the last
   * whole one: cut it off, as a torn record is, so that the file parses. The records it would
   * have signed are on disk already; the next batch's checkpoint covers them.
   */
  private async repairCheckpoints(streamId: string): Promise<void> {
    const path = join(this.files.streamDir(streamId), CHECKPOINTS);
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

  private recordRepair(repair: TornTailRepair): Promise<void> {
    return appendSynced(join(this.files.dir, REPAIRS), `${JSON.stringify(repair)}\n`);
  }
}

/** Opens a segment for appending; a new file's directory entry is made durable too. */
async function openSegment(path: string, dir: string): Promise<FileHandle> {
  const existed = await stat(path).then(
    () => true,
    () => false,
  );
  const handle = await open(path, "a");
  if (!existed) {
    const directory = await open(dir, "r");
    await directory.sync().finally(() => directory.close());
  }
  return handle;
}
