import { z } from "zod";
import { AuditgraphError } from "./errors.js";
import { sha256Hex } from "./hashing.js";

const SAFE = /^[A-Za-z0-9_-]{1,64}$/;

/** The most shards a tenant can have: each is a stream, a chain, a tree and a writer lock. */
export const MAX_SHARDS = 256;

/** Between a tenant's base stream id and a shard's number: a tenant-safe id never holds it. */
const SHARD_SEPARATOR = ".";

/**
 * The ledger stream (hash-chain partition) of one shard of a tenant. Shard 0 is the tenant's base
 * stream (`tenant-acme`, the only one of a tenant with one shard, and where the tenant's own
 * records go: deployments, erasures, shard changes); shard i > 0 is `tenant-acme.i`. Tenants never
 * contend on one chain, and a tenant with K shards has K writers. Ids that are not file- and
 * key-safe are hashed.
 */
export function streamIdFor(tenantId: string, shard = 0, ...misuse: never[]): string {
  // `tenants.map(streamIdFor)` would take each tenant's index in the list for its shard (map passes
  // value, index, list): the compiler refuses it through `misuse`, and plain JavaScript meets this.
  if (misuse.length > 0 || !Number.isInteger(shard) || shard < 0 || shard >= MAX_SHARDS)
    throw new AuditgraphError(
      "AUDITGRAPH_E_STREAM_ID",
      `streamIdFor(tenantId, shard): ${misuse.length > 0 ? `called with ${2 + misuse.length} arguments (from Array.prototype.map? use list.map((t) => streamIdFor(t)))` : `shard must be an integer from 0 to ${MAX_SHARDS - 1}, got ${String(shard)}`}`,
    );
  const base = SAFE.test(tenantId) ? `tenant-${tenantId}` : `tenant-h${sha256Hex(tenantId).slice(0, 32)}`;
  return shard === 0 ? base : `${base}${SHARD_SEPARATOR}${shard}`;
}

/** A stream id's tenant base stream and shard number (`tenant-acme.3` -> `tenant-acme`, 3). */
export function shardOfStream(streamId: string): { base: string; shard: number } {
  const at = streamId.lastIndexOf(SHARD_SEPARATOR);
  const shard = at < 0 ? Number.NaN : Number(streamId.slice(at + 1));
  return Number.isSafeInteger(shard) && shard > 0 ? { base: streamId.slice(0, at), shard } : { base: streamId, shard: 0 };
}

/** Whether `streamId` is one of the tenant's shards (whatever its shard count was then or is now). */
export function isStreamOfTenant(streamId: string, tenantId: string): boolean {
  return shardOfStream(streamId).base === streamIdFor(tenantId);
}

/** The tenant's streams among `streamIds` (a ledger's), its base stream first, then by shard. */
export function streamsOfTenant(streamIds: readonly string[], tenantId: string): string[] {
  return streamIds.filter((s) => isStreamOfTenant(s, tenantId)).sort((a, b) => shardOfStream(a).shard - shardOfStream(b).shard);
}

/**
 * The shard of a trace among `shards`: FNV-1a (32-bit) over the trace id's UTF-16 code units,
 * modulo the count. Every event of a trace carries the trace id, so a trace never spans shards
 * while the count stays; it is cheap (no allocation), and fixed here so every producer, worker
 * and tool computes the same.
 */
export function shardOf(traceId: string, shards: number): number {
  if (shards <= 1) return 0;
  let hash = 0x811c9dc5;
  for (let i = 0; i < traceId.length; i++) {
    hash ^= traceId.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0) % shards;
}

const count = z.coerce.number().int().min(1).max(MAX_SHARDS);

/**
 * `AUDITGRAPH_SHARDS`: how many shards (streams) a tenant's events spread over, by trace id.
 * Either one count for every tenant (`8`), or per tenant with an optional default for the rest
 * (`acme:8,globex:2,*:4`; a tenant not named, and no `*`: 1). Agents (their transport groups a
 * batch by shard) and workers read the same value.
 */
export const ShardsSchema = z
  .string()
  .trim()
  .transform((text, ctx) => {
    const byTenant = new Map<string, number>();
    let fallback = 1;
    for (const part of text.split(",")) {
      const at = part.lastIndexOf(":");
      const [tenant, value] = at < 0 ? ["*", part] : [part.slice(0, at).trim(), part.slice(at + 1)];
      const parsed = count.safeParse(value.trim());
      if (!parsed.success || tenant === "" || (at < 0 && text.includes(","))) {
        ctx.addIssue({
          code: "custom",
          message: `${JSON.stringify(part)}: must be a count (1-${MAX_SHARDS}) or tenant:count entries, comma-separated, with * for the rest`,
        });
        return z.NEVER;
      }
      if (tenant === "*") fallback = parsed.data;
      else byTenant.set(tenant, parsed.data);
    }
    return { fallback, byTenant };
  });
export type Shards = z.output<typeof ShardsSchema>;

/** The same, as an option in code: the variable's text, one count for every tenant, or counts already read (a `Shards`). */
export const ShardsOptionSchema = z.union([
  z.custom<Shards>((v) => typeof v === "object" && v !== null && (v as Shards).byTenant instanceof Map && Number.isInteger((v as Shards).fallback)),
  z.union([z.int(), z.string()]).pipe(z.coerce.string()).pipe(ShardsSchema),
]);

/** One shard for every tenant: what an unset `AUDITGRAPH_SHARDS` means. */
export const ONE_SHARD: Shards = { fallback: 1, byTenant: new Map() };

/** The tenant's shard count under `shards`. */
export const shardCountOf = (shards: Shards, tenantId: string): number => shards.byTenant.get(tenantId) ?? shards.fallback;

/** The stream an event of `tenantId` and `traceId` goes to under `shards`. */
export const streamOfTrace = (shards: Shards, tenantId: string, traceId: string): string =>
  streamIdFor(tenantId, shardOf(traceId, shardCountOf(shards, tenantId)));
