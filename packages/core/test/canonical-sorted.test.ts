import fc from "fast-check";
import * as jcs from "canonicalize";
import { describe, expect, it } from "vitest";
import { canonicalJson } from "../src/index.js";

const reference = jcs.default as unknown as (input: unknown) => string;

/** `value` rebuilt with every object's keys inserted in sorted order: what canonicalJson's JSON.stringify path takes. */
function sortedCopy(value: unknown): unknown {
  if (typeof value !== "object" || value === null) return value;
  if (Array.isArray(value)) return value.map(sortedCopy);
  const out: Record<string, unknown> = {};
  // Defined, not assigned: assigning "__proto__" would set the prototype and drop the key (a JSON key like any other).
  for (const key of Object.keys(value).sort())
    Object.defineProperty(out, key, { value: sortedCopy((value as Record<string, unknown>)[key]), enumerable: true, writable: true, configurable: true });
  return out;
}

// canonicalJson writes values already in canonical order with JSON.stringify (see hashing.ts):
// held here to the independent implementation on exactly those values, and on the ones that
// look sorted but must not take that path.
describe("canonical JSON of values already in sorted order", () => {
  it("is what the canonicalize package gives, for any JSON rebuilt in sorted order", () => {
    const json = fc.jsonValue({ maxDepth: 4, depthSize: "small" });
    fc.assert(
      fc.property(json, (value) => {
        expect(canonicalJson(sortedCopy(value))).toBe(reference(value));
      }),
      // A "__proto__" key is a key like any other in JSON: always tried, not left to the draw.
      { numRuns: 2000, examples: [[JSON.parse('{"__proto__":null,"a":{"__proto__":[1]}}')]] },
    );
    const text = fc.string({ unit: "binary" });
    fc.assert(
      fc.property(fc.dictionary(text, fc.oneof(text, fc.double({ noNaN: true, noDefaultInfinity: true }))), (value) => {
        expect(canonicalJson(sortedCopy(value))).toBe(reference(value));
      }),
      { numRuns: 2000 },
    );
  });

  it("sorts integer-like keys as strings, which JSON.stringify would write in numeric order", () => {
    expect(canonicalJson({ "1": "a", "10": "b", "9": "c" })).toBe('{"1":"a","10":"b","9":"c"}');
    expect(canonicalJson({ a: { "2": 1, "10": 2 } })).toBe('{"a":{"10":2,"2":1}}');
  });

  it("leaves what JSON.stringify alone would get wrong to the full serialiser", () => {
    // toJSON (a Date), a member that is undefined, a non-finite number, a class instance.
    expect(canonicalJson({ a: new Date(0) })).toBe('{"a":"1970-01-01T00:00:00.000Z"}');
    expect(canonicalJson({ a: 1, b: undefined, c: 2 })).toBe('{"a":1,"c":2}');
    expect(canonicalJson({ a: [1, undefined] })).toBe('{"a":[1,null]}');
    expect(canonicalJson({ a: Number.NaN })).toBe('{"a":null}');
    class Point {
      constructor(
        readonly x: number,
        readonly y: number,
      ) {}
    }
    expect(canonicalJson({ p: new Point(1, 2) })).toBe('{"p":{"x":1,"y":2}}');
    expect(canonicalJson(Object.assign(Object.create(null) as object, { a: 1, b: [true, null, "\u2028\ud800"] }))).toBe(
      '{"a":1,"b":[true,null,"\u2028\\ud800"]}',
    );
  });

  it("refuses a cycle however its objects are ordered", () => {
    const cycle: Record<string, unknown> = { a: 1 };
    cycle.b = cycle;
    expect(() => canonicalJson(cycle)).toThrow();
  });
});
