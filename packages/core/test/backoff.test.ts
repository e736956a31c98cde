import { describe, expect, it } from "vitest";
import { backoffMs } from "../src/index.js";

describe("backoffMs", () => {
  it("doubles from minMs per attempt and stops at maxMs", () => {
    expect([1, 2, 3, 4, 5, 6].map((a) => backoffMs(a, { minMs: 5, maxMs: 50 }))).toEqual([5, 10, 20, 40, 50, 50]);
  });

  it("never overflows past the cap on a long outage", () => {
    expect(backoffMs(10_000, { minMs: 100, maxMs: 30_000 })).toBe(30_000);
    expect(backoffMs(10_000, { minMs: 200, maxMs: Number.POSITIVE_INFINITY })).toBe(200 * 2 ** 30);
  });

  it("with full jitter, draws from [0, step)", () => {
    expect(backoffMs(3, { minMs: 100, maxMs: 1_000, jitter: "full" }, () => 0)).toBe(0);
    expect(backoffMs(3, { minMs: 100, maxMs: 1_000, jitter: "full" }, () => 0.5)).toBe(200);
    expect(backoffMs(3, { minMs: 100, maxMs: 1_000, jitter: "full" }, () => 0.999)).toBe(399);
  });
});
