import { z } from "zod";

const STRICT = z.json();

/** A JSON value, as `z.json()` gives it. */
export type Json = z.output<typeof STRICT>;

/** Not a plain JSON value: handed to `z.json()` whole, which says why (or takes what it is). */
const UNUSUAL = Symbol("unusual");

/** Deeper than this the copy stops and `z.json()` takes over (it handles cycles). */
const MAX_DEPTH = 512;

/**
 * `z.json()`'s output for a plain JSON value, made without it: strings, finite numbers, booleans
 * and null as they are, arrays and plain objects copied member by member, as its array and
 * record parse them. UNUSUAL for anything else, and for what its record treats specially (a
 * `__proto__` key, symbol keys, another prototype), so that every such value takes `z.json()`'s
 * own path.
 */
function plainCopy(value: unknown, depth: number): unknown {
  switch (typeof value) {
    case "string":
    case "boolean":
      return value;
    case "number":
      return Number.isFinite(value) ? value : UNUSUAL;
    case "object":
      break;
    default:
      return UNUSUAL;
  }
  if (value === null) return null;
  if (depth > MAX_DEPTH) return UNUSUAL;
  if (Array.isArray(value)) {
    if (Object.getPrototypeOf(value) !== Array.prototype) return UNUSUAL;
    const out: unknown[] = new Array(value.length);
    for (let i = 0; i < value.length; i++) {
      const item = plainCopy(value[i], depth + 1);
      if (item === UNUSUAL) return UNUSUAL;
      out[i] = item;
    }
    return out;
  }
  const proto: unknown = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return UNUSUAL;
  // Its record reads the own enumerable keys, symbols among them (which it refuses): Object.keys
  // gives the string ones in the same order, and a symbol sends the value to z.json().
  if (Object.getOwnPropertySymbols(value).length > 0) return UNUSUAL;
  const keys = Object.keys(value);
  const out: Record<string, unknown> = {};
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i]!;
    if (key === "__proto__") return UNUSUAL;
    const item = plainCopy((value as Record<string, unknown>)[key], depth + 1);
    if (item === UNUSUAL) return UNUSUAL;
    out[key] = item;
  }
  return out;
}

/**
 * `z.json()`, same output and same issues, without its cost on the worker's path: `z.json()` is a
 * recursive schema, and zod keeps a memo of every object and array parsed by a recursive schema
 * or any schema holding one (cycle support), so with it in the event schema each event's parse
 * made a WeakMap per container schema and an entry per object, most of the allocation of
 * validating an event. A plain JSON value (all a job parsed from Redis holds) is checked and
 * copied here; anything else is handed to `z.json()` itself, whose issues are reported as its own.
 */
export function jsonValue(): z.ZodType<Json, Json> {
  return z.unknown().transform((value, ctx) => {
    const copy = plainCopy(value, 0);
    if (copy !== UNUSUAL) return copy as Json;
    const strict = STRICT.safeParse(value);
    if (strict.success) return strict.data;
    for (const issue of strict.error.issues) ctx.issues.push(issue as unknown as (typeof ctx.issues)[number]);
    return z.NEVER;
  }) as unknown as z.ZodType<Json, Json>;
}
