import { randomUUID } from "node:crypto";
import { hostname } from "node:os";
import { z } from "zod";
import { AuditgraphError, parseWith } from "@auditgraph/core";
import type { Driver } from "neo4j-driver";
import { setTimeout as sleep } from "node:timers/promises";

/**
 * One migrator at a time per database: worker replicas, `auditgraph migrate` and the demo may all
 * start together on a fresh Neo4j, and two concurrent `CREATE INDEX ... IF NOT EXISTS` of the same
 * index make one of them fail ("An equivalent index already exists"), while a data migration run
 * twice at once could rewrite what the other is rewriting. A lease, not a plain flag: a migrator
 * that dies holding it frees it when the lease runs out, and a live one renews it.
 */
export const MigrationLockOptionsSchema = z.strictObject({
  /** How long a holder's lease lasts without renewal; renewed every third of it while migrating. */
  leaseMs: z.int().positive().default(60_000),
  /** How long to wait for another migrator before giving up with AUDITGRAPH_MIGRATION_LOCKED. */
  waitMs: z.int().nonnegative().default(600_000),
});
export type MigrationLockOptions = z.input<typeof MigrationLockOptionsSchema>;

export class MigrationLockedError extends AuditgraphError {
  override readonly name = "MigrationLockedError";
  declare readonly code: "AUDITGRAPH_MIGRATION_LOCKED";
  constructor(holder: string, waitedMs: number) {
    super(
      "AUDITGRAPH_MIGRATION_LOCKED",
      `another migrator (${holder}) still holds the graph migration lock after ${Math.round(waitedMs / 1000)} s; it frees itself when its holder stops`,
    );
  }
}

/** A migrator stopped (its signal aborted) while it waited for another's lease: it never held the lock. */
export class MigrationAbortedError extends AuditgraphError {
  override readonly name = "MigrationAbortedError";
  declare readonly code: "AUDITGRAPH_E_MIGRATION_ABORTED";
  constructor(holder: string) {
    super("AUDITGRAPH_E_MIGRATION_ABORTED", `stopped waiting for the graph migration lock, which another migrator (${holder}) holds; nothing was migrated`);
  }
}

const LOCK_ID = "graph";
const LOCK_CONSTRAINT = "CREATE CONSTRAINT migration_lock_id IF NOT EXISTS FOR (n:MigrationLock) REQUIRE n.id IS UNIQUE";
const EQUIVALENT_RULE = "Neo.ClientError.Schema.EquivalentSchemaRuleAlreadyExists";

// `SET l._lock` takes the node's write lock before its holder is read, so two migrators that MERGE
// the same node at once are serialised and the second sees the first's claim.
const ACQUIRE = `
MERGE (l:MigrationLock {id: $id})
SET l._lock = true
WITH l, (l.owner IS NULL OR l.owner = $owner OR l.expiresAt < $now) AS free
SET l.owner = CASE WHEN free THEN $owner ELSE l.owner END,
    l.expiresAt = CASE WHEN free THEN $expiresAt ELSE l.expiresAt END
REMOVE l._lock
RETURN free, l.owner AS holder`;
const RENEW = `MATCH (l:MigrationLock {id: $id}) WHERE l.owner = $owner SET l.expiresAt = $expiresAt`;
const RELEASE = `MATCH (l:MigrationLock {id: $id}) WHERE l.owner = $owner DELETE l`;

const codeOf = (error: unknown) => (error as { code?: unknown } | null)?.code;

/**
 * Runs `work` holding the database's migration lease; others wait for it (with `onWait` told once).
 * `signal` stops the wait (MigrationAbortedError), never the work: a migrator that holds the lease
 * finishes and releases it, so that one stopping mid-way (a worker shut down while it migrates)
 * neither leaves a migration half applied nor keeps the others waiting for its lease to run out.
 * Its driver must stay open until this settles.
 */
export async function withMigrationLock<T>(
  driver: Driver,
  database: string,
  work: () => Promise<T>,
  options: MigrationLockOptions & { onWait?: (holder: string) => void; signal?: AbortSignal } = {},
): Promise<T> {
  const { onWait, signal, ...rest } = options;
  const { leaseMs, waitMs } = parseWith(MigrationLockOptionsSchema, rest, "migration lock options");
  try {
    await driver.executeQuery(LOCK_CONSTRAINT, {}, { database });
  } catch (error) {
    // Another migrator created it at the same moment: it exists, which is all this needs.
    if (codeOf(error) !== EQUIVALENT_RULE) throw error;
  }
  const owner = `${hostname()}:${process.pid}:${randomUUID()}`;
  const started = Date.now();
  let told = false;
  for (let pause = 100; ; pause = Math.min(pause * 2, 2_000)) {
    const now = Date.now();
    const { records } = await driver.executeQuery(ACQUIRE, { id: LOCK_ID, owner, now, expiresAt: now + leaseMs }, { database });
    if (records[0]!.get("free") === true) break;
    const holder = String(records[0]!.get("holder"));
    if (now - started >= waitMs) throw new MigrationLockedError(holder, now - started);
    if (!told) onWait?.(holder);
    told = true;
    // Rejects at once when the signal is aborted already.
    await sleep(pause, undefined, { signal }).catch((error: unknown) => {
      throw signal?.aborted ? new MigrationAbortedError(holder) : error;
    });
  }
  const renewal = setInterval(
    () => {
      driver.executeQuery(RENEW, { id: LOCK_ID, owner, expiresAt: Date.now() + leaseMs }, { database }).catch(() => {
        // A missed renewal only shortens the lease; the next one (or the release) tries again.
      });
    },
    Math.max(1, Math.floor(leaseMs / 3)),
  );
  renewal.unref();
  try {
    return await work();
  } finally {
    clearInterval(renewal);
    await driver.executeQuery(RELEASE, { id: LOCK_ID, owner }, { database });
  }
}
