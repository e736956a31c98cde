import { createHash, createHmac, randomUUID } from "node:crypto";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SCHEMA_VERSION, newEventId, type AuditEvent } from "@auditgraph/core";
import { CheckpointSigner, LedgerNotInitialisedError, PostgresLedger, generateSigningKey, type Ledger } from "../src/index.js";
import { scramVerifier } from "../src/postgres-schema.js";

const PG_URL = process.env.AUDITGRAPH_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
const keys = generateSigningKey();
const schemas: string[] = [];
const opened: PostgresLedger[] = [];
const db = new pg.Client({ connectionString: PG_URL });

beforeAll(() => db.connect());
afterAll(async () => {
  for (const l of opened) await l.close();
  for (const s of schemas) await db.query(`DROP SCHEMA IF EXISTS "${s}" CASCADE`);
  await db.end();
});

const freshSchema = () => {
  const schema = `t_${randomUUID().replace(/-/g, "").slice(0, 12)}`;
  schemas.push(schema);
  return schema;
};

/** `ledger init` (idempotent), then the ledger opened as the tests' superuser. */
const open = async (schema: string, signer?: CheckpointSigner) => {
  await PostgresLedger.init({ connectionString: PG_URL, schema });
  const ledger = await PostgresLedger.open({ connectionString: PG_URL, schema }, signer ? { signer } : {});
  opened.push(ledger);
  return ledger;
};

const event = (n: number): AuditEvent => ({
  eventId: newEventId(),
  schemaVersion: SCHEMA_VERSION,
  type: "text",
  occurredAt: new Date().toISOString(),
  traceId: `trace-${n % 2}`,
  runId: `run-${n}`,
  parentRunId: null,
  sessionId: null,
  identity: { user: { id: "u", tenantId: "t" }, agent: { id: "a", name: "A", version: "1" } },
  payload: { text: `record ${n}` },
});

const readAll = async (ledger: Ledger, stream: string) => {
  const out = [];
  for await (const r of ledger.readStream(stream)) out.push(r);
  return out;
};

/** The partitions of a schema's ledger_records, by name. */
const partitions = async (schema: string) =>
  (
    await db.query<{ name: string }>(
      `SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
       WHERE i.inhparent = (SELECT oid FROM pg_class WHERE relname = 'ledger_records' AND relnamespace = $1::regnamespace) ORDER BY 1`,
      [schema],
    )
  ).rows.map((r) => r.name);

