import { hash } from "node:crypto";
import { configure } from "safe-stable-stringify";

/**
 * For JSON values (what events are), JSON.stringify with every object's keys sorted by UTF-16
 * code units is RFC 8785: JCS takes its number and string forms from ECMAScript's JSON.stringify.
 * safe-stable-stringify is that, and about a third faster than `canonicalize` on the append path;
 * the tests hold it to `canonicalize` over arbitrary JSON.
 */
const serialize = configure({ deterministic: true, bigint: false, circularValue: Error });

/** Deeper than this the sorted check gives up (safe-stable-stringify then says why: a cycle, or recursion too deep). */
const MAX_SORTED_DEPTH = 1000;

/**
 * Whether JSON.stringify of `value` is already its canonical JSON: only null, booleans, finite
 * numbers and strings, in arrays and plain objects (no toJSON) whose own keys come in sorted
 * order, at every level. Then JSON.stringify writes what safe-stable-stringify would, keys in
 * that order, strings and numbers alike (safe-stable-stringify takes both from it), and is
 * several times faster: V8 writes it in one pass, nothing sorted, no string tested for escapes.
 * Objects the ledger builds itself (a record around a sealed event) are made in sorted order
 * to take this path; an event as received seldom is, and fails here at its first unsorted keys.
 */
function sortedPlain(value: unknown, depth: number): boolean {
  if (typeof value !== "object") return typeof value === "string" || typeof value === "boolean" || (typeof value === "number" && Number.isFinite(value));
  if (value === null) return true;
  if (depth > MAX_SORTED_DEPTH) return false;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) if (!sortedPlain(value[i], depth + 1)) return false;
    return true;
  }
  const proto: unknown = Object.getPrototypeOf(value);
  if ((proto !== Object.prototype && proto !== null) || (value as { toJSON?: unknown }).toJSON !== undefined) return false;
  // Object.keys gives the order JSON.stringify writes (integer-like keys first, ascending), so
  // it is that order which must be sorted by UTF-16 code units, as JCS sorts.
  const keys = Object.keys(value);
  for (let i = 0; i < keys.length; i++) {
    if (i > 0 && !(keys[i - 1]! < keys[i]!)) return false;
    if (!sortedPlain((value as Record<string, unknown>)[keys[i]!], depth + 1)) return false;
  }
  return true;
}

/** RFC 8785 (JCS) canonical JSON: the byte form every hash in auditgraph is taken over. */
export function canonicalJson(value: unknown): string {
  if (typeof value === "object" && value !== null && sortedPlain(value, 0)) return JSON.stringify(value);
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
