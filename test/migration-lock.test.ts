import { mkdtemp, writeFile } from "node:fs/promises";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Graph, MigrationLockedError, withMigrationLock, type MigrateOptions } from "@auditgraph/graph";
import { loadConfig } from "@auditgraph/cli";
import { SegmentLedger } from "@auditgraph/ledger";
import { AuditWorker } from "@auditgraph/worker";

// Worker replicas and `auditgraph migrate` start together on a fresh Neo4j: each must come up,
// and each migration must run exactly once. Test migrations use versions 9xxx and unique index
// names, so they never touch the real schema; what they count lives on (:Migration) nodes,
// which no projection delete removes.
const run = randomUUID().slice(0, 8);
const probe = `probe-${run}`;
const versions = ["9001", "9002", "9003"];
let dir: string;
/** A migration that takes a second or more (a data migration over a large graph), alone in its directory. */
let slowDir: string;
/** The lock's owner ids of this process start so (`withMigrationLock`): what another test file's migrators are not. */
const ours = `${hostname()}:${process.pid}:`;
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
  slowDir = await mkdtemp(join(tmpdir(), "auditgraph-migrations-slow-"));
  await writeFile(join(slowDir, `9003_slow_${run}.cypher`), "UNWIND range(1, 20000000) AS x WITH x WHERE x < 0 RETURN count(x);\n");
});

afterAll(async () => {
  const g = graph();
  for (const statement of [`DROP INDEX probe_${run}_a IF EXISTS`, `DROP CONSTRAINT probe_${run}_b IF EXISTS`, `DROP INDEX probe_${run}_c IF EXISTS`]) {
    await g.driver.executeQuery(statement, {}, { database: g.database });
  }
  await g.driver.executeQuery("MATCH (m:Migration) WHERE m.version IN $versions DELETE m", { versions: [...versions, probe] }, { database: g.database });
  // A lock this process left behind (a failed test) would hold every other migrator for a lease.
  await g.driver.executeQuery("MATCH (l:MigrationLock) WHERE l.owner STARTS WITH $ours DELETE l", { ours }, { database: g.database });
  await Promise.all(graphs.map((x) => x.close()));
});

/** A migrator that holds the lock until `release` (resolved with "first" then), once it holds it. */
async function holdLock() {
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
  return { first, release };
}

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
    const { first, release } = await holdLock();
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

  it("stop waiting for a held lock when their signal aborts (AUDITGRAPH_E_MIGRATION_ABORTED), never taking it", async () => {
    const { first, release } = await holdLock();
    let holderId!: string;
    let told!: () => void;
    const waiting = new Promise<void>((resolve) => (told = resolve));
    const stop = new AbortController();
    const waiter = graph().migrate({
      dir,
      signal: stop.signal,
      onWait: (h) => {
        holderId = h;
        told();
      },
    });
    await waiting;
    stop.abort();
    await expect(waiter).rejects.toMatchObject({ code: "AUDITGRAPH_E_MIGRATION_ABORTED", message: expect.stringContaining(holderId) });
    // The holder still holds it; released, the lock is free for the next migrator.
    expect(await graph().read("MATCH (l:MigrationLock {id: 'graph'}) RETURN l.owner AS owner")).toEqual([{ owner: holderId }]);
    release();
    await first;
    await expect(graph().migrate({ dir, waitMs: 60_000 })).resolves.toMatchObject({ applied: [] });
  });

  it("a worker closed while it migrates finishes the migration and frees the lock before its close resolves, so its graph can close", async () => {
    // The worker migrates in the background as it starts (its default); here through a slow migration.
    class SlowGraph extends Graph {
      override migrate(options: MigrateOptions = {}) {
        return super.migrate({ ...options, dir: slowDir });
      }
    }
    const slow = new SlowGraph(loadConfig().neo4j);
    const ledger = new SegmentLedger(join(await mkdtemp(join(tmpdir(), "auditgraph-migrate-close-")), "ledger"));
    const worker = new AuditWorker({ connection: loadConfig().redis, queueName: `migrate-close-${run}`, ledger, graph: slow });
    const observer = graph();
    const owner = async () => (await observer.read("MATCH (l:MigrationLock {id: 'graph'}) RETURN l.owner AS owner"))[0]?.owner as string | undefined;
    // Once the worker holds the lock (another test file's migrator may hold it first), it is mid-migration.
    for (let i = 0; i < 3000 && !(await owner())?.startsWith(ours); i++) await new Promise((r) => setTimeout(r, 20));
    expect(await owner()).toMatch(new RegExp(`^${ours}`));
    await worker.close();
    // What a CLI does next: close the graph. The lock is free already, and the migration was applied whole.
    await slow.close();
    expect((await owner())?.startsWith(ours) ?? false).toBe(false);
    expect(await observer.read("MATCH (m:Migration {version: '9003'}) RETURN m.name AS name")).toEqual([{ name: `9003_slow_${run}.cypher` }]);
  });
});