describe("PostgreSQL ledger: monthly partitions", () => {
  it("puts each month's records in its own partition, refuses changes to any partition, and verifies across them", async () => {
    const schema = freshSchema();
    const ledger = await open(schema, new CheckpointSigner(keys.privateKeyPem));
    const jan = await ledger.append("s1", [event(0), event(1)], "2026-01-31T23:59:59.999Z");
    const feb = await ledger.append("s1", [event(2)], "2026-02-01T00:00:00.000Z");
    // A clock that is behind, on another stream: still the January partition.
    await ledger.append("s2", [event(3)], "2026-01-15T12:00:00+05:00");

    expect(await partitions(schema)).toEqual(["ledger_records_y2026m01", "ledger_records_y2026m02"]);
    const placed = await db.query(
      `SELECT c.relname AS part, r.stream_id, r.position::int FROM "${schema}".ledger_records r JOIN pg_class c ON c.oid = r.tableoid ORDER BY 2, 3`,
    );
    expect(placed.rows).toEqual([
      { part: "ledger_records_y2026m01", stream_id: "s1", position: 0 },
      { part: "ledger_records_y2026m01", stream_id: "s1", position: 1 },
      { part: "ledger_records_y2026m02", stream_id: "s1", position: 2 },
      { part: "ledger_records_y2026m01", stream_id: "s2", position: 0 },
    ]);

    for (const part of await partitions(schema)) {
      const table = `"${schema}".${part}`;
      await expect(db.query(`UPDATE ${table} SET record_text = record_text || ' '`)).rejects.toThrow(/UPDATE on .* refused: the ledger is append-only/);
      await expect(db.query(`DELETE FROM ${table}`)).rejects.toThrow(/DELETE on .* refused/);
      await expect(db.query(`TRUNCATE ${table}`)).rejects.toThrow(/TRUNCATE on .* refused/);
      const grants = await db.query(
        "SELECT privilege_type FROM information_schema.role_table_grants WHERE grantee = 'auditgraph_writer' AND table_schema = $1 AND table_name = $2 ORDER BY 1",
        [schema, part],
      );
      expect(grants.rows.map((r) => r.privilege_type)).toEqual(["INSERT", "SELECT"]);
    }
    const index = `"${schema}".ledger_index`;
    await expect(db.query(`UPDATE ${index} SET event_id = 'x'`)).rejects.toThrow(/refused/);
    await expect(db.query(`DELETE FROM ${index}`)).rejects.toThrow(/refused/);
    await expect(db.query(`TRUNCATE ${index} CASCADE`)).rejects.toThrow(`TRUNCATE on ${schema}.ledger_index refused`);

    const report = await ledger.verify(keys.publicKeyPem);
    expect(report).toMatchObject({
      ok: true,
      count: 4,
      streams: [
        { streamId: "s1", count: 3, checkpoints: 2 },
        { streamId: "s2", count: 1 },
      ],
    });
    expect(await readAll(ledger, "s1")).toEqual([...jan.records, ...feb.records]);
    expect(await ledger.readEvent(feb.records[0]!.event.eventId)).toEqual(feb.records[0]);
  });

  it("keeps (stream, position) and (stream, event id) unique across partitions, even for SQL that bypasses the ledger", async () => {
    const schema = freshSchema();
    const [a, b] = [await open(schema), await open(schema)];
    const e = event(0);
    // The same event from two writers whose clocks are in different months: stored once.
    const [x, y] = await Promise.all([a.append("s1", [e], "2026-03-31T23:59:59Z"), b.append("s1", [e], "2026-04-01T00:00:01Z")]);
    expect(x.appended + y.appended).toBe(1);
    expect(await a.verify()).toMatchObject({ ok: true, count: 1 });

    const [r] = x.appended ? x.records : y.records;
    const other = r!.recordedAt.startsWith("2026-03") ? "2026-04-02T00:00:00Z" : "2026-03-02T00:00:00Z";
    await db.query(`SELECT "${schema}".ledger_partition($1)`, [other]);
    const insert = (table: string, columns: string, values: unknown[]) =>
      db.query(`INSERT INTO "${schema}".${table} (${columns}) VALUES (${values.map((_, i) => `$${i + 1}`).join(", ")})`, values);
    const record = "stream_id, position, event_id, trace_id, recorded_at, prev_hash, hash, record_text, record";
    // A second record at position 0, in the other month's partition.
    await expect(insert("ledger_records", record, ["s1", 0, newEventId(), "t", other, r!.prevHash, r!.hash, "{}", "{}"])).rejects.toThrow(/foreign key/);
    await expect(insert("ledger_records", record, ["s1", 1, r!.event.eventId, "t", other, r!.hash, r!.hash, "{}", "{}"])).rejects.toThrow(/foreign key/);
    const index = "stream_id, position, event_id, trace_id, recorded_at";
    await expect(insert("ledger_index", index, ["s1", 0, newEventId(), "t", other])).rejects.toThrow(/ledger_index_pkey/);
    await expect(insert("ledger_index", index, ["s1", 1, r!.event.eventId, "t", other])).rejects.toThrow(/ledger_index_event_id_stream_id_key/);
  });

  it("lets the insert-only writer role make a month's partition through ledger_partition, and no other table", async () => {
    const schema = freshSchema();
    await open(schema);
    await db.query("BEGIN");
    try {
      await db.query("SET LOCAL ROLE auditgraph_writer; SET LOCAL TimeZone = 'UTC'");
      await db.query(`SELECT "${schema}".ledger_partition($1)`, ["2030-05-17T10:00:00Z"]);
      expect(await partitions(schema)).toEqual(["ledger_records_y2030m05"]);
      const bounds = await db.query(
        "SELECT pg_get_expr(c.relpartbound, c.oid) AS bound FROM pg_class c WHERE c.relname = 'ledger_records_y2030m05' AND c.relnamespace = $1::regnamespace",
        [schema],
      );
      expect(bounds.rows[0].bound).toMatch(/FROM \('2030-05-01 00:00:00\+00'\) TO \('2030-06-01 00:00:00\+00'\)/);
      await expect(db.query(`CREATE TABLE "${schema}".mine (x int)`)).rejects.toThrow(/permission denied/);
    } finally {
      await db.query("ROLLBACK");
    }
  });

  it("verify names records cut from a stream's end behind the triggers' back, which the chain alone cannot see", async () => {
    const schema = freshSchema();
    const ledger = await open(schema);
    const { records } = await ledger.append("s1", [event(0), event(1), event(2)]);
    const table = `"${schema}".ledger_records`;
    await db.query(`ALTER TABLE ${table} DISABLE TRIGGER USER`);
    await db.query(`DELETE FROM ${table} WHERE stream_id = 's1' AND position >= 1`);
    await db.query(`ALTER TABLE ${table} ENABLE TRIGGER USER`);
    const report = await ledger.verify();
    expect(!report.ok && report.failure).toMatchObject({ streamId: "s1", position: 1, reason: "truncated", eventId: records[1]!.event.eventId });
  });

  it("names a bad argument of readStream and append", async () => {
    const ledger = await open(freshSchema());
    await expect(ledger.readStream("s1", -1).next()).rejects.toThrow("readStream: from must be a whole number from 0, not -1");
    await expect(ledger.readStream("s1", 0, 1.5).next()).rejects.toThrow("readStream: to must be");
    await expect(ledger.append("s1", [event(0)], "last tuesday")).rejects.toThrow(/recordedAt/);
    expect(await ledger.streams()).toEqual([]);
  });
});

