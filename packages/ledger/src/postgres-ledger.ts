import pg from "pg";
import { z } from "zod";
import { parseWith, type StoredEvent, type LedgerRecord } from "@auditgraph/core";
import { inScopeSql, scopeParams } from "./postgres-scope.js";
import { CheckpointSchema, type Checkpoint } from "./checkpoint.js";
import { StreamTail, asLineBatches, proveConsistencyInStream, proveInStream, verifyStream } from "./chain.js";
import { PostgresTiles } from "./tiles-postgres.js";
import type { StreamTiles, TiledLedger, TileStore } from "./tiles-tree.js";
import { proveConsistencyFromTiles, proveInclusionFromTiles } from "./tiles-proofs.js";
import { noEvent, type ConsistencyBundle, type InclusionBundle } from "./proof.js";
import { LedgerErrorCodes, ledgerError } from "./errors.js";
import { initPostgresLedger, readLedgerInfo, type PostgresLedgerInit, type PostgresLedgerInitResult } from "./postgres-schema.js";
import {
  DeadLetterReplaySchema,
  type AppendResult,
  type DeadLetter,
  type DeadLetterReplay,
  type Ledger,
  type LedgerCheckpointOptions,
  type StreamScope,
  type StreamSummary,
  type VerifyFailure,
  type VerifyOptions,
  type VerifyReport,
} from "./types.js";

