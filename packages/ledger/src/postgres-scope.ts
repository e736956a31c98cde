import { streamIdFor } from "@auditgraph/core";
import type { StreamScope } from "./types.js";

/**
 * SQL true when `column` is within a scope given as parameters $n (a stream id or null) and $n+1
 * (a tenant's base stream or null): a tenant's streams are its base stream and `<base>.<shard>`
 * for a shard number > 0, the same test as `isStreamOfTenant`. Compared exactly, never with LIKE
 * (a tenant id may hold `_` or `%`); a base stream never holds a `.`.
 */
export function inScopeSql(column: string, n: number): string {
  const base = `$${n + 1}::text`;
  return `($${n}::text IS NULL OR ${column} = $${n}) AND (${base} IS NULL OR ${column} = ${base} OR (split_part(${column}, '.', 1) = ${base} AND substr(${column}, length(${base}) + 2) ~ '^0*[1-9][0-9]{0,14}$'))`;
}

/** The parameters of `inScopeSql`: the stream id, and the tenant's base stream. */
export const scopeParams = (scope: StreamScope): [string | null, string | null] => [
  scope.streamId ?? null,
  scope.tenantId === undefined ? null : streamIdFor(scope.tenantId),
];