/** The layout the first release shipped: one unpartitioned table, its uniqueness in its own keys. */
const UNPARTITIONED = (s: string) => `
  CREATE SCHEMA "${s}";
  CREATE TABLE "${s}".ledger_records (
    stream_id text NOT NULL, position bigint NOT NULL, event_id text NOT NULL, trace_id text NOT NULL,
    recorded_at timestamptz NOT NULL, prev_hash text NOT NULL, hash text NOT NULL, record_text text NOT NULL, record jsonb NOT NULL,
    PRIMARY KEY (stream_id, position), UNIQUE (stream_id, event_id)
  );
  CREATE INDEX ledger_records_trace ON "${s}".ledger_records (trace_id);
  CREATE INDEX ledger_records_event ON "${s}".ledger_records (event_id);
  CREATE TABLE "${s}".ledger_checkpoints (stream_id text NOT NULL, tree_size bigint NOT NULL, checkpoint jsonb NOT NULL, PRIMARY KEY (stream_id, tree_size));
  CREATE TABLE "${s}".ledger_dead_letters (id text PRIMARY KEY, entry jsonb NOT NULL);
  CREATE FUNCTION "${s}".refuse_change() RETURNS trigger LANGUAGE plpgsql AS $fn$
  BEGIN RAISE EXCEPTION 'auditgraph: % on %.% refused: the ledger is append-only', TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME; END $fn$;
  CREATE TRIGGER append_only BEFORE UPDATE OR DELETE ON "${s}".ledger_records FOR EACH ROW EXECUTE FUNCTION "${s}".refuse_change();
  CREATE TRIGGER no_truncate BEFORE TRUNCATE ON "${s}".ledger_records FOR EACH STATEMENT EXECUTE FUNCTION "${s}".refuse_change();
  CREATE TRIGGER append_only BEFORE UPDATE OR DELETE ON "${s}".ledger_checkpoints FOR EACH ROW EXECUTE FUNCTION "${s}".refuse_change();
  CREATE TRIGGER no_truncate BEFORE TRUNCATE ON "${s}".ledger_checkpoints FOR EACH STATEMENT EXECUTE FUNCTION "${s}".refuse_change();
`;

