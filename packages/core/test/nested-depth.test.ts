import { describe, expect, it } from "vitest";
import { nestedTooDeep } from "../src/index.js";

/** `depth` levels of `{ k: [ ... ] }` alternating, innermost `leaf`. */
function nested(depth: number, leaf: unknown = 1): unknown {
  let value = leaf;
  for (let i = depth - 1; i >= 0; i--) value = i % 2 ? [value] : { k: value };
  return value;
}

// nestedTooDeep walks every event twice only when it is too deep (a walk without paths first):
// the path it names must be the one the walk with paths finds.
describe("nestedTooDeep", () => {
  it("passes a value at the limit and names where one past it starts", () => {
    expect(nestedTooDeep(nested(4), 4)).toBeUndefined();
    expect(nestedTooDeep(nested(5), 4)).toEqual(["k", 0, "k", 0]);
    expect(nestedTooDeep({ a: 1, b: [2, { c: nested(3) }] }, 4)).toEqual(["b", 1, "c", "k"]);
  });

  it("looks at own members only, and at no depth overflows the stack", () => {
    const inherited = Object.create({ deep: nested(10) }) as object;
    expect(nestedTooDeep(inherited, 2)).toBeUndefined();
    expect(nestedTooDeep(nested(100_000), 256)?.length).toBe(256);
    expect(nestedTooDeep("text")).toBeUndefined();
  });

  it("is called afresh from inside another call (a getter) without mixing their walks up", () => {
    let inner: unknown;
    const value = {
      get x() {
        inner = nestedTooDeep(nested(3), 2);
        return { y: 1 };
      },
    };
    expect(nestedTooDeep(value, 1)).toEqual(["x"]);
    expect(inner).toEqual(["k", 0]);
    expect(nestedTooDeep(nested(2), 2)).toBeUndefined();
  });
});