export const PostgresLedgerConfigSchema = z.object({
  connectionString: z.string().regex(/^postgres(ql)?:\/\//, "must be a postgres:// URL"),
  /** The schema the ledger's tables live in; a plain identifier, since it is spliced into DDL. */
  schema: z
    .string()
    .regex(/^[a-z_][a-z0-9_]{0,62}$/, "must be a lower-case SQL identifier")
    .default("auditgraph"),
});
export type PostgresLedgerConfig = z.input<typeof PostgresLedgerConfigSchema>;

/** What the PostgreSQL ledger takes besides its config: checkpoint signing, and where checkpoints go. */
export type PostgresLedgerOptions = LedgerCheckpointOptions;

const PAGE = 5_000;

/** The worker's clock reading for a batch: it also picks the batch's monthly partition. */
const RecordedAtSchema = z.iso.datetime({ offset: true });

/** A position bound of `readStream`: a record count, so a whole number from 0 up. */
const bound = (name: string, value: number) => {
  if (!(Number.isInteger(value) && value >= 0) && value !== Infinity)
    throw ledgerError(LedgerErrorCodes.readBound, `readStream: ${name} must be a whole number from 0, not ${value}`);
  return Math.min(value, Number.MAX_SAFE_INTEGER);
};

/**
 * The server ledger: the same records, chain, Merkle tree and checkpoints as the segment
 * files, in append-only tables. `auditgraph ledger init` (`PostgresLedger.init`, with an owner's
 * URL) makes them once; the workers then open the ledger as the LOGIN role it makes
 * (`auditgraph_writer` by default), which may only INSERT and SELECT. UPDATE, DELETE and TRUNCATE
 * are refused by triggers too, and one writer per stream at a time is enforced by a
 * transaction-scoped advisory lock.
 *
 * Records are range-partitioned by `recorded_at`, one partition a month, so old months can be
 * archived or moved to cheaper storage as whole tables while the chain stays one stream.
 * PostgreSQL only enforces a unique constraint on a partitioned table if it includes the
 * partition key, so `(stream_id, position)` and `(stream_id, event_id)` are held unique by the
 * small unpartitioned `ledger_index`, written in the same statement and append-only as well.
 * Each record must match its index row (a foreign key over stream, position, time and event id)
 * and is unique on `(stream_id, position, recorded_at)`: two records of one position would need
 * two index rows of that position, so even SQL that bypasses this class can neither fork a
 * chain nor store an event twice.
 *
 * A month's partition is made on demand by `ledger_partition(timestamptz)`, a SECURITY DEFINER
 * function (creating a partition needs the parent's owner; the writer role gets EXECUTE only),
 * under an advisory lock so racing writers make it once. TRUNCATE triggers, unlike row
 * triggers, are not inherited by partitions, so it gives each new partition its own. An append
 * calls it after taking the stream lock and before touching the records: creating a partition
 * locks the parent exclusively until commit, so before the stream lock it would deadlock with
 * a writer holding that lock and waiting for the parent, and after a read two writers would
 * each wait for the other's read lock to go.
 *
 * Values always travel as parameters. DDL cannot take them, so the schema name is spliced in,
 * quoted (and as a literal inside `ledger_partition`), which is safe only because the config
 * schema holds it to `[a-z_][a-z0-9_]*`; partition names and bounds are computed in SQL from
 * the month alone.
 */
export class PostgresLedger implements Ledger, TiledLedger {
  /** Retention and legal holds are kept by the segment-file ledger only. */
  readonly retention = undefined;
  private readonly tails = new Map<string, StreamTail>();
  /** Each stream's tiles and tile appender (beside its tail: dropped with it after a failed append). */
  private readonly tileRows: PostgresTiles;
  private readonly t: { records: string; index: string; checkpoints: string; deadLetters: string; replays: string; partition: string; tiles: string };

  private constructor(
    private readonly pool: pg.Pool,
    readonly schema: string,
    private readonly ledgerId: string,
    private readonly options: PostgresLedgerOptions,
  ) {
    const q = (name: string) => `"${schema}".${name}`;
    this.t = {
      records: q("ledger_records"),
      index: q("ledger_index"),
      checkpoints: q("ledger_checkpoints"),
      deadLetters: q("ledger_dead_letters"),
      replays: q("ledger_dead_letter_replays"),
      partition: q("ledger_partition"),
      tiles: q("ledger_tiles"),
    };
    this.tileRows = new PostgresTiles(pool, this.t);
  }

  /**
   * Connects and reads the ledger's id: no DDL, so the insert-only writer role can open it. A
   * schema that `auditgraph ledger init` has not made (or not brought up to this layout) is
   * refused with a `LedgerNotInitialisedError` that says so.
   */
  static async open(config: PostgresLedgerConfig, options: PostgresLedgerOptions = {}): Promise<PostgresLedger> {
    const { connectionString, schema } = parseWith(PostgresLedgerConfigSchema, config, "PostgreSQL ledger config");
    const pool = new pg.Pool({ connectionString, max: 4 });
    // An idle connection the server closed (a restart, an administrator's terminate) is dropped by
    // the pool, which connects again for the next query: without a listener it would crash the process.
    pool.on("error", () => undefined);
    try {
      return new PostgresLedger(pool, schema, await readLedgerInfo(pool, schema), options);
    } catch (error) {
      await pool.end();
      throw error;
    }
  }

  /** Makes or upgrades the schema and the writer role, with an owner's URL (see `initPostgresLedger`). */
  static init(options: PostgresLedgerInit): Promise<PostgresLedgerInitResult> {
    return initPostgresLedger(options);
  }

  id(): Promise<string> {
    return Promise.resolve(this.ledgerId);
  }

  async append(streamId: string, events: StoredEvent[], recordedAt = new Date().toISOString()): Promise<AppendResult> {
    parseWith(RecordedAtSchema, recordedAt, "recordedAt");
    const client = await this.pool.connect();
    // A connection the server closes while it is checked out fails the query in flight (thrown
    // below) and then emits an error event: listened to here, so it cannot crash the process.
    const ignore = () => undefined;
    client.on("error", ignore);
    let failed: Error | undefined;
    try {
      await client.query("BEGIN");
      // One writer per stream at a time, across processes; released with the transaction.
      await client.query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", [streamId]);
      if (events.length > 0) await client.query(`SELECT ${this.t.partition}($1::timestamptz)`, [recordedAt]);
      const tail = await this.catchUp(client, streamId);
      const tiles = await this.tileRows.appender(client, streamId, tail.nextPosition);
      const existing = new Map<string, LedgerRecord>();
      const known = await client.query<{ record_text: string }>(
        `SELECT r.record_text FROM ${this.t.index} i JOIN ${this.t.records} r USING (stream_id, position, recorded_at)
         WHERE i.stream_id = $1 AND i.event_id = ANY($2::text[])`,
        [streamId, events.map((e) => e.eventId)],
      );
      for (const row of known.rows) {
        const record = JSON.parse(row.record_text) as LedgerRecord;
        existing.set(record.event.eventId, record);
      }
      const records: LedgerRecord[] = [];
      const fresh: { record: LedgerRecord; json: string }[] = [];
      for (const event of events) {
        const seen = existing.get(event.eventId);
        if (seen) {
          records.push(seen);
          continue;
        }
        const { record, bytes, leaf } = tail.seal(event, recordedAt);
        tiles.append(leaf);
        const sealed = { record, json: bytes.toString("utf8") };
        existing.set(event.eventId, record);
        fresh.push(sealed);
        records.push(sealed.record);
      }
      if (fresh.length > 0) {
        await client.query(
          `WITH fresh AS (SELECT * FROM unnest($3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[]) AS u(p, e, tr, ph, h, rt)),
           indexed AS (INSERT INTO ${this.t.index} (stream_id, position, event_id, trace_id, recorded_at) SELECT $1, p, e, tr, $2::timestamptz FROM fresh)
           INSERT INTO ${this.t.records} (stream_id, position, event_id, trace_id, recorded_at, prev_hash, hash, record_text, record)
           SELECT $1, p, e, tr, $2::timestamptz, ph, h, rt, rt::jsonb FROM fresh`,
          [
            streamId,
            recordedAt,
            fresh.map((f) => f.record.position),
            fresh.map((f) => f.record.event.eventId),
            fresh.map((f) => f.record.event.traceId),
            fresh.map((f) => f.record.prevHash),
            fresh.map((f) => f.record.hash),
            fresh.map((f) => f.json),
          ],
        );
      }
      // In the records' transaction: the tiles never lag them, nor run ahead.
      await this.tileRows.store(streamId, client).write(tiles.take(), true);
      let checkpoint: Checkpoint | undefined;
      if (fresh.length > 0 && this.options.signer) {
        checkpoint = tail.sign(this.options.signer);
        await client.query(`INSERT INTO ${this.t.checkpoints} (stream_id, tree_size, checkpoint) VALUES ($1, $2, $3)`, [
          streamId,
          checkpoint.treeSize,
          JSON.stringify(checkpoint),
        ]);
      }
      await client.query("COMMIT");
      if (checkpoint) await this.options.onCheckpoint?.(checkpoint);
      return { records, appended: fresh.length };
    } catch (error) {
      failed = error as Error;
      await client.query("ROLLBACK").catch(() => undefined);
      // Our tail may now be ahead of the table; rebuild it next time.
      this.tails.delete(streamId);
      this.tileRows.forget(streamId);
      throw error;
    } finally {
      client.off("error", ignore);
      // After a failure the connection may be broken: given the error, the pool closes it rather than lending it again.
      client.release(failed);
    }
  }

  /** The stream's tiles as stored (tlog-tiles layout), for serving and export: read them through a `TileReader`, which rebuilds what is missing. */
  tileStore(streamId: string): TileStore {
    return this.tileRows.store(streamId);
  }

  /** The same, as `TiledLedger` gives it (no record of this ledger expires). */
  tiles(streamId: string): Promise<StreamTiles> {
    return Promise.resolve({ store: this.tileStore(streamId), firstLive: 0 });
  }

  private async catchUp(client: pg.PoolClient, streamId: string): Promise<StreamTail> {
    let tail = this.tails.get(streamId);
    if (!tail) {
      tail = new StreamTail(streamId, (await this.checkpoints(streamId, client)).at(-1));
      this.tails.set(streamId, tail);
    }
    for (;;) {
      const rows = await client.query<{ record_text: string; position: string; hash: string }>(
        `SELECT record_text, position, hash FROM ${this.t.records} WHERE stream_id = $1 AND position >= $2 ORDER BY position LIMIT ${PAGE}`,
        [streamId, tail.nextPosition],
      );
      for (const row of rows.rows) tail.absorb(row.record_text, { position: Number(row.position), hash: row.hash });
      if (rows.rows.length < PAGE) return tail;
    }
  }

  /** A stream's stored texts with positions in [from, to), in position order, each with a line end (as the segment files keep them). */
  private async *texts(streamId: string, from = 0, to = Number.MAX_SAFE_INTEGER): AsyncGenerator<string> {
    for (;;) {
      const rows = await this.pool.query<{ record_text: string; position: string }>(
        `SELECT record_text, position FROM ${this.t.records} WHERE stream_id = $1 AND position >= $2 AND position < $3 ORDER BY position LIMIT ${PAGE}`,
        [streamId, from, to],
      );
      for (const row of rows.rows) yield `${row.record_text}\n`;
      if (rows.rows.length < PAGE) return;
      from = Number(rows.rows.at(-1)!.position) + 1;
    }
  }

  async *readStream(streamId: string, from = 0, to = Infinity): AsyncGenerator<LedgerRecord> {
    for await (const text of this.texts(streamId, bound("from", from), bound("to", to))) yield JSON.parse(text) as LedgerRecord;
  }

  async count(streamId: string): Promise<number> {
    const rows = await this.pool.query<{ n: string }>(`SELECT count(*) AS n FROM ${this.t.records} WHERE stream_id = $1`, [streamId]);
    return Number(rows.rows[0]?.n ?? 0);
  }

  /** Records found through the index, whose row gives each record's partition. */
  private async indexed(where: string, value: string, limit = "", scope: StreamScope = {}): Promise<LedgerRecord[]> {
    const rows = await this.pool.query<{ record_text: string }>(
      `SELECT r.record_text FROM ${this.t.index} i JOIN ${this.t.records} r USING (stream_id, position, recorded_at)
       WHERE ${where} = $1 AND ${inScopeSql("i.stream_id", 2)} ORDER BY i.stream_id, i.position ${limit}`,
      [value, ...scopeParams(scope)],
    );
    return rows.rows.map((r) => JSON.parse(r.record_text) as LedgerRecord);
  }

  async readEvent(eventId: string): Promise<LedgerRecord | undefined> {
    return (await this.indexed("i.event_id", eventId, "LIMIT 1"))[0];
  }

  async readTrace(traceId: string, options: StreamScope = {}): Promise<LedgerRecord[]> {
    return this.indexed("i.trace_id", traceId, "", options);
  }

  async latestCheckpoint(streamId: string): Promise<Checkpoint | undefined> {
    const rows = await this.pool.query<{ checkpoint: unknown }>(
      `SELECT checkpoint FROM ${this.t.checkpoints} WHERE stream_id = $1 ORDER BY tree_size DESC LIMIT 1`,
      [streamId],
    );
    return rows.rows[0] && CheckpointSchema.parse(rows.rows[0].checkpoint);
  }

  async proveConsistency(streamId: string, fromSize: number, toSize?: number): Promise<ConsistencyBundle> {
    const checkpoints = await this.checkpoints(streamId);
    const bundle = await proveConsistencyFromTiles(streamId, checkpoints, fromSize, toSize, await this.tileRows.held(streamId), this.tileStore(streamId));
    return bundle ?? proveConsistencyInStream(streamId, this.texts(streamId), checkpoints, fromSize, toSize);
  }

  async streams(): Promise<string[]> {
    const rows = await this.pool.query<{ stream_id: string }>(`SELECT DISTINCT stream_id FROM ${this.t.records} ORDER BY stream_id`);
    return rows.rows.map((r) => r.stream_id);
  }

  async checkpoints(streamId: string, client: pg.Pool | pg.PoolClient = this.pool): Promise<Checkpoint[]> {
    const rows = await client.query<{ checkpoint: unknown }>(`SELECT checkpoint FROM ${this.t.checkpoints} WHERE stream_id = $1 ORDER BY tree_size`, [
      streamId,
    ]);
    return rows.rows.map((r) => CheckpointSchema.parse(r.checkpoint));
  }

  async verify(publicKeyPem?: string, kept: Checkpoint[] = [], options: VerifyOptions = {}): Promise<VerifyReport> {
    const streams: StreamSummary[] = [];
    const names = new Set([...(await this.streams()), ...kept.map((c) => c.streamId)]);
    for (const streamId of [...names].sort()) {
      if (options.streamIds && !options.streamIds.includes(streamId)) continue;
      const checkpoints = [...(await this.checkpoints(streamId)), ...kept.filter((c) => c.streamId === streamId)];
      // Read before the records: appends made meanwhile add records, never index rows alone.
      const last = await this.pool.query<{ position: string }>(`SELECT position FROM ${this.t.index} WHERE stream_id = $1 ORDER BY position DESC LIMIT 1`, [
        streamId,
      ]);
      const outcome = await verifyStream(
        streamId,
        asLineBatches(this.texts(streamId)),
        checkpoints,
        publicKeyPem,
        async (position) => {
          const row = await this.pool.query(`SELECT 1 FROM ${this.t.records} WHERE stream_id = $1 AND position = $2`, [streamId, position]);
          return row.rows.length > 0;
        },
        undefined,
        options.onProgress,
      );
      if ("reason" in outcome) return { ok: false, failure: outcome, streams };
      // The index outlives records cut from a stream's end behind the triggers' back.
      const indexed = last.rows[0] ? Number(last.rows[0].position) + 1 : 0;
      if (indexed > outcome.count) {
        const missing = await this.pool.query<{ event_id: string }>(`SELECT event_id FROM ${this.t.index} WHERE stream_id = $1 AND position = $2`, [
          streamId,
          outcome.count,
        ]);
        const detail = `the index holds ${indexed} records; only ${outcome.count} remain`;
        const failure: VerifyFailure = { streamId, position: outcome.count, eventId: missing.rows[0]?.event_id ?? null, reason: "truncated", detail };
        return { ok: false, failure, streams };
      }
      streams.push(outcome);
    }
    return { ok: true, count: streams.reduce((n, s) => n + s.count, 0), streams };
  }

  async prove(eventId: string, options: StreamScope = {}): Promise<InclusionBundle> {
    const row = await this.pool.query<{ stream_id: string }>(
      `SELECT stream_id FROM ${this.t.index} WHERE event_id = $1 AND ${inScopeSql("stream_id", 2)} ORDER BY stream_id LIMIT 1`,
      [eventId, ...scopeParams(options)],
    );
    const streamId = row.rows[0]?.stream_id;
    if (!streamId) throw noEvent(eventId);
    const latest = (await this.checkpoints(streamId)).at(-1);
    const found = await this.tileRows.find(streamId, eventId);
    const fromTiles = found && (await proveInclusionFromTiles(eventId, streamId, found, latest, this.tileStore(streamId)));
    if (fromTiles) return fromTiles;
    const bundle = await proveInStream(eventId, streamId, this.texts(streamId), latest);
    if (!bundle) throw noEvent(eventId);
    return bundle;
  }

  async deadLetter(entry: DeadLetter): Promise<void> {
    await this.pool.query(`INSERT INTO ${this.t.deadLetters} (id, entry) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING`, [entry.id, JSON.stringify(entry)]);
  }

  async readDeadLetters(): Promise<DeadLetter[]> {
    const rows = await this.pool.query<{ entry: DeadLetter }>(`SELECT entry FROM ${this.t.deadLetters} ORDER BY entry->>'recordedAt', id`);
    return rows.rows.map((r) => r.entry);
  }

  async recordDeadLetterReplay(replay: DeadLetterReplay): Promise<void> {
    const checked = parseWith(DeadLetterReplaySchema, replay, "dead-letter replay");
    await this.pool.query(`INSERT INTO ${this.t.replays} (entry) VALUES ($1)`, [JSON.stringify(checked)]);
  }

  async readDeadLetterReplays(): Promise<DeadLetterReplay[]> {
    const rows = await this.pool.query<{ entry: unknown }>(`SELECT entry FROM ${this.t.replays} ORDER BY n`);
    return rows.rows.map((r, i) => parseWith(DeadLetterReplaySchema, r.entry, `dead-letter replay ${i + 1}`));
  }

  close(): Promise<void> {
    return this.pool.end();
  }
}