describe("PostgreSQL ledger: an install of the unpartitioned table", () => {
  it("is migrated by ledger init with every record, checkpoint and dead letter kept, and goes on from where it was", async () => {
    // Records made by this version, then copied into the old layout: the same bytes either way.
    const source = freshSchema();
    const signer = new CheckpointSigner(keys.privateKeyPem);
    const maker = await open(source, signer);
    await maker.append("s1", [event(0), event(1)], "2025-12-20T10:00:00Z");
    await maker.append("s1", [event(2)], "2026-01-03T10:00:00Z");
    await maker.append("s2", [event(3)], "2026-01-04T10:00:00Z");
    const before = await maker.verify(keys.publicKeyPem);
    expect(before).toMatchObject({ ok: true, count: 4 });

    const legacy = freshSchema();
    await db.query(UNPARTITIONED(legacy));
    const all = "stream_id, position, event_id, trace_id, recorded_at, prev_hash, hash, record_text, record";
    await db.query(`INSERT INTO "${legacy}".ledger_records (${all}) SELECT ${all} FROM "${source}".ledger_records`);
    await db.query(`INSERT INTO "${legacy}".ledger_checkpoints SELECT * FROM "${source}".ledger_checkpoints`);
    await db.query(`INSERT INTO "${legacy}".ledger_dead_letters VALUES ('job#0', '{"id":"job#0","reason":"kept"}')`);

    const [first, second] = await Promise.all([open(legacy, signer), open(legacy, signer)]);
    const kind = await db.query(
      "SELECT relname, relkind FROM pg_class WHERE relnamespace = $1::regnamespace AND relname LIKE 'ledger_records%' AND relkind IN ('r', 'p') ORDER BY 1",
      [legacy],
    );
    expect(kind.rows).toEqual([
      { relname: "ledger_records", relkind: "p" },
      { relname: "ledger_records_y2025m12", relkind: "r" },
      { relname: "ledger_records_y2026m01", relkind: "r" },
    ]);
    expect(await first.verify(keys.publicKeyPem)).toEqual(before);
    expect(await readAll(first, "s1")).toEqual(await readAll(maker, "s1"));
    expect(await first.readDeadLetters()).toEqual([{ id: "job#0", reason: "kept" }]);
    await expect(db.query(`TRUNCATE "${legacy}".ledger_records_y2025m12`)).rejects.toThrow(/refused/);

    // The chain and the signed checkpoints carry on over the migrated records.
    const next = await second.append("s1", [event(4)]);
    expect(next.records[0]).toMatchObject({ position: 3, prevHash: before.streams[0]!.head });
    expect(await first.verify(keys.publicKeyPem)).toMatchObject({ ok: true, count: 5, streams: [{ streamId: "s1", count: 4, checkpoints: 3 }, { count: 1 }] });
  });
});

