import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Graph, MigrationLockedError, withMigrationLock } from "@auditgraph/graph";
import { loadConfig } from "@auditgraph/cli";

// Worker replicas and `auditgraph migrate` start together on a fresh Neo4j: each must come up,
// and each migration must run exactly once. Test migrations use versions 9xxx and unique index
// names, so they never touch the real schema; what they count lives on (:Migration) nodes,
// which no projection delete removes.
const run = randomUUID().slice(0, 8);
const probe = `probe-${run}`;
const versions = ["9001", "9002"];
let dir: string;
const graphs: Graph[] = [];
const graph = () => {
  const g = new Graph(loadConfig().neo4j);
  graphs.push(g);
  return g;
};

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "auditgraph-migrations-"));
  await writeFile(
    join(dir, `9001_probe_${run}.cypher`),
    [
      `CREATE INDEX probe_${run}_a IF NOT EXISTS FOR (n:Probe_${run}) ON (n.a);`,
      `CREATE CONSTRAINT probe_${run}_b IF NOT EXISTS FOR (n:Probe_${run}) REQUIRE n.b IS UNIQUE;`,
      `MERGE (p:Migration {version: '${probe}'}) SET p.applied = coalesce(p.applied, 0) + 1;`,
    ].join("\n"),
  );
  await writeFile(join(dir, `9002_probe_${run}.cypher`), `CREATE INDEX probe_${run}_c IF NOT EXISTS FOR (n:Probe_${run}) ON (n.c);\n`);
});

afterAll(async () => {
  const g = graph();
  for (const statement of [`DROP INDEX probe_${run}_a IF EXISTS`, `DROP CONSTRAINT probe_${run}_b IF EXISTS`, `DROP INDEX probe_${run}_c IF EXISTS`]) {
    await g.driver.executeQuery(statement, {}, { database: g.database });
  }
  await g.driver.executeQuery("MATCH (m:Migration) WHERE m.version IN $versions DELETE m", { versions: [...versions, probe] }, { database: g.database });
  await Promise.all(graphs.map((x) => x.close()));
});

describe("graph migrations", () => {
  it("run once when four migrators start at the same moment, and every one of them succeeds", async () => {
    await graph().driver.executeQuery("MATCH (m:Migration) WHERE m.version IN $versions DELETE m", { versions: [...versions, probe] });
    const results = await Promise.all([0, 1, 2, 3].map(() => graph().migrate({ dir })));
    const applied = results.map((r) => r.applied.length);
    expect(applied.sort()).toEqual([0, 0, 0, 2]);
    for (const r of results) expect([...r.applied, ...r.skipped].sort()).toEqual([`9001_probe_${run}.cypher`, `9002_probe_${run}.cypher`]);
    const counted = await graph().read("MATCH (p:Migration {version: $probe}) RETURN p.applied AS applied", { probe });
    expect(counted).toEqual([{ applied: 1 }]);
  });

  it("wait for a migrator that holds the lock, say so, and apply nothing twice", async () => {
    const holder = graph();
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let entered!: () => void;
    const inside = new Promise<void>((resolve) => (entered = resolve));
    const first = withMigrationLock(holder.driver, holder.database, async () => {
      entered();
      await held;
      return "first";
    });
    await inside;
    let waitingFor: string | undefined;
    let told!: () => void;
    const waiting = new Promise<void>((resolve) => (told = resolve));
    const waiter = graph().migrate({
      dir,
      onWait: (h) => {
        waitingFor = h;
        told();
      },
    });
    await waiting;
    expect(waitingFor).toMatch(/:\d+:/);
    release();
    expect(await first).toBe("first");
    expect((await waiter).applied).toEqual([]);
    // The waiter now gets the lock; a third migrator then finds it free again.
    await expect(graph().migrate({ dir, waitMs: 60_000 })).resolves.toMatchObject({ applied: [] });
  });

  it("give up with AUDITGRAPH_MIGRATION_LOCKED when a live holder keeps it past waitMs, and take over an expired lease", async () => {
    const g = graph();
    const first = withMigrationLock(g.driver, g.database, () => graph().migrate({ dir, waitMs: 0 }));
    const error = await first.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(MigrationLockedError);
    expect((error as MigrationLockedError).code).toBe("AUDITGRAPH_MIGRATION_LOCKED");
    // A holder that died leaves its lease behind; once it has run out the next migrator goes on.
    await g.driver.executeQuery(
      "MERGE (l:MigrationLock {id: 'graph'}) SET l.owner = 'dead-host:1:x', l.expiresAt = $past",
      { past: Date.now() - 1 },
      { database: g.database },
    );
    await expect(g.migrate({ dir, waitMs: 0 })).resolves.toMatchObject({ applied: [] });
    const left = await g.read("MATCH (l:MigrationLock) WHERE l.owner = 'dead-host:1:x' RETURN count(l) AS n");
    expect(left).toEqual([{ n: 0 }]);
  });
});
