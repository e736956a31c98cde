import type pg from "pg";
import type { LedgerRecord } from "@auditgraph/core";
import { leafHash } from "./merkle-tree.js";
import type { TileData } from "./tiles.js";
import { TileAppender, TileReader, type TileStore } from "./tiles-tree.js";
import type { FoundRecord } from "./tiles-proofs.js";

interface Tables {
  tiles: string;
  records: string;
  index: string;
}

/** The PostgreSQL ledger's tiles: each stream's store, and the appender each stream's appends feed. */
export class PostgresTiles {
  private readonly appenders = new Map<string, TileAppender>();

  constructor(
    private readonly pool: pg.Pool,
    private readonly tables: Tables,
  ) {}

  store(streamId: string, db: pg.Pool | pg.PoolClient = this.pool): PostgresTileStore {
    return new PostgresTileStore(db, this.tables, streamId);
  }

  /** Forgets a stream's appender (after a failed append, its tree may be ahead of the table). */
  forget(streamId: string): void {
    this.appenders.delete(streamId);
  }

  /**
   * The stream's tile appender at `size` records, in the append's transaction: opened at that
   * size the first time (its edge read from the tiles, and whatever a lost or older ledger lacks
   * rebuilt from the records), then fed what other writers appended meanwhile.
   */
  async appender(client: pg.PoolClient, streamId: string, size: number): Promise<TileAppender> {
    let tiles = this.appenders.get(streamId);
    if (tiles && tiles.treeSize < size) {
      const rows = await client.query<{ record_text: string }>(
        `SELECT record_text FROM ${this.tables.records} WHERE stream_id = $1 AND position >= $2 AND position < $3 ORDER BY position`,
        [streamId, tiles.treeSize, size],
      );
      for (const row of rows.rows) tiles.append(leafHash(row.record_text));
      await this.store(streamId, client).write(tiles.take(), true);
    }
    if (!tiles || tiles.treeSize !== size) {
      tiles = await TileAppender.open(new TileReader(this.store(streamId, client)), size);
      this.appenders.set(streamId, tiles);
    }
    return tiles;
  }

  /** How many records the stream holds: its last position + 1. */
  async held(streamId: string): Promise<number> {
    const last = await this.pool.query<{ position: string }>(
      `SELECT position FROM ${this.tables.records} WHERE stream_id = $1 ORDER BY position DESC LIMIT 1`,
      [streamId],
    );
    return last.rows[0] ? Number(last.rows[0].position) + 1 : 0;
  }

  /** A record by its event id, through the index. */
  async find(streamId: string, eventId: string): Promise<FoundRecord | undefined> {
    const found = await this.pool.query<{ record_text: string; position: string }>(
      `SELECT r.record_text, r.position FROM ${this.tables.index} i JOIN ${this.tables.records} r USING (stream_id, position, recorded_at)
       WHERE i.stream_id = $1 AND i.event_id = $2`,
      [streamId, eventId],
    );
    const at = found.rows[0];
    return at && { record: JSON.parse(at.record_text) as LedgerRecord, text: at.record_text, index: Number(at.position) };
  }
}

/**
 * A PostgreSQL-ledger stream's tiles: one row per tile (stream, level, index), its hashes the
 * tile as served (8192 bytes full, fewer partial). Written by the append's transaction, so they
 * never lag the records; a partial tile's row is widened in place, never narrowed.
 */
export class PostgresTileStore implements TileStore {
  constructor(
    private readonly db: pg.Pool | pg.PoolClient,
    private readonly tables: Tables,
    private readonly streamId: string,
  ) {}

  async read(level: number, index: number): Promise<Buffer | undefined> {
    const rows = await this.db.query<{ hashes: Buffer }>(`SELECT hashes FROM ${this.tables.tiles} WHERE stream_id = $1 AND level = $2 AND idx = $3`, [
      this.streamId,
      level,
      index,
    ]);
    const hashes = rows.rows[0]?.hashes;
    return hashes && hashes.length > 0 && hashes.length % 32 === 0 ? hashes : undefined;
  }

  async write(tiles: readonly TileData[], _replace = true): Promise<void> {
    if (tiles.length === 0) return;
    await this.db.query(
      `INSERT INTO ${this.tables.tiles} AS t (stream_id, level, idx, hashes)
       SELECT $1, l, i, h FROM unnest($2::int[], $3::bigint[], $4::bytea[]) AS u(l, i, h)
       ON CONFLICT (stream_id, level, idx) DO UPDATE SET hashes = EXCLUDED.hashes
       WHERE octet_length(t.hashes) < octet_length(EXCLUDED.hashes) OR octet_length(t.hashes) % 32 <> 0`,
      [this.streamId, tiles.map((t) => t.level), tiles.map((t) => t.index), tiles.map((t) => t.hashes)],
    );
  }

  async leaves(from: number, to: number): Promise<Buffer[]> {
    const rows = await this.db.query<{ record_text: string }>(
      `SELECT record_text FROM ${this.tables.records} WHERE stream_id = $1 AND position >= $2 AND position < $3 ORDER BY position`,
      [this.streamId, from, to],
    );
    if (rows.rows.length !== to - from)
      throw new RangeError(`stream ${this.streamId} holds ${rows.rows.length} of the records at positions ${from} to ${to - 1}`);
    return rows.rows.map((r) => leafHash(r.record_text));
  }
}
