import { createHash } from "node:crypto";
// canonicalize is CommonJS typed as `export default`: under NodeNext its default export is reached via the namespace.
import * as jcs from "canonicalize";

const serialize = jcs.default as unknown as (input: unknown) => string | undefined;

/** RFC 8785 (JCS) canonical JSON: the byte form every hash in auditgraph is taken over. */
export function canonicalJson(value: unknown): string {
  const text = serialize(value);
  if (text === undefined) throw new TypeError("value has no JSON form (undefined or a function)");
  return text;
}

export function sha256Hex(data: string | Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

/** SHA-256 (hex) of the canonical JSON of `value`. */
export function hashCanonical(value: unknown): string {
  return sha256Hex(canonicalJson(value));
}
