import { randomUUID } from "node:crypto";
import pg from "pg";
import { describe, expect, it } from "vitest";
import { runDemo } from "@auditgraph/cli";
import { isolatedConfig } from "./helpers.js";

const PG_URL = process.env.AUDITGRAPH_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";

describe("the demo on the PostgreSQL ledger", () => {
  it("records the run in the append-only table, checkpoints it, and verifies", async () => {
    const schema = `e2e_${randomUUID().replace(/-/g, "").slice(0, 12)}`;
    const config = { ...(await isolatedConfig()), ledgerUrl: PG_URL, ledgerSchema: schema };
    const result = await runDemo(config, () => undefined);
    expect(result.verify.ok).toBe(true);
    const client = new pg.Client({ connectionString: PG_URL });
    await client.connect();
    try {
      const rows = await client.query(`SELECT count(*)::int AS n FROM "${schema}".ledger_records WHERE trace_id = $1`, [result.traceId]);
      expect(rows.rows[0].n).toBeGreaterThan(10);
      // In the month partitions of the worker's clock, not in the parent table.
      const parts = await client.query(
        `SELECT DISTINCT c.relname FROM "${schema}".ledger_records r JOIN pg_class c ON c.oid = r.tableoid WHERE r.trace_id = $1`,
        [result.traceId],
      );
      expect(parts.rows.length).toBeGreaterThan(0);
      for (const row of parts.rows) expect(row.relname).toMatch(/^ledger_records_y\d{4}m\d{2}$/);
      const cps = await client.query(`SELECT count(*)::int AS n FROM "${schema}".ledger_checkpoints WHERE stream_id = 'tenant-acme'`);
      expect(cps.rows[0].n).toBeGreaterThan(0);
    } finally {
      await client.query(`DROP SCHEMA "${schema}" CASCADE`);
      await client.end();
    }
    expect(result.lineage.output.text).toBe(result.answer);
  });
});
