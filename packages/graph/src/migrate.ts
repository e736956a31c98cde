import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { AuditgraphError, sha256Hex } from "@auditgraph/core";
import type { Driver } from "neo4j-driver";
import { withMigrationLock, type MigrationLockOptions } from "./migration-lock.js";

// Shipped inside this package (see package.json "files"): dist/ and src/ both sit one level below it.
export const DEFAULT_MIGRATIONS_DIR = fileURLToPath(new URL("../graph-schema/migrations/", import.meta.url));

export interface MigrationResult {
  applied: string[];
  skipped: string[];
}

/** Split a .cypher file into statements: `;` at a line end ends one; `//` lines are comments. */
export function splitStatements(text: string): string[] {
  const body = text
    .split("\n")
    .filter((line) => !line.trim().startsWith("//"))
    .join("\n");
  return body
    .split(/;\s*(?:\n|$)/)
    .map((s) => s.trim())
    .filter(Boolean);
}

/** `signal`: stop waiting for another migrator's lease (see `withMigrationLock`); the graph must stay open until `migrate` settles. */
export type MigrateOptions = MigrationLockOptions & { dir?: string; onWait?: (holder: string) => void; signal?: AbortSignal };

/**
 * Apply `NNNN_name.cypher` files in order, each once; applied ones are recorded as
 * (:Migration) nodes with their checksum, and a changed file that was already applied is refused.
 * Concurrent migrators of one database take turns (see `withMigrationLock`): the second finds
 * everything applied.
 */
export function migrate(driver: Driver, database: string, options: MigrateOptions = {}): Promise<MigrationResult> {
  const { dir = DEFAULT_MIGRATIONS_DIR, ...lock } = options;
  return withMigrationLock(driver, database, () => applyMigrations(driver, database, dir), lock);
}

async function applyMigrations(driver: Driver, database: string, dir: string): Promise<MigrationResult> {
  const files = (await readdir(dir)).filter((f) => /^\d{4}_[\w-]+\.cypher$/.test(f)).sort();
  const result: MigrationResult = { applied: [], skipped: [] };
  for (const file of files) {
    const version = file.slice(0, 4);
    const text = await readFile(join(dir, file), "utf8");
    const checksum = sha256Hex(text);
    const existing = await driver.executeQuery(
      "MATCH (m:Migration {version: $version}) RETURN m.checksum AS checksum",
      { version },
      { database, routing: "READ" },
    );
    const recorded = existing.records[0]?.get("checksum") as string | undefined;
    if (recorded === checksum) {
      result.skipped.push(file);
      continue;
    }
    if (recorded !== undefined) {
      throw new AuditgraphError(
        "AUDITGRAPH_E_MIGRATION_CHANGED",
        `migration ${file} was changed after it was applied (checksum ${recorded.slice(0, 12)}…); add a new migration instead`,
      );
    }
    // Schema statements cannot share a transaction with writes: one auto-commit each.
    for (const statement of splitStatements(text)) await driver.executeQuery(statement, {}, { database });
    await driver.executeQuery(
      "MERGE (m:Migration {version: $version}) ON CREATE SET m.name = $name, m.checksum = $checksum, m.appliedAt = datetime()",
      { version, name: file, checksum },
      { database },
    );
    result.applied.push(file);
  }
  return result;
}
