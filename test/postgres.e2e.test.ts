import { randomUUID } from "node:crypto";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LedgerNotInitialisedError, PostgresLedger } from "@auditgraph/ledger";
import { runDemo } from "@auditgraph/cli";
import { isolatedConfig, runCli } from "./helpers.js";

// A superuser on a trust-auth server (the development setup); each run makes a database of its own and drops it.
const ADMIN_URL = process.env.AUDITGRAPH_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
const database = `ag_e2e_${randomUUID().replace(/-/g, "").slice(0, 12)}`;
const urlOf = (user: string, password?: string) => {
  const url = new URL(ADMIN_URL);
  url.username = user;
  url.password = password ?? "";
  url.pathname = `/${database}`;
  return url.toString();
};
// A password in the owner's URL (trust auth ignores it): it must never be printed.
const OWNER_PASSWORD = `owner-secret-${randomUUID().slice(0, 8)}`;
const ownerUrl = urlOf(new URL(ADMIN_URL).username || "postgres", OWNER_PASSWORD);
/** The README's worker URL, as written: the writer role `ledger init` makes, no password. */
const writerUrl = urlOf("auditgraph_writer");
const roles: string[] = [];

const admin = new pg.Client({ connectionString: ADMIN_URL });
beforeAll(async () => {
  await admin.connect();
  await admin.query(`CREATE DATABASE "${database}"`);
});
afterAll(async () => {
  await admin.query(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`);
  for (const role of roles) await admin.query(`DROP ROLE IF EXISTS "${role}"`);
  await admin.end();
});

const cli = (env: NodeJS.ProcessEnv, ...args: string[]) => runCli({ ...process.env, ...env }, "ledger", "init", ...args);

/** Runs `sql` as `user` in the test's database. */
async function as<T>(url: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

// Each CLI run starts a Node process (seconds on a loaded machine).
describe("the PostgreSQL ledger as the README sets it up: `auditgraph ledger init`, then the worker as auditgraph_writer", { timeout: 180_000 }, () => {
  let ledgerId: string;

  it("is refused before `ledger init`, naming the command", async () => {
    const error = await PostgresLedger.open({ connectionString: ownerUrl }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LedgerNotInitialisedError);
    expect((error as Error).message).toMatch(
      /schema "auditgraph" does not exist.*run `auditgraph ledger init` once with an owner's URL \(AUDITGRAPH_LEDGER_OWNER_URL or --owner-url\)/,
    );
  });

  it("`ledger init` makes the schema, the ledger id and a LOGIN writer, never printing the owner's password; run again, it changes nothing", async () => {
    const first = await cli({ AUDITGRAPH_LEDGER_OWNER_URL: ownerUrl });
    expect(first.stderr).toBe("");
    expect(first.code).toBe(0);
    const made = /schema "auditgraph" on [^ ]+\/(\S+) \(as \w+\): created; ledger id ([0-9a-f-]{36})/.exec(first.stdout);
    expect(made?.[1]).toBe(database);
    ledgerId = made![2]!;
    expect(first.stdout).toContain("writer role auditgraph_writer");
    expect(first.stdout).toContain("LOGIN; SELECT and INSERT only");
    expect(first.stdout).toContain(`AUDITGRAPH_LEDGER_URL=${writerUrl}`);

    const again = await cli({}, "--owner-url", ownerUrl, "--json");
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({
      ledgerId,
      created: false,
      roleCreated: false,
      passwordSet: false,
      schema: "auditgraph",
      workerUrl: writerUrl,
    });
    for (const out of [first, again]) expect(out.stdout + out.stderr).not.toContain(OWNER_PASSWORD);
    const role = await admin.query("SELECT rolcanlogin, rolsuper, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname = 'auditgraph_writer'");
    expect(role.rows).toEqual([{ rolcanlogin: true, rolsuper: false, rolcreaterole: false, rolcreatedb: false }]);
  });

  it("names a missing owner URL, a bad flag and a refused connection, without the password", async () => {
    const missing = await cli({ AUDITGRAPH_LEDGER_OWNER_URL: "" });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/--owner-url \(or AUDITGRAPH_LEDGER_OWNER_URL\)/);
    const badRole = await cli({ AUDITGRAPH_LEDGER_OWNER_URL: ownerUrl }, "--writer-role", "Writer!");
    expect(badRole.code).toBe(2);
    expect(badRole.stderr).toMatch(/--writer-role.*lower-case SQL identifier/);
    const refused = await cli({ AUDITGRAPH_LEDGER_OWNER_URL: `postgres://postgres:${OWNER_PASSWORD}@127.0.0.1:1/${database}` });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/ledger init as postgres on 127\.0\.0\.1:1\/ag_e2e_\w+: .*ECONNREFUSED/);
    expect(refused.stderr).not.toContain(OWNER_PASSWORD);
  });

  it("the worker, as auditgraph_writer, appends, reads back, checkpoints and verifies the demo's run", async () => {
    const config = { ...(await isolatedConfig()), ledgerUrl: writerUrl };
    const result = await runDemo(config, () => undefined);
    expect(result.verify.ok).toBe(true);
    expect(result.lineage.output.text).toBe(result.answer);
    await as(writerUrl, async (writer) => {
      const who = await writer.query("SELECT current_user AS user");
      expect(who.rows[0].user).toBe("auditgraph_writer");
      const rows = await writer.query(`SELECT count(*)::int AS n FROM auditgraph.ledger_records WHERE trace_id = $1`, [result.traceId]);
      expect(rows.rows[0].n).toBeGreaterThan(10);
      // In the month partitions of the worker's clock, made through ledger_partition by the writer itself.
      const parts = await writer.query(
        `SELECT DISTINCT c.relname FROM auditgraph.ledger_records r JOIN pg_class c ON c.oid = r.tableoid WHERE r.trace_id = $1`,
        [result.traceId],
      );
      expect(parts.rows.length).toBeGreaterThan(0);
      for (const row of parts.rows) expect(row.relname).toMatch(/^ledger_records_y\d{4}m\d{2}$/);
      const cps = await writer.query(`SELECT count(*)::int AS n FROM auditgraph.ledger_checkpoints WHERE stream_id = 'tenant-acme'`);
      expect(cps.rows[0].n).toBeGreaterThan(0);
    });
    const ledger = await PostgresLedger.open({ connectionString: writerUrl });
    try {
      expect(await ledger.id()).toBe(ledgerId);
    } finally {
      await ledger.close();
    }
  });

  it("refuses the writer every UPDATE, DELETE, TRUNCATE and DDL", async () => {
    await as(writerUrl, async (writer) => {
      const refused = async (sql: string, message: RegExp) => {
        const error = await writer.query(sql).catch((e: unknown) => e as { code?: string; message: string });
        expect(error, sql).toMatchObject({ message: expect.stringMatching(message) });
        expect((error as { code?: string }).code, sql).toBe("42501");
      };
      for (const table of ["ledger_records", "ledger_index", "ledger_checkpoints", "ledger_dead_letters", "ledger_dead_letter_replays", "ledger_info"]) {
        await refused(
          `UPDATE auditgraph.${table} SET ${table === "ledger_info" ? "created_at = now()" : table.startsWith("ledger_dead") ? "entry = entry" : "stream_id = stream_id"}`,
          /permission denied/,
        );
        await refused(`DELETE FROM auditgraph.${table}`, /permission denied/);
        await refused(`TRUNCATE auditgraph.${table}`, /permission denied/);
      }
      const [part] = (await writer.query("SELECT tablename FROM pg_tables WHERE schemaname = 'auditgraph' AND tablename LIKE 'ledger_records_y%'")).rows;
      await refused(`DELETE FROM auditgraph.${part.tablename}`, /permission denied/);
      await refused(`INSERT INTO auditgraph.ledger_info (ledger_id) VALUES (gen_random_uuid())`, /permission denied/);
      await refused(`CREATE TABLE auditgraph.mine (x int)`, /permission denied for schema auditgraph/);
      await refused(`CREATE SCHEMA mine`, /permission denied for database/);
      await refused(`DROP TABLE auditgraph.ledger_records`, /must be owner/);
      await refused(`ALTER TABLE auditgraph.ledger_records DISABLE TRIGGER USER`, /must be owner/);
      await refused(
        `CREATE OR REPLACE FUNCTION auditgraph.refuse_change() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NULL; END'`,
        /must be owner|permission denied/,
      );
    });
  });

  it("sets a writer's password from AUDITGRAPH_LEDGER_WRITER_PASSWORD as a SCRAM verifier, printed nowhere", async () => {
    const role = `ag_writer_${randomUUID().replace(/-/g, "").slice(0, 8)}`;
    roles.push(role);
    const password = `writer-secret-${randomUUID().slice(0, 8)}`;
    const out = await cli({ AUDITGRAPH_LEDGER_OWNER_URL: ownerUrl, AUDITGRAPH_LEDGER_WRITER_PASSWORD: password }, "--writer-role", role);
    expect(out.code).toBe(0);
    expect(out.stdout).toContain(`writer role ${role} created`);
    expect(out.stdout).toContain("password set from AUDITGRAPH_LEDGER_WRITER_PASSWORD");
    expect(out.stdout).toContain(`AUDITGRAPH_LEDGER_URL=${urlOf(role, "PASSWORD").replace("PASSWORD", "<password>")}`);
    expect(out.stdout + out.stderr).not.toContain(password);
    const stored = await admin.query("SELECT rolpassword FROM pg_authid WHERE rolname = $1", [role]);
    expect(stored.rows[0].rolpassword).toMatch(/^SCRAM-SHA-256\$4096:/);
    // The same ledger, another writer: it appends and reads like the first.
    const ledger = await PostgresLedger.open({ connectionString: urlOf(role) });
    try {
      expect(await ledger.id()).toBe(ledgerId);
      expect((await ledger.verify()).ok).toBe(true);
    } finally {
      await ledger.close();
    }
  });
});
