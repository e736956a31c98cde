import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { AuditgraphError, MAX_ID_LENGTH } from "@auditgraph/core";

// OTLP ingest tokens: the tenant of every span a request carries comes from its bearer token,
// never from the span. The configuration holds only the tokens' SHA-256 digests
// (AUDITGRAPH_OTLP_TOKENS = "<tenantId>:<sha256 hex>,..."), so it is no secret itself; a
// presented token is hashed and compared to every digest in constant time.

/** The environment variable the worker reads its OTLP tokens from. */
export const OTLP_TOKENS_ENV = "AUDITGRAPH_OTLP_TOKENS";
/** What a token starts with: a secret scanner (and a reader of a leaked log) can tell what it is. */
export const OTLP_TOKEN_PREFIX = "agotlp_";

export interface OtlpTokenEntry {
  tenantId: string;
  /** SHA-256 of the token, 32 bytes. */
  digest: Buffer;
}

const digestOf = (token: string) => createHash("sha256").update(token, "utf8").digest();

/** Parses AUDITGRAPH_OTLP_TOKENS; AUDITGRAPH_E_OTLP_TOKENS naming the entry (by position, never by value) when one is malformed. */
export function parseOtlpTokens(value: string | undefined): OtlpTokenEntry[] {
  const entries: OtlpTokenEntry[] = [];
  const items = (value ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  items.forEach((item, index) => {
    // The tenant may itself hold a colon: the digest is what follows the last one.
    const at = item.lastIndexOf(":");
    const tenantId = at > 0 ? item.slice(0, at) : "";
    const hex = at > 0 ? item.slice(at + 1) : "";
    if (!tenantId || tenantId.length > MAX_ID_LENGTH || !/^[0-9a-fA-F]{64}$/.test(hex))
      throw new AuditgraphError(
        "AUDITGRAPH_E_OTLP_TOKENS",
        `${OTLP_TOKENS_ENV}: entry ${index + 1} must be <tenantId>:<sha256 hex of the token> (64 hex digits), tenant 1-${MAX_ID_LENGTH} characters`,
      );
    entries.push({ tenantId, digest: Buffer.from(hex, "hex") });
  });
  return entries;
}

/**
 * The tenant whose token `authorization` (an HTTP Authorization header) bears, or undefined. Every
 * entry is compared, each in constant time, so the time taken says nothing of which one matched.
 */
export function tenantOfBearer(entries: readonly OtlpTokenEntry[], authorization: string | undefined): string | undefined {
  const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(authorization ?? "");
  if (!match) return undefined;
  const digest = digestOf(match[1]!);
  let tenant: string | undefined;
  for (const entry of entries) if (timingSafeEqual(entry.digest, digest) && tenant === undefined) tenant = entry.tenantId;
  return tenant;
}

/** A new random token for `tenantId`, and the entry to add to AUDITGRAPH_OTLP_TOKENS for it. */
export function newOtlpToken(tenantId: string): { token: string; entry: string } {
  if (!tenantId || tenantId.length > MAX_ID_LENGTH || tenantId.includes(","))
    throw new AuditgraphError("AUDITGRAPH_E_OTLP_TOKENS", `tenant id must be 1-${MAX_ID_LENGTH} characters without a comma`);
  const token = `${OTLP_TOKEN_PREFIX}${randomBytes(32).toString("base64url")}`;
  return { token, entry: `${tenantId}:${digestOf(token).toString("hex")}` };
}
