import { sha256Hex } from "./hashing.js";

const SAFE = /^[A-Za-z0-9_-]{1,64}$/;

/**
 * The ledger stream (hash-chain partition) an event belongs to: one per tenant, so that
 * tenants never contend on one chain. Ids that are not file- and key-safe are hashed.
 */
export function streamIdFor(tenantId: string): string {
  return SAFE.test(tenantId) ? `tenant-${tenantId}` : `tenant-h${sha256Hex(tenantId).slice(0, 32)}`;
}
