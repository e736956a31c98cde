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

/** What JSON.stringify escapes in a string: C0 controls, the quote, the backslash, surrogates (a lone one it writes as an escape). */
// biome-ignore lint/suspicious/noControlCharactersInRegex: those are what it looks for
const ESCAPED = /[\u0000-\u001f\u0022\u005c\ud800-\udfff]/;

/** Whether JSON.stringify writes `text` as itself in quotes: a short regex test costs less than a call of JSON.stringify. */
export const writtenAsIs = (text: string): boolean => !ESCAPED.test(text);

/**
 * Writes the canonical JSON of a plain JSON value into `out` as pieces, joined once: what
 * safe-stable-stringify writes (keys sorted by UTF-16 code units, strings and numbers in
 * JSON.stringify's form), without the intermediate string it makes of every member, which was
 * about a fifth of what the worker allocates per event. False, leaving `out` part-written, on
 * anything but null, booleans, finite numbers, strings, arrays and plain objects without toJSON
 * (an undefined member, a cycle): safe-stable-stringify then writes (or refuses) it.
 */
function writePlain(value: unknown, out: string[], depth: number): boolean {
  switch (typeof value) {
    case "string":
      if (writtenAsIs(value)) out.push('"', value, '"');
      else out.push(JSON.stringify(value));
      return true;
    case "number":
      if (!Number.isFinite(value)) return false;
      out.push(String(value));
      return true;
    case "boolean":
      out.push(value ? "true" : "false");
      return true;
    case "object":
      break;
    default:
      return false;
  }
  if (value === null) {
    out.push("null");
    return true;
  }
  if (depth > MAX_SORTED_DEPTH || (value as { toJSON?: unknown }).toJSON !== undefined) return false;
  if (Array.isArray(value)) {
    out.push("[");
    for (let i = 0; i < value.length; i++) {
      if (i > 0) out.push(",");
      if (!writePlain(value[i], out, depth + 1)) return false;
    }
    out.push("]");
    return true;
  }
  const proto: unknown = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return false;
  const keys = sortKeys(Object.keys(value));
  out.push("{");
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i]!;
    if (i > 0) out.push(",");
    // Not kept between calls: keys are the events' content too.
    if (writtenAsIs(key)) out.push('"', key, '":');
    else out.push(JSON.stringify(key), ":");
    if (!writePlain((value as Record<string, unknown>)[key], out, depth + 1)) return false;
  }
  out.push("}");
  return true;
}

/**
 * Keys in UTF-16 code unit order, as Array.prototype.sort puts them; an insertion sort in place
 * for the few keys an object has, which (unlike V8's sort) allocates nothing.
 */
function sortKeys(keys: string[]): string[] {
  if (keys.length > 64) return keys.sort();
  for (let i = 1; i < keys.length; i++) {
    const key = keys[i]!;
    let at = i;
    while (at > 0 && keys[at - 1]! > key) {
      keys[at] = keys[at - 1]!;
      at--;
    }
    keys[at] = key;
  }
  return keys;
}

/** The pieces' array, reused; a call made while it is in use (from a getter) takes its own. */
const pieces: string[] = [];
let piecesInUse = false;

/** RFC 8785 (JCS) canonical JSON: the byte form every hash in auditgraph is taken over. */
export function canonicalJson(value: unknown): string {
  if (typeof value === "object" && value !== null) {
    if (sortedPlain(value, 0)) return JSON.stringify(value);
    const out = piecesInUse ? [] : pieces;
    const shared = out === pieces;
    if (shared) piecesInUse = true;
    try {
      if (writePlain(value, out, 0)) return out.join("");
    } finally {
      out.length = 0;
      if (shared) piecesInUse = false;
    }
  }
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
