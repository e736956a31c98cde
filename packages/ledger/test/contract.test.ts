import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomUUID } from "node:crypto";
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import { SCHEMA_VERSION, newEventId, type AuditEvent } from "@auditgraph/core";
import {
  CheckpointSigner,
  PostgresLedger,
  SegmentLedger,
  generateSigningKey,
  verifyInclusionBundle,
  type Ledger,
  type SegmentLedgerOptions,
} from "../src/index.js";

const PG_URL = process.env.AUDITGRAPH_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
const keys = generateSigningKey();
const schemas: string[] = [];
const opened: PostgresLedger[] = [];

afterAll(async () => {
  for (const l of opened) await l.close();
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  for (const s of schemas) await client.query(`DROP SCHEMA IF EXISTS "${s}" CASCADE`);
  await client.end();
});

/** Two handles on one fresh store (as two worker processes would have). */
type Backend = (options?: SegmentLedgerOptions) => Promise<() => Promise<Ledger>>;

const backends: [string, Backend][] = [
  [
    "segment files",
    async (options) => {
      const dir = await mkdtemp(join(tmpdir(), "contract-"));
      return async () => new SegmentLedger(dir, options);
    },
  ],
  [
    "PostgreSQL",
    async (options) => {
      const schema = `t_${randomUUID().replace(/-/g, "").slice(0, 12)}`;
      schemas.push(schema);
      return async () => {
        const ledger = await PostgresLedger.open({ connectionString: PG_URL, schema }, options);
        opened.push(ledger);
        return ledger;
      };
    },
  ],
];

const event = (n: number, tenant = "t"): AuditEvent => ({
  eventId: newEventId(),
  schemaVersion: SCHEMA_VERSION,
  type: "text",
  occurredAt: new Date().toISOString(),
  traceId: `trace-${n % 3}`,
  runId: `run-${n}`,
  parentRunId: null,
  sessionId: null,
  identity: { user: { id: "u", tenantId: tenant }, agent: { id: "a", name: "A", version: "1" } },
  payload: { text: `record ${n} ✓ “quoted” \\ \u0007` },
});

const readAll = async (ledger: Ledger, stream: string) => {
  const out = [];
  for await (const r of ledger.readStream(stream)) out.push(r);
  return out;
};

describe.each(backends)("ledger contract: %s", (_name, backend) => {
  it("appends in order with positions, a hash chain and the worker's time; reads back exactly", async () => {
    const ledger = await (await backend())();
    const events = [event(0), event(1), event(2)];
    const { records, appended } = await ledger.append("s1", events, "2026-01-02T03:04:05.678Z");
    expect(appended).toBe(3);
    expect(records.map((r) => r.position)).toEqual([0, 1, 2]);
    expect(records[2]!.prevHash).toBe(records[1]!.hash);
    expect(await readAll(ledger, "s1")).toEqual(records);
    expect(records.map((r) => r.event)).toEqual(events);
    expect(await ledger.streams()).toEqual(["s1"]);
  });

  it("stores an event once, however often and by whichever handle it is appended", async () => {
    const open = await backend();
    const [a, b] = [await open(), await open()];
    const events = [event(0), event(1)];
    await a.append("s1", events);
    const again = await b.append("s1", [events[1]!, event(2), events[0]!]);
    expect(again.appended).toBe(1);
    expect(again.records.map((r) => r.position)).toEqual([1, 2, 0]);
    expect(await a.verify()).toMatchObject({ ok: true, count: 3 });
  });

  it("two writers at once keep one chain per stream, streams apart", async () => {
    const open = await backend();
    const [a, b] = [await open(), await open()];
    await Promise.all(
      Array.from({ length: 16 }, (_, i) => (i % 2 ? a : b).append(i % 4 < 2 ? "s1" : "s2", [event(i * 2), event(i * 2 + 1)])),
    );
    const report = await (await open()).verify();
    expect(report).toMatchObject({ ok: true, count: 32 });
    expect(report.streams.map((s) => [s.streamId, s.count])).toEqual([
      ["s1", 16],
      ["s2", 16],
    ]);
  });

  it("signs a checkpoint per batch and proves every event with the public key alone", async () => {
    const open = await backend({ signer: new CheckpointSigner(keys.privateKeyPem) });
    const ledger = await open();
    const events = Array.from({ length: 11 }, (_, i) => event(i));
    for (const [from, to] of [[0, 1], [1, 4], [4, 11]] as const) await ledger.append("s1", events.slice(from, to));
    expect((await ledger.checkpoints("s1")).map((c) => c.treeSize)).toEqual([1, 4, 11]);
    const report = await (await open()).verify(keys.publicKeyPem);
    expect(report).toMatchObject({ ok: true, count: 11, streams: [{ checkpoints: 3 }] });
    for (const e of events) {
      const bundle = JSON.parse(JSON.stringify(await ledger.prove(e.eventId)));
      expect(verifyInclusionBundle(bundle, keys.publicKeyPem).record.event.eventId).toBe(e.eventId);
    }
    await expect(ledger.prove(newEventId())).rejects.toThrow(/no event/);
  });

  it("keeps dead letters with their reason, once per id", async () => {
    const ledger = await (await backend())();
    const entry = { id: "job#0", recordedAt: new Date().toISOString(), jobId: "job", reason: "invalid event 0: type", input: { x: [1, "two"] } };
    await ledger.deadLetter(entry);
    await ledger.deadLetter(entry);
    expect(await ledger.readDeadLetters()).toEqual([entry]);
  });
});

describe("PostgreSQL ledger: append-only in the database itself", () => {
  it("refuses UPDATE, DELETE and TRUNCATE by trigger, and verify names a record edited behind the triggers' back", async () => {
    const schema = `t_${randomUUID().replace(/-/g, "").slice(0, 12)}`;
    schemas.push(schema);
    const ledger = await PostgresLedger.open({ connectionString: PG_URL, schema });
    opened.push(ledger);
    const { records } = await ledger.append("s1", [event(0), event(1), event(2)]);
    const client = new pg.Client({ connectionString: PG_URL });
    await client.connect();
    try {
      const table = `"${schema}".ledger_records`;
      await expect(client.query(`UPDATE ${table} SET record_text = record_text || ' ' WHERE position = 1`)).rejects.toThrow(/append-only/);
      await expect(client.query(`DELETE FROM ${table} WHERE position = 2`)).rejects.toThrow(/append-only/);
      await expect(client.query(`TRUNCATE ${table}`)).rejects.toThrow(/append-only/);
      // The writer role may insert and read, nothing else.
      const grants = await client.query(
        `SELECT privilege_type FROM information_schema.role_table_grants WHERE grantee = 'auditgraph_writer' AND table_schema = $1 AND table_name = 'ledger_records' ORDER BY 1`,
        [schema],
      );
      expect(grants.rows.map((r) => r.privilege_type)).toEqual(["INSERT", "SELECT"]);

      // A superuser can switch the triggers off: verify still catches the edit.
      await client.query(`ALTER TABLE ${table} DISABLE TRIGGER USER`);
      await client.query(`UPDATE ${table} SET record_text = replace(record_text, 'record 1', 'record X') WHERE position = 1`);
      await client.query(`ALTER TABLE ${table} ENABLE TRIGGER USER`);
      const report = await ledger.verify();
      expect(!report.ok && report.failure).toMatchObject({ streamId: "s1", position: 1, reason: "edited", eventId: records[1]!.event.eventId });
    } finally {
      await client.end();
    }
  });
});
