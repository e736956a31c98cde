import pg from "pg";
import { z } from "zod";
import { parseWith, type AuditEvent, type LedgerRecord } from "@auditgraph/core";
import { CheckpointSchema, type Checkpoint } from "./checkpoint.js";
import { StreamTail, proveConsistencyInStream, proveInStream, verifyStream } from "./chain.js";
import type { ConsistencyBundle, InclusionBundle } from "./proof.js";
import type { SegmentLedgerOptions } from "./segment-ledger.js";
import type { AppendResult, DeadLetter, Ledger, StreamSummary, VerifyReport } from "./types.js";

export const PostgresLedgerConfigSchema = z.object({
  connectionString: z.string().regex(/^postgres(ql)?:\/\//, "must be a postgres:// URL"),
  /** The schema the ledger's tables live in; a plain identifier, since it is spliced into DDL. */
  schema: z
    .string()
    .regex(/^[a-z_][a-z0-9_]{0,62}$/, "must be a lower-case SQL identifier")
    .default("auditgraph"),
});
export type PostgresLedgerConfig = z.input<typeof PostgresLedgerConfigSchema>;

const PAGE = 5_000;

/**
 * The server ledger: the same records, chain, Merkle tree and checkpoints as the segment
 * files, in append-only tables. UPDATE, DELETE and TRUNCATE are refused by triggers, the role
 * `auditgraph_writer` may only INSERT and SELECT, and one writer per stream at a time is
 * enforced by a transaction-scoped advisory lock.
 */
export class PostgresLedger implements Ledger {
  private readonly tails = new Map<string, StreamTail>();
  private readonly t: { records: string; checkpoints: string; deadLetters: string };

  private constructor(
    private readonly pool: pg.Pool,
    readonly schema: string,
    private readonly options: SegmentLedgerOptions,
  ) {
    const q = (name: string) => `"${schema}".${name}`;
    this.t = { records: q("ledger_records"), checkpoints: q("ledger_checkpoints"), deadLetters: q("ledger_dead_letters") };
  }

  /** Connects and applies the schema (idempotent, under an advisory lock so workers may race). */
  static async open(config: PostgresLedgerConfig, options: Omit<SegmentLedgerOptions, "maxSegmentBytes"> = {}): Promise<PostgresLedger> {
    const { connectionString, schema } = parseWith(PostgresLedgerConfigSchema, config, "PostgreSQL ledger config");
    const pool = new pg.Pool({ connectionString, max: 4 });
    const ledger = new PostgresLedger(pool, schema, options);
    await ledger.migrate();
    return ledger;
  }

  private async migrate(): Promise<void> {
    const s = `"${this.schema}"`;
    const client = await this.pool.connect();
    try {
      await client.query("SELECT pg_advisory_lock(hashtext('auditgraph-ledger-migrate'))");
      await client.query(`
        CREATE SCHEMA IF NOT EXISTS ${s};
        CREATE TABLE IF NOT EXISTS ${this.t.records} (
          stream_id   text        NOT NULL,
          position    bigint      NOT NULL,
          event_id    text        NOT NULL,
          trace_id    text        NOT NULL,
          recorded_at timestamptz NOT NULL,
          prev_hash   text        NOT NULL,
          hash        text        NOT NULL,
          -- The canonical JSON exactly as hashed (jsonb would re-order it); jsonb beside it for queries.
          record_text text        NOT NULL,
          record      jsonb       NOT NULL,
          PRIMARY KEY (stream_id, position),
          UNIQUE (stream_id, event_id)
        );
        CREATE INDEX IF NOT EXISTS ledger_records_trace ON ${this.t.records} (trace_id);
        CREATE INDEX IF NOT EXISTS ledger_records_event ON ${this.t.records} (event_id);
        CREATE TABLE IF NOT EXISTS ${this.t.checkpoints} (
          stream_id text   NOT NULL,
          tree_size bigint NOT NULL,
          checkpoint jsonb NOT NULL,
          PRIMARY KEY (stream_id, tree_size)
        );
        CREATE TABLE IF NOT EXISTS ${this.t.deadLetters} (id text PRIMARY KEY, entry jsonb NOT NULL);
        CREATE OR REPLACE FUNCTION ${s}.refuse_change() RETURNS trigger LANGUAGE plpgsql AS $fn$
        BEGIN
          RAISE EXCEPTION 'auditgraph: % on %.% refused: the ledger is append-only', TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME
            USING ERRCODE = 'insufficient_privilege';
        END $fn$;
        CREATE OR REPLACE TRIGGER append_only BEFORE UPDATE OR DELETE ON ${this.t.records} FOR EACH ROW EXECUTE FUNCTION ${s}.refuse_change();
        CREATE OR REPLACE TRIGGER no_truncate BEFORE TRUNCATE ON ${this.t.records} FOR EACH STATEMENT EXECUTE FUNCTION ${s}.refuse_change();
        CREATE OR REPLACE TRIGGER append_only BEFORE UPDATE OR DELETE ON ${this.t.checkpoints} FOR EACH ROW EXECUTE FUNCTION ${s}.refuse_change();
        CREATE OR REPLACE TRIGGER no_truncate BEFORE TRUNCATE ON ${this.t.checkpoints} FOR EACH STATEMENT EXECUTE FUNCTION ${s}.refuse_change();
        DO $do$ BEGIN
          IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'auditgraph_writer') THEN CREATE ROLE auditgraph_writer NOLOGIN; END IF;
        END $do$;
        GRANT USAGE ON SCHEMA ${s} TO auditgraph_writer;
        REVOKE ALL ON ALL TABLES IN SCHEMA ${s} FROM auditgraph_writer;
        GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA ${s} TO auditgraph_writer;
      `);
    } finally {
      await client.query("SELECT pg_advisory_unlock(hashtext('auditgraph-ledger-migrate'))").catch(() => undefined);
      client.release();
    }
  }

  async append(streamId: string, events: AuditEvent[], recordedAt = new Date().toISOString()): Promise<AppendResult> {
    const client = await this.pool.connect();
    try {
      await client.query("BEGIN");
      // One writer per stream at a time, across processes; released with the transaction.
      await client.query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", [streamId]);
      const tail = await this.catchUp(client, streamId);
      const existing = new Map<string, LedgerRecord>();
      const known = await client.query<{ record_text: string }>(
        `SELECT record_text FROM ${this.t.records} WHERE stream_id = $1 AND event_id = ANY($2::text[])`,
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
        const sealed = tail.seal(event, recordedAt);
        existing.set(event.eventId, sealed.record);
        fresh.push(sealed);
        records.push(sealed.record);
      }
      if (fresh.length > 0) {
        await client.query(
          `INSERT INTO ${this.t.records} (stream_id, position, event_id, trace_id, recorded_at, prev_hash, hash, record_text, record)
           SELECT $1, p, e, tr, $2::timestamptz, ph, h, rt, rt::jsonb
           FROM unnest($3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[]) AS u(p, e, tr, ph, h, rt)`,
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
      await client.query("ROLLBACK").catch(() => undefined);
      // Our tail may now be ahead of the table; rebuild it next time.
      this.tails.delete(streamId);
      throw error;
    } finally {
      client.release();
    }
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

  /** A stream's stored texts in position order, each with a line end (as the segment files keep them). */
  private async *texts(streamId: string): AsyncGenerator<string> {
    for (let from = -1; ; ) {
      const rows = await this.pool.query<{ record_text: string; position: string }>(
        `SELECT record_text, position FROM ${this.t.records} WHERE stream_id = $1 AND position > $2 ORDER BY position LIMIT ${PAGE}`,
        [streamId, from],
      );
      for (const row of rows.rows) yield `${row.record_text}\n`;
      if (rows.rows.length < PAGE) return;
      from = Number(rows.rows.at(-1)!.position);
    }
  }

  async *readStream(streamId: string, from = 0, to = Infinity): AsyncGenerator<LedgerRecord> {
    let position = 0;
    for await (const text of this.texts(streamId)) {
      if (position >= to) return;
      if (position++ >= from) yield JSON.parse(text) as LedgerRecord;
    }
  }

  async readEvent(eventId: string): Promise<LedgerRecord | undefined> {
    const rows = await this.pool.query<{ record_text: string }>(`SELECT record_text FROM ${this.t.records} WHERE event_id = $1 ORDER BY stream_id LIMIT 1`, [eventId]);
    return rows.rows[0] && (JSON.parse(rows.rows[0].record_text) as LedgerRecord);
  }

  async readTrace(traceId: string): Promise<LedgerRecord[]> {
    const rows = await this.pool.query<{ record_text: string }>(`SELECT record_text FROM ${this.t.records} WHERE trace_id = $1 ORDER BY stream_id, position`, [traceId]);
    return rows.rows.map((r) => JSON.parse(r.record_text) as LedgerRecord);
  }

  async latestCheckpoint(streamId: string): Promise<Checkpoint | undefined> {
    const rows = await this.pool.query<{ checkpoint: unknown }>(
      `SELECT checkpoint FROM ${this.t.checkpoints} WHERE stream_id = $1 ORDER BY tree_size DESC LIMIT 1`,
      [streamId],
    );
    return rows.rows[0] && CheckpointSchema.parse(rows.rows[0].checkpoint);
  }

  async proveConsistency(streamId: string, fromSize: number, toSize?: number): Promise<ConsistencyBundle> {
    return proveConsistencyInStream(streamId, this.texts(streamId), await this.checkpoints(streamId), fromSize, toSize);
  }

  async streams(): Promise<string[]> {
    const rows = await this.pool.query<{ stream_id: string }>(`SELECT DISTINCT stream_id FROM ${this.t.records} ORDER BY stream_id`);
    return rows.rows.map((r) => r.stream_id);
  }

  async checkpoints(streamId: string, client: pg.Pool | pg.PoolClient = this.pool): Promise<Checkpoint[]> {
    const rows = await client.query<{ checkpoint: unknown }>(
      `SELECT checkpoint FROM ${this.t.checkpoints} WHERE stream_id = $1 ORDER BY tree_size`,
      [streamId],
    );
    return rows.rows.map((r) => CheckpointSchema.parse(r.checkpoint));
  }

  async verify(publicKeyPem?: string, kept: Checkpoint[] = []): Promise<VerifyReport> {
    const streams: StreamSummary[] = [];
    const names = new Set([...(await this.streams()), ...kept.map((c) => c.streamId)]);
    for (const streamId of [...names].sort()) {
      const checkpoints = [...(await this.checkpoints(streamId)), ...kept.filter((c) => c.streamId === streamId)];
      const outcome = await verifyStream(streamId, this.texts(streamId), checkpoints, publicKeyPem, async (position) => {
        const row = await this.pool.query(`SELECT 1 FROM ${this.t.records} WHERE stream_id = $1 AND position = $2`, [streamId, position]);
        return row.rows.length > 0;
      });
      if ("reason" in outcome) return { ok: false, failure: outcome, streams };
      streams.push(outcome);
    }
    return { ok: true, count: streams.reduce((n, s) => n + s.count, 0), streams };
  }

  async prove(eventId: string): Promise<InclusionBundle> {
    const row = await this.pool.query<{ stream_id: string }>(`SELECT stream_id FROM ${this.t.records} WHERE event_id = $1 LIMIT 1`, [eventId]);
    const streamId = row.rows[0]?.stream_id;
    const bundle = streamId ? await proveInStream(eventId, streamId, this.texts(streamId), (await this.checkpoints(streamId)).at(-1)) : undefined;
    if (!bundle) throw new Error(`no event ${eventId} in the ledger`);
    return bundle;
  }

  async deadLetter(entry: DeadLetter): Promise<void> {
    await this.pool.query(`INSERT INTO ${this.t.deadLetters} (id, entry) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING`, [entry.id, JSON.stringify(entry)]);
  }

  async readDeadLetters(): Promise<DeadLetter[]> {
    const rows = await this.pool.query<{ entry: DeadLetter }>(`SELECT entry FROM ${this.t.deadLetters} ORDER BY entry->>'recordedAt', id`);
    return rows.rows.map((r) => r.entry);
  }

  close(): Promise<void> {
    return this.pool.end();
  }
}
