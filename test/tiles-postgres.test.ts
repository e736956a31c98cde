import { randomUUID } from "node:crypto";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  CheckpointSigner,
  PostgresLedger,
  generateSigningKey,
  leafHash,
  rootOf,
  tilesOf,
  verifyConsistencyBundle,
  verifyInclusionBundle,
} from "@auditgraph/ledger";
import { textEvent as event } from "../packages/ledger/test/text-event.js";

const PG_URL = process.env.AUDITGRAPH_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
const keys = generateSigningKey();
const signer = new CheckpointSigner(keys.privateKeyPem);
const db = new pg.Client({ connectionString: PG_URL });
const schema = `t_${randomUUID().replace(/-/g, "").slice(0, 12)}`;
const opened: PostgresLedger[] = [];
const S = "s1";

const open = async (withSigner = true) => {
  const ledger = await PostgresLedger.open({ connectionString: PG_URL, schema }, withSigner ? { signer } : {});
  opened.push(ledger);
  return ledger;
};

/** The tile rows of the stream, as (level/idx -> hashes). */
async function tileRows(): Promise<Map<string, Buffer>> {
  const rows = await db.query<{ level: number; idx: string; hashes: Buffer }>(`SELECT level, idx, hashes FROM "${schema}".ledger_tiles WHERE stream_id = $1`, [
    S,
  ]);
  return new Map(rows.rows.map((r) => [`${r.level}/${r.idx}`, r.hashes]));
}

/** Every tile of the tree is a row holding what the records give, at its width (a partial one widened in place). */
async function expectTilesMatch() {
  const texts = await db.query<{ record_text: string }>(`SELECT record_text FROM "${schema}".ledger_records WHERE stream_id = $1 ORDER BY position`, [S]);
  const leaves = texts.rows.map((r) => leafHash(r.record_text));
  const rows = await tileRows();
  for (const t of tilesOf(leaves.length)) {
    const span = 256 ** t.level;
    const want = Buffer.concat(Array.from({ length: t.width }, (_, i) => rootOf(leaves, (t.index * 256 + i) * span, (t.index * 256 + i + 1) * span)));
    expect(rows.get(`${t.level}/${t.index}`)?.equals(want), `tile ${t.level}/${t.index}`).toBe(true);
  }
  expect(rows.size).toBe([...tilesOf(leaves.length)].length);
  return leaves.length;
}

beforeAll(async () => {
  await db.connect();
  await PostgresLedger.init({ connectionString: PG_URL, schema });
});
afterAll(async () => {
  for (const l of opened) await l.close();
  await db.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await db.end();
});

describe("PostgresLedger tiles", () => {
  const ids: string[] = [];

  it("writes the tiles in the records' transaction, and proves from them with the bundles the records give", async () => {
    const ledger = await open();
    for (let n = 0; n < 2100; n += 300) {
      const events = Array.from({ length: 300 }, (_, i) => event(n + i));
      ids.push(...events.map((e) => e.eventId));
      await ledger.append(S, events);
    }
    expect(await expectTilesMatch()).toBe(2100);
    for (const at of [0, 255, 256, 1000, 2099]) {
      const bundle = await ledger.prove(ids[at]!);
      expect(verifyInclusionBundle(bundle, keys.publicKeyPem).leafIndex).toBe(at);
    }
    verifyConsistencyBundle(await ledger.proveConsistency(S, 600), keys.publicKeyPem);
    // Tiles gone (every row): the proofs rebuild what they need from the records, and give the same bundles.
    const fromTiles = await ledger.prove(ids[1000]!);
    const consistency = await ledger.proveConsistency(S, 900, 1800);
    await db.query(`DELETE FROM "${schema}".ledger_tiles WHERE stream_id = $1`, [S]);
    const rebuilt = await ledger.prove(ids[1000]!);
    expect(rebuilt).toEqual(fromTiles);
    expect(await ledger.proveConsistency(S, 900, 1800)).toEqual(consistency);
  });

  it("the tiles a proof needs are rebuilt from the records, and the rest by the next writer's first append", async () => {
    // Tiles the first proof needed were rebuilt (the rows were deleted above).
    expect((await tileRows()).get("0/3")?.length).toBe(8192);
    await db.query(`DELETE FROM "${schema}".ledger_tiles WHERE stream_id = $1`, [S]);
    // A new writer (a restart) finds the tiles behind the records and rebuilds them in its first append.
    const next = await open();
    const more = [event(2100), event(2101)];
    ids.push(...more.map((e) => e.eventId));
    await next.append(S, more);
    expect(await expectTilesMatch()).toBe(2102);
    verifyInclusionBundle(await next.prove(ids[2101]!), keys.publicKeyPem);
  });

  it("a writer that is not the one that appended last catches its tiles up with the other's records", async () => {
    const one = await open();
    const two = await open();
    for (let n = 0; n < 6; n++) {
      const batch = Array.from({ length: 100 }, (_, i) => event(3000 + n * 100 + i));
      ids.push(...batch.map((e) => e.eventId));
      await (n % 2 === 0 ? one : two).append(S, batch);
    }
    expect(await expectTilesMatch()).toBe(2702);
    verifyInclusionBundle(await one.prove(ids.at(-1)!), keys.publicKeyPem);
  });
});
