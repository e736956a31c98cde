import { createHash, createHmac, pbkdf2Sync, randomBytes } from "node:crypto";
import pg from "pg";
import { z } from "zod";
import { AuditgraphError, parseWith } from "@auditgraph/core";
import { LedgerErrorCodes, ledgerError } from "./errors.js";

/** The layout `ledger init` makes; a ledger of another layout is refused at open, naming what to do. */
export const LEDGER_LAYOUT = 3;

const Identifier = z.string().regex(/^[a-z_][a-z0-9_]{0,62}$/, "must be a lower-case SQL identifier");
const PostgresUrl = z.string().regex(/^postgres(ql)?:\/\//, "must be a postgres:// URL");

export const PostgresLedgerInitSchema = z
  .object({
    /** A URL of a role that may create the schema (and, unless it exists, the writer role: CREATEROLE). */
    connectionString: PostgresUrl,
    /** The schema the ledger's tables live in; spliced into DDL, hence a plain identifier. */
    schema: Identifier.default("auditgraph"),
    /** The LOGIN role the workers connect as: INSERT and SELECT only. */
    writerRole: Identifier.default("auditgraph_writer"),
    /** The writer's password, set (as a SCRAM verifier, so the clear text never reaches the server) when given; else left as it is. */
    writerPassword: z.string().min(1, "must not be empty").optional(),
  })
  .strict();
export type PostgresLedgerInit = z.input<typeof PostgresLedgerInitSchema>;

export interface PostgresLedgerInitResult {
  ledgerId: string;
  schema: string;
  writerRole: string;
  /** Whether this run made the ledger (false: it was there, and was brought up to date). */
  created: boolean;
  /** Whether the writer role was made by this run. */
  roleCreated: boolean;
  passwordSet: boolean;
}

/** The schema has no ledger, or one of another layout: `auditgraph ledger init` is what makes or upgrades it. */
export class LedgerNotInitialisedError extends AuditgraphError {
  override name = "LedgerNotInitialisedError";
  constructor(schema: string, why: string, options?: { cause?: unknown }) {
    super(
      // The code from before the AUDITGRAPH_E_ form: operators match it, so it stays.
      "AUDITGRAPH_LEDGER_NOT_INITIALISED",
      `the PostgreSQL ledger in schema "${schema}" ${why}: run \`auditgraph ledger init\` once with an owner's URL (AUDITGRAPH_LEDGER_OWNER_URL or --owner-url), then start the worker with the writer's URL`,
      options,
    );
  }
}

/**
 * A SCRAM-SHA-256 verifier, as `ALTER ROLE ... PASSWORD` stores it: sent instead of the password,
 * it keeps the clear text out of the server's statement logs (what psql's \password does too).
 */
export function scramVerifier(password: string, salt = randomBytes(16), iterations = 4096): string {
  const salted = pbkdf2Sync(Buffer.from(password, "utf8"), salt, iterations, 32, "sha256");
  const hmac = (key: Buffer, text: string) => createHmac("sha256", key).update(text).digest();
  const storedKey = createHash("sha256").update(hmac(salted, "Client Key")).digest();
  return `SCRAM-SHA-256$${iterations}:${salt.toString("base64")}$${storedKey.toString("base64")}:${hmac(salted, "Server Key").toString("base64")}`;
}

/** The ledger id and layout of the schema, read by the writer at open: no DDL, so no privilege it lacks. */
export async function readLedgerInfo(pool: pg.Pool, schema: string): Promise<string> {
  const s = `"${schema}"`;
  let row: { ledger_id: string | null; layout: number | null } | undefined;
  try {
    const result = await pool.query<{ ledger_id: string | null; layout: number | null }>(
      `SELECT (SELECT ledger_id::text FROM ${s}.ledger_info) AS ledger_id, (SELECT max(version) FROM ${s}.ledger_layouts) AS layout`,
    );
    row = result.rows[0];
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    // 3F000 no such schema, 42P01 no such table (an install from before `ledger init`), 42501 no privilege on it.
    if (code === "3F000" || code === "42P01") throw new LedgerNotInitialisedError(schema, "does not exist (or was made before ledger ids)", { cause: error });
    if (code === "42501") throw new LedgerNotInitialisedError(schema, "cannot be read by this role (it was not granted by `ledger init`)", { cause: error });
    throw error;
  }
  if (!row?.ledger_id || row.layout === null) throw new LedgerNotInitialisedError(schema, "has no ledger id");
  if (row.layout < LEDGER_LAYOUT)
    throw new LedgerNotInitialisedError(schema, `has layout ${row.layout}, made by an earlier auditgraph (this one needs ${LEDGER_LAYOUT})`);
  if (row.layout > LEDGER_LAYOUT)
    throw ledgerError(
      LedgerErrorCodes.layoutNewer,
      `the PostgreSQL ledger in schema "${schema}" has layout ${row.layout}, made by a newer auditgraph (this one knows ${LEDGER_LAYOUT}): upgrade this worker`,
    );
  return row.ledger_id;
}

const appendOnly = (s: string, table: string) => `
  CREATE OR REPLACE TRIGGER append_only BEFORE UPDATE OR DELETE ON ${s}.${table} FOR EACH ROW EXECUTE FUNCTION ${s}.refuse_change();
  CREATE OR REPLACE TRIGGER no_truncate BEFORE TRUNCATE ON ${s}.${table} FOR EACH STATEMENT EXECUTE FUNCTION ${s}.refuse_change();`;

/** The tables, triggers and partition function; every statement idempotent. */
const DDL = (schema: string, writer: string) => {
  const s = `"${schema}"`;
  return `
  CREATE SCHEMA IF NOT EXISTS ${s};
  CREATE TABLE IF NOT EXISTS ${s}.ledger_index (
    stream_id   text        NOT NULL,
    position    bigint      NOT NULL,
    event_id    text        NOT NULL,
    trace_id    text        NOT NULL,
    recorded_at timestamptz NOT NULL,
    PRIMARY KEY (stream_id, position),
    -- event id first: also the lookup by event id alone.
    UNIQUE (event_id, stream_id),
    -- What each record's foreign key points at.
    UNIQUE (stream_id, position, recorded_at, event_id)
  );
  CREATE INDEX IF NOT EXISTS ledger_index_trace ON ${s}.ledger_index (trace_id);
  CREATE TABLE IF NOT EXISTS ${s}.ledger_records (
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
    -- Named: an unpartitioned table being migrated still holds ledger_records_pkey.
    CONSTRAINT ledger_records_key PRIMARY KEY (stream_id, position, recorded_at),
    FOREIGN KEY (stream_id, position, recorded_at, event_id) REFERENCES ${s}.ledger_index (stream_id, position, recorded_at, event_id)
  ) PARTITION BY RANGE (recorded_at);
  CREATE TABLE IF NOT EXISTS ${s}.ledger_checkpoints (
    stream_id text   NOT NULL,
    tree_size bigint NOT NULL,
    checkpoint jsonb NOT NULL,
    PRIMARY KEY (stream_id, tree_size)
  );
  -- The Merkle tree as tlog tiles (layout 3): derived from the records (rebuilt from them if lost),
  -- so not append-only: a partial tile's row is widened as the tree grows.
  CREATE TABLE IF NOT EXISTS ${s}.ledger_tiles (
    stream_id text     NOT NULL,
    level     smallint NOT NULL CHECK (level BETWEEN 0 AND 63),
    idx       bigint   NOT NULL CHECK (idx >= 0),
    hashes    bytea    NOT NULL CHECK (octet_length(hashes) BETWEEN 32 AND 8192),
    PRIMARY KEY (stream_id, level, idx)
  );
  CREATE TABLE IF NOT EXISTS ${s}.ledger_dead_letters (id text PRIMARY KEY, entry jsonb NOT NULL);
  CREATE TABLE IF NOT EXISTS ${s}.ledger_dead_letter_replays (n bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, entry jsonb NOT NULL);
  -- One row: the ledger's id, which the graph's projection cursors name.
  CREATE TABLE IF NOT EXISTS ${s}.ledger_info (
    one        boolean     PRIMARY KEY DEFAULT true CHECK (one),
    ledger_id  uuid        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
  );
  CREATE TABLE IF NOT EXISTS ${s}.ledger_layouts (version int PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now());
  CREATE OR REPLACE FUNCTION ${s}.refuse_change() RETURNS trigger LANGUAGE plpgsql AS $fn$
  BEGIN
    RAISE EXCEPTION 'auditgraph: % on %.% refused: the ledger is append-only', TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME
      USING ERRCODE = 'insufficient_privilege';
  END $fn$;
  ${["ledger_records", "ledger_index", "ledger_checkpoints", "ledger_dead_letter_replays", "ledger_info", "ledger_layouts"].map((t) => appendOnly(s, t)).join("")}
  -- The partition name and bounds come from the date alone; UTC and ISO whatever the session's settings.
  CREATE OR REPLACE FUNCTION ${s}.ledger_partition(at timestamptz) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET TimeZone = 'UTC' SET DateStyle = 'ISO'
  AS $fn$
  DECLARE
    month timestamptz := date_trunc('month', at);
    part text := to_char(month, '"ledger_records_y"YYYY"m"MM');
  BEGIN
    -- Catalog queries, not to_regclass: after the lock, a partition another writer just committed is seen.
    IF EXISTS (SELECT 1 FROM pg_tables WHERE schemaname = '${schema}' AND tablename = part) THEN RETURN; END IF;
    PERFORM pg_advisory_xact_lock(hashtext('auditgraph-ledger-partition'), hashtext('${schema}'));
    IF EXISTS (SELECT 1 FROM pg_tables WHERE schemaname = '${schema}' AND tablename = part) THEN RETURN; END IF;
    EXECUTE format('CREATE TABLE %I.%I PARTITION OF %I.ledger_records FOR VALUES FROM (%L) TO (%L)',
      '${schema}', part, '${schema}', month, month + interval '1 month');
    EXECUTE format('CREATE TRIGGER no_truncate BEFORE TRUNCATE ON %I.%I FOR EACH STATEMENT EXECUTE FUNCTION %I.refuse_change()',
      '${schema}', part, '${schema}');
    EXECUTE format('GRANT SELECT, INSERT ON %I.%I TO %I', '${schema}', part, '${writer}');
  END $fn$;
  REVOKE ALL ON FUNCTION ${s}.ledger_partition(timestamptz) FROM PUBLIC;`;
};

/** What the writer may do: read, append, and make a month's partition through the function; nothing else. */
const GRANTS = (schema: string, writer: string) => {
  const s = `"${schema}"`;
  return `
  DO $do$ BEGIN EXECUTE format('GRANT CONNECT ON DATABASE %I TO %I', current_database(), '${writer}'); END $do$;
  REVOKE ALL ON SCHEMA ${s} FROM "${writer}";
  GRANT USAGE ON SCHEMA ${s} TO "${writer}";
  REVOKE ALL ON ALL TABLES IN SCHEMA ${s} FROM "${writer}";
  GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA ${s} TO "${writer}";
  REVOKE INSERT ON ${s}.ledger_info, ${s}.ledger_layouts FROM "${writer}";
  GRANT UPDATE ON ${s}.ledger_tiles TO "${writer}";
  GRANT EXECUTE ON FUNCTION ${s}.ledger_partition(timestamptz) TO "${writer}";`;
};

/**
 * `auditgraph ledger init`: makes (or brings up to date) the ledger's schema, tables, triggers and
 * partition function, gives the ledger its id once, and makes the writer a LOGIN role that may
 * only SELECT and INSERT (and EXECUTE `ledger_partition`). Run with an owner's URL; idempotent,
 * under an advisory lock so that two runs (or a run and a deploy) do not race. An install of the
 * first, unpartitioned `ledger_records` is moved to the partitioned layout in the same transaction.
 */
export async function initPostgresLedger(given: PostgresLedgerInit): Promise<PostgresLedgerInitResult> {
  const { connectionString, schema, writerRole, writerPassword } = parseWith(PostgresLedgerInitSchema, given, "PostgreSQL ledger init options");
  const s = `"${schema}"`;
  const client = new pg.Client({ connectionString });
  await client.connect();
  try {
    await client.query("SELECT pg_advisory_lock(hashtext('auditgraph-ledger-migrate'))");
    await client.query("BEGIN");
    // Roles are the cluster's, not the database's: a run on another database may make it meanwhile.
    const role = await client.query<{ rolcanlogin: boolean }>("SELECT rolcanlogin FROM pg_roles WHERE rolname = $1", [writerRole]);
    const roleCreated = role.rows.length === 0;
    await client.query(`DO $do$ BEGIN CREATE ROLE "${writerRole}" LOGIN NOINHERIT; EXCEPTION WHEN duplicate_object THEN NULL; END $do$`);
    if (!roleCreated && !role.rows[0]!.rolcanlogin) await client.query(`ALTER ROLE "${writerRole}" LOGIN`);
    if (writerPassword) await client.query(`ALTER ROLE "${writerRole}" PASSWORD ${client.escapeLiteral(scramVerifier(writerPassword))}`);
    const found = await client.query<{ relkind: string }>(
      "SELECT c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = 'ledger_records'",
      [schema],
    );
    const unpartitioned = found.rows[0]?.relkind === "r";
    if (unpartitioned) await client.query(`ALTER TABLE ${s}.ledger_records RENAME TO ledger_records_unpartitioned`);
    await client.query(DDL(schema, writerRole));
    if (unpartitioned) {
      const legacy = `${s}.ledger_records_unpartitioned`;
      const columns = "stream_id, position, event_id, trace_id, recorded_at";
      await client.query(`SELECT ${s}.ledger_partition(m) FROM (SELECT DISTINCT date_trunc('month', recorded_at, 'UTC') AS m FROM ${legacy}) AS months`);
      await client.query(`INSERT INTO ${s}.ledger_index (${columns}) SELECT ${columns} FROM ${legacy}`);
      const all = `${columns}, prev_hash, hash, record_text, record`;
      await client.query(`INSERT INTO ${s}.ledger_records (${all}) SELECT ${all} FROM ${legacy}`);
      await client.query(`DROP TABLE ${legacy}`);
    }
    const made = await client.query(`INSERT INTO ${s}.ledger_info (ledger_id) VALUES (gen_random_uuid()) ON CONFLICT DO NOTHING`);
    await client.query(`INSERT INTO ${s}.ledger_layouts (version) VALUES ($1) ON CONFLICT DO NOTHING`, [LEDGER_LAYOUT]);
    await client.query(GRANTS(schema, writerRole));
    const id = await client.query<{ ledger_id: string }>(`SELECT ledger_id::text FROM ${s}.ledger_info`);
    await client.query("COMMIT");
    return { ledgerId: id.rows[0]!.ledger_id, schema, writerRole, created: made.rowCount === 1, roleCreated, passwordSet: writerPassword !== undefined };
  } catch (error) {
    await client.query("ROLLBACK").catch(() => undefined);
    throw error;
  } finally {
    await client.query("SELECT pg_advisory_unlock(hashtext('auditgraph-ledger-migrate'))").catch(() => undefined);
    await client.end();
  }
}
