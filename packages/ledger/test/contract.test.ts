import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomUUID } from "node:crypto";
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import { SCHEMA_VERSION, newEventId, streamIdFor, type AuditEvent } from "@auditgraph/core";
import {
  CheckpointSigner,
  PostgresLedger,
  SegmentLedger,
  generateSigningKey,
  verifyConsistencyBundle,
  verifyInclusionBundle,
  type ConsistencyBundle,
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
      await PostgresLedger.init({ connectionString: PG_URL, schema });
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

const collect = async <T>(items: AsyncIterable<T>) => {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
};
const readAll = (ledger: Ledger, stream: string) => collect(ledger.readStream(stream));

/** The same hex string with its first digit changed. */
const flip = (hex: string) => `${hex[0] === "0" ? "1" : "0"}${hex.slice(1)}`;

describe.each(backends)("ledger contract: %s", (_name, backend) => {
  it("has one id, whichever handle asks and whenever; another ledger has another", async () => {
    const open = await backend();
    const [a, b] = [await open(), await open()];
    const id = await a.id();
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    await b.append("s1", [event(0)]);
    expect(await b.id()).toBe(id);
    expect(await (await open()).id()).toBe(id);
    expect(await (await (await backend())()).id()).not.toBe(id);
  });

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
    await Promise.all(Array.from({ length: 16 }, (_, i) => (i % 2 ? a : b).append(i % 4 < 2 ? "s1" : "s2", [event(i * 2), event(i * 2 + 1)])));
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
    for (const [from, to] of [
      [0, 1],
      [1, 4],
      [4, 11],
    ] as const)
      await ledger.append("s1", events.slice(from, to));
    expect((await ledger.checkpoints("s1")).map((c) => c.treeSize)).toEqual([1, 4, 11]);
    const report = await (await open()).verify(keys.publicKeyPem);
    expect(report).toMatchObject({ ok: true, count: 11, streams: [{ checkpoints: 3 }] });
    for (const e of events) {
      const bundle = JSON.parse(JSON.stringify(await ledger.prove(e.eventId)));
      expect(verifyInclusionBundle(bundle, keys.publicKeyPem).record.event.eventId).toBe(e.eventId);
    }
    await expect(ledger.prove(newEventId())).rejects.toThrow(/no event/);
  });

  it("reads a range of positions, one event by id, and one trace across streams", async () => {
    const ledger = await (await backend())();
    const traced = (n: number, traceId: string): AuditEvent => ({ ...event(n), traceId });
    const one = await ledger.append("s1", [traced(0, "ta"), traced(1, "tb"), traced(2, "ta"), traced(3, "tb"), traced(4, "tb")]);
    const two = await ledger.append("s2", [traced(5, "tb"), traced(6, "ta")]);
    const positions = async (from?: number, to?: number) => (await collect(ledger.readStream("s1", from, to))).map((r) => r.position);
    expect(await collect(ledger.readStream("s1", 1, 4))).toEqual(one.records.slice(1, 4));
    expect(await positions(3)).toEqual([3, 4]);
    expect(await positions(4, 99)).toEqual([4]);
    expect(await positions(2, 2)).toEqual([]);
    expect(await positions(5)).toEqual([]);
    expect(await collect(ledger.readStream("s3"))).toEqual([]);

    expect(await ledger.readEvent(one.records[3]!.event.eventId)).toEqual(one.records[3]);
    expect(await ledger.readEvent(two.records[1]!.event.eventId)).toEqual(two.records[1]);
    expect(await ledger.readEvent(newEventId())).toBeUndefined();

    expect(await ledger.readTrace("ta")).toEqual([one.records[0], one.records[2], two.records[1]]);
    expect(await ledger.readTrace("tb")).toEqual([one.records[1], one.records[3], one.records[4], two.records[0]]);
    expect(await ledger.readTrace("tc")).toEqual([]);
  });

  it("reads a trace and proves an event within one tenant's streams, every shard of it and no other tenant's", async () => {
    const ledger = await (await backend({ signer: new CheckpointSigner(keys.privateKeyPem) }))();
    const traced = (n: number, tenant: string): AuditEvent => ({ ...event(n, tenant), traceId: "tr" });
    // The same event id in three tenants' streams: ids are unique within a tenant only.
    const shared = event(9);
    const at = async (streamId: string, e: AuditEvent) => (await ledger.append(streamId, [e, shared])).records[0]!;
    const x0 = await at(streamIdFor("x"), traced(0, "x"));
    const x3 = await at(streamIdFor("x", 3), traced(1, "x"));
    const xy1 = await at(streamIdFor("xy", 1), traced(2, "xy"));
    const y = await at(streamIdFor("y"), traced(3, "y"));
    // `x_` would match `tenant-xy.1` under LIKE.
    const under = await at(streamIdFor("x_", 2), traced(4, "x_"));
    expect([x0.streamId, x3.streamId, xy1.streamId, y.streamId, under.streamId]).toEqual(["tenant-x", "tenant-x.3", "tenant-xy.1", "tenant-y", "tenant-x_.2"]);

    const trace = async (scope: { streamId?: string; tenantId?: string }) => (await ledger.readTrace("tr", scope)).map((r) => r.event.eventId);
    expect(await trace({ tenantId: "x" })).toEqual([x0.event.eventId, x3.event.eventId]);
    expect(await trace({ tenantId: "xy" })).toEqual([xy1.event.eventId]);
    expect(await trace({ tenantId: "x_" })).toEqual([under.event.eventId]);
    expect(await trace({ tenantId: "y" })).toEqual([y.event.eventId]);
    expect(await trace({ tenantId: "x%" })).toEqual([]);
    expect(await trace({ tenantId: "tenant-x" })).toEqual([]);
    expect(await trace({ tenantId: "x", streamId: "tenant-x.3" })).toEqual([x3.event.eventId]);
    expect(await trace({ tenantId: "x", streamId: "tenant-y" })).toEqual([]);
    expect((await trace({})).length).toBe(5);

    const provedIn = async (eventId: string, scope: { streamId?: string; tenantId?: string }) => {
      const bundle = await ledger.prove(eventId, scope);
      expect(verifyInclusionBundle(JSON.parse(JSON.stringify(bundle)), keys.publicKeyPem).record.event.eventId).toBe(eventId);
      return bundle.record.streamId;
    };
    expect(await provedIn(shared.eventId, { tenantId: "x" })).toBe("tenant-x");
    expect(await provedIn(shared.eventId, { tenantId: "xy" })).toBe("tenant-xy.1");
    expect(await provedIn(shared.eventId, { tenantId: "x_" })).toBe("tenant-x_.2");
    expect(await provedIn(shared.eventId, { tenantId: "x", streamId: "tenant-x.3" })).toBe("tenant-x.3");
    expect(await provedIn(x3.event.eventId, { tenantId: "x" })).toBe("tenant-x.3");
    await expect(ledger.prove(x3.event.eventId, { tenantId: "xy" })).rejects.toThrow(/no event/);
    await expect(ledger.prove(x3.event.eventId, { tenantId: "x_" })).rejects.toThrow(/no event/);
    await expect(ledger.prove(shared.eventId, { tenantId: "z" })).rejects.toThrow(/no event/);
  });

  it("gives the latest checkpoint, and proves with the public key alone that a later one extends an earlier one", async () => {
    const signer = new CheckpointSigner(keys.privateKeyPem);
    const ledger = await (await backend({ signer }))();
    expect(await ledger.latestCheckpoint("s1")).toBeUndefined();
    await expect(ledger.proveConsistency("s1", 1)).rejects.toThrow("stream s1 has no signed checkpoint of size 1 (it has: none)");
    const events = Array.from({ length: 11 }, (_, i) => event(i));
    for (const [from, to] of [
      [0, 1],
      [1, 4],
      [4, 11],
    ] as const)
      await ledger.append("s1", events.slice(from, to));
    await ledger.append("s2", [event(11)]);
    const checkpoints = await ledger.checkpoints("s1");
    expect(checkpoints.map((c) => c.treeSize)).toEqual([1, 4, 11]);
    expect(await ledger.latestCheckpoint("s1")).toEqual(checkpoints[2]);
    expect(await ledger.latestCheckpoint("s2")).toMatchObject({ streamId: "s2", treeSize: 1 });

    const bundle = JSON.parse(JSON.stringify(await ledger.proveConsistency("s1", 4))) as ConsistencyBundle;
    expect(bundle).toMatchObject({ from: checkpoints[1], to: checkpoints[2] });
    expect(verifyConsistencyBundle(bundle, keys.publicKeyPem)).toEqual(bundle);
    const early = await ledger.proveConsistency("s1", 1, 4);
    expect([early.from.treeSize, early.to.treeSize]).toEqual([1, 4]);
    expect(verifyConsistencyBundle(early, keys.publicKeyPem)).toEqual(early);

    const altered = (change: (b: ConsistencyBundle) => void) => {
      const copy = structuredClone(bundle);
      change(copy);
      return () => verifyConsistencyBundle(copy, keys.publicKeyPem);
    };
    expect(altered((b) => (b.from.rootHash = flip(b.from.rootHash)))).toThrow(/earlier checkpoint's signature/);
    expect(altered((b) => (b.to.rootHash = flip(b.to.rootHash)))).toThrow(/later checkpoint's signature/);
    expect(altered((b) => (b.proof[0] = flip(b.proof[0]!)))).toThrow(/consistency proof: root/);
    // Signed by the right key, but a root the records never had: only the proof can tell.
    const { signature: _, keyId: __, ...unsigned } = bundle.to;
    expect(altered((b) => (b.to = signer.sign({ ...unsigned, rootHash: flip(unsigned.rootHash) })))).toThrow(/consistency proof: root2 mismatch/);
    expect(() => verifyConsistencyBundle(bundle, generateSigningKey().publicKeyPem)).toThrow(/signature does not verify/);

    await expect(ledger.proveConsistency("s1", 5)).rejects.toThrow("stream s1 has no signed checkpoint of size 5 (it has: 1, 4, 11)");
    await expect(ledger.proveConsistency("s1", 1, 7)).rejects.toThrow("stream s1 has no signed checkpoint of size 7 (it has: 1, 4, 11)");
    await expect(ledger.proveConsistency("s1", 11, 4)).rejects.toThrow("toSize 4 is smaller than fromSize 11");
  });

  it("keeps dead letters with their reason, once per id", async () => {
    const ledger = await (await backend())();
    const entry = { id: "job#0", recordedAt: new Date().toISOString(), jobId: "job", reason: "invalid event 0: type", input: { x: [1, "two"] } };
    await ledger.deadLetter(entry);
    await ledger.deadLetter(entry);
    expect(await ledger.readDeadLetters()).toEqual([entry]);

    const replays = [
      { deadLetterId: "job#0", replayedAt: new Date().toISOString(), queue: "q", jobId: "j2", by: "ops" },
      { deadLetterId: "job#0", replayedAt: new Date().toISOString(), queue: "q", jobId: "j3" },
    ];
    for (const r of replays) await ledger.recordDeadLetterReplay(r);
    expect(await ledger.readDeadLetterReplays()).toEqual(replays);
    await expect(ledger.recordDeadLetterReplay({ ...replays[0]!, jobId: "" })).rejects.toThrow(/jobId/);
  });
});

describe("PostgreSQL ledger: append-only in the database itself", () => {
  it("refuses UPDATE, DELETE and TRUNCATE by trigger, and verify names a record edited behind the triggers' back", async () => {
    const schema = `t_${randomUUID().replace(/-/g, "").slice(0, 12)}`;
    schemas.push(schema);
    await PostgresLedger.init({ connectionString: PG_URL, schema });
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
