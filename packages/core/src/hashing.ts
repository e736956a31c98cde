import { hash } from "node:crypto";
import { configure } from "safe-stable-stringify";

/**
 * For JSON values (what events are), JSON.stringify with every object's keys sorted by UTF-16
 * code units is RFC 8785: JCS takes its number and string forms from ECMAScript's JSON.stringify.
 * safe-stable-stringify is that, and about a third faster than `canonicalize` on the append path;
 * the tests hold it to `canonicalize` over arbitrary JSON.
 */
const serialize = configure({ deterministic: true, bigint: false, circularValue: Error });

/** RFC 8785 (JCS) canonical JSON: the byte form every hash in auditgraph is taken over. */
export function canonicalJson(value: unknown): string {
  const text = serialize(value);
  if (text === undefined) throw new TypeError("value has no JSON form (undefined or a function)");
  return text;
}

export function sha256Hex(data: string | Uint8Array): string {
  return hash("sha256", data, "hex");
}

/** SHA-256 (hex) of the canonical JSON of `value`. */
export function hashCanonical(value: unknown): string {
  return sha256Hex(canonicalJson(value));
}