describe("PostgreSQL ledger: init and open", () => {
  it("refuses to open a schema `ledger init` has not made, naming the command, and makes nothing", async () => {
    const schema = freshSchema();
    const error = await PostgresLedger.open({ connectionString: PG_URL, schema }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LedgerNotInitialisedError);
    expect(error).toMatchObject({ code: "AUDITGRAPH_LEDGER_NOT_INITIALISED" });
    expect((error as Error).message).toContain(`the PostgreSQL ledger in schema "${schema}" does not exist`);
    expect((error as Error).message).toContain("run `auditgraph ledger init` once with an owner's URL");
    const made = await db.query("SELECT 1 FROM pg_namespace WHERE nspname = $1", [schema]);
    expect(made.rows).toEqual([]);
  });

  it("refuses an install from before ledger ids until init brings it up to date, keeping its records; the id then stays", async () => {
    const schema = freshSchema();
    const first = await PostgresLedger.init({ connectionString: PG_URL, schema });
    expect(first).toMatchObject({ created: true, schema, writerRole: "auditgraph_writer" });
    const ledger = await PostgresLedger.open({ connectionString: PG_URL, schema });
    opened.push(ledger);
    expect(await ledger.id()).toBe(first.ledgerId);
    await ledger.append("s1", [event(0)]);
    // As the previous release left a schema: its tables, without the id and layout rows.
    await db.query(`DROP TABLE "${schema}".ledger_info, "${schema}".ledger_layouts`);
    await expect(PostgresLedger.open({ connectionString: PG_URL, schema })).rejects.toThrow(/was made before ledger ids\): run `auditgraph ledger init`/);
    const again = await PostgresLedger.init({ connectionString: PG_URL, schema });
    expect(again.created).toBe(true);
    const reopened = await open(schema);
    expect(await reopened.id()).toBe(again.ledgerId);
    expect(await reopened.verify()).toMatchObject({ ok: true, count: 1 });
    // Run again: nothing changes, the id least of all.
    expect(await PostgresLedger.init({ connectionString: PG_URL, schema })).toMatchObject({ created: false, ledgerId: again.ledgerId, roleCreated: false });
    await expect(db.query(`UPDATE "${schema}".ledger_info SET ledger_id = gen_random_uuid()`)).rejects.toThrow(/UPDATE on .*ledger_info refused/);
    await expect(db.query(`INSERT INTO "${schema}".ledger_info (ledger_id) VALUES (gen_random_uuid())`)).rejects.toThrow(/ledger_info_pkey/);
  });

  it("names a bad init option", async () => {
    await expect(PostgresLedger.init({ connectionString: PG_URL, schema: "Bad-Name" })).rejects.toThrow(/schema.*lower-case SQL identifier/);
    await expect(PostgresLedger.init({ connectionString: PG_URL, writerRole: "x; DROP" })).rejects.toThrow(/writerRole.*lower-case SQL identifier/);
    await expect(PostgresLedger.init({ connectionString: PG_URL, writerPasword: "x" } as never)).rejects.toThrow(/writerPasword/);
  });
});

describe("scramVerifier", () => {
  // RFC 7677's example exchange (password "pencil"): the verifier must let its client proof through and give its server signature.
  it("stores what checks RFC 7677's client proof and makes its server signature", () => {
    const salt = Buffer.from("W22ZaJ0SNY7soEsUEjb6gQ==", "base64");
    const verifier = scramVerifier("pencil", salt, 4096);
    const [, storedKey, serverKey] = /^SCRAM-SHA-256\$4096:W22ZaJ0SNY7soEsUEjb6gQ==\$([^:]+):(.+)$/.exec(verifier)!.map((p) => Buffer.from(p, "base64"));
    const authMessage =
      "n=user,r=rOprNGfwEbeRWgbNEkqO,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
    const clientProof = Buffer.from("dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=", "base64");
    const clientSignature = createHmac("sha256", storedKey!).update(authMessage).digest();
    const clientKey = Buffer.from(clientProof.map((b, i) => b ^ clientSignature[i]!));
    expect(createHash("sha256").update(clientKey).digest().equals(storedKey!)).toBe(true);
    expect(createHmac("sha256", serverKey!).update(authMessage).digest("base64")).toBe("6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
  });
});

describe("PostgresLedger when the server closes its idle connections", () => {
  it("does not crash the process (a restart, an administrator's terminate): the pool connects again for the next call", async () => {
    const schema = freshSchema();
    const app = `ag-terminated-${randomUUID().slice(0, 8)}`;
    await PostgresLedger.init({ connectionString: PG_URL, schema });
    const ledger = await PostgresLedger.open({ connectionString: `${PG_URL}?application_name=${app}`, schema });
    opened.push(ledger);
    await ledger.append("s", [event(1)]);
    const terminated = await db.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1", [app]);
    expect(terminated.rowCount).toBeGreaterThan(0);
    // Without an error listener on the pool, the idle client's error is an uncaught exception here.
    // The first call may still meet a connection the pool has not yet seen close: the next one works.
    let records: unknown[] = [];
    for (let attempt = 0; ; attempt++) {
      try {
        await ledger.append("s", [event(2)]);
        records = await readAll(ledger, "s");
        break;
      } catch (error) {
        if (attempt >= 5) throw error;
      }
    }
    expect(records).toHaveLength(2);
  });
});
