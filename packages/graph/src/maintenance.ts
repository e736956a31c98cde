import neo4j, { type Driver } from "neo4j-driver";
import { z } from "zod";
import { parseWith, streamIdFor } from "@auditgraph/core";

/**
 * Which part of the projection a rebuild replaces: all of it, or one tenant's (its nodes, found by
 * `tenantId`, its Tenant node and the cursors of all its streams, every shard). Nodes that tenants share (Agent,
 * AgentVersion, ModelVersion, Tool) are left to the whole-database scope: another tenant's
 * traces point at them.
 */
export const ProjectionScopeSchema = z.object({ tenantId: z.string().trim().min(1, "must be a non-empty tenant id").optional() });
export type ProjectionScope = z.input<typeof ProjectionScopeSchema>;

export const DeleteOptionsSchema = z.object({
  /** Nodes deleted per transaction: a large projection is never deleted in one transaction's memory. */
  batchSize: z.int().positive().default(5_000),
});

// The migrations stay: they record the schema, which a rebuild keeps (and a migrator's lease with them).
const ALL = `NOT n:Migration AND NOT n:MigrationLock`;
// A tenant's streams: its base stream and `<base>.<shard>` for a shard > 0 (as `isStreamOfTenant`);
// matched exactly, never by a pattern built from the tenant id.
const TENANT_STREAM = `(n.streamId = $streamId OR (n.streamId STARTS WITH $shardPrefix AND substring(n.streamId, size($shardPrefix)) =~ '0*[1-9][0-9]{0,14}'))`;
const TENANT = `n.tenantId = $tenantId OR (n:Tenant AND n.id = $tenantId) OR (n:ProjectionCursor AND ${TENANT_STREAM})`;

const paramsOf = (scope: ProjectionScope) => {
  const { tenantId } = parseWith(ProjectionScopeSchema, scope, "projection scope");
  const base = tenantId === undefined ? null : streamIdFor(tenantId);
  return {
    where: tenantId === undefined ? ALL : TENANT,
    params: { tenantId: tenantId ?? null, streamId: base, shardPrefix: base === null ? null : `${base}.` },
  };
};

/** How many nodes the scope holds. */
export async function countProjection(driver: Driver, database: string, scope: ProjectionScope = {}): Promise<number> {
  const { where, params } = paramsOf(scope);
  const result = await driver.executeQuery(`MATCH (n) WHERE ${where} RETURN count(n) AS n`, params, { database, routing: "READ" });
  return result.records[0]!.get("n") as number;
}

/**
 * Deletes the scope's nodes and their relationships, `batchSize` nodes a transaction, reporting
 * the running count after each: the number of nodes deleted.
 */
export async function deleteProjection(
  driver: Driver,
  database: string,
  scope: ProjectionScope = {},
  options: z.input<typeof DeleteOptionsSchema> & { onProgress?: (deleted: number) => void } = {},
): Promise<number> {
  const { where, params } = paramsOf(scope);
  const { batchSize } = parseWith(DeleteOptionsSchema, { batchSize: options.batchSize }, "delete options");
  let deleted = 0;
  for (;;) {
    const result = await driver.executeQuery(
      `MATCH (n) WHERE ${where} WITH n LIMIT $batchSize DETACH DELETE n RETURN count(*) AS deleted`,
      { ...params, batchSize: neo4j.int(batchSize) },
      { database },
    );
    const n = result.records[0]!.get("deleted") as number;
    if (n === 0) return deleted;
    deleted += n;
    options.onProgress?.(deleted);
  }
}
