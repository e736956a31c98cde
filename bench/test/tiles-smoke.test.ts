import { describe, expect, it } from "vitest";
import { formatReport, runTilesBenchmark } from "../tiles.js";

// Tiny counts: every part of the tiles bench runs end to end on real SegmentLedgers in a temp
// dir and yields numbers. It asserts nothing about timings.
describe("bench/tiles (smoke)", () => {
  it("yields a finite positive number for every figure", async () => {
    const result = await runTilesBenchmark({ records: 3000, proofs: 5, baselineProofs: 1, rounds: 1, batchesPerRound: 1, log: () => {} });
    expect(result.append).toHaveLength(4);
    const figures: [string, number | undefined][] = [
      ["build", result.buildSeconds],
      ["seconds", result.seconds],
    ];
    for (const c of result.append) figures.push([`append ${c.batch} ${c.variant}`, c.usPerRecord], [`events ${c.batch} ${c.variant}`, c.events]);
    for (const [name, s] of Object.entries({
      prove: result.proveMs,
      cold: result.coldProveMs,
      tiles: result.tileProofMs,
      consistency: result.consistencyMs,
      baseline: result.baselineProveMs,
    }))
      figures.push([`${name} p50`, s.p50], [`${name} max`, s.max]);
    for (const [name, value] of figures) expect(typeof value === "number" && Number.isFinite(value) && value > 0, `${name} = ${value}`).toBe(true);
    expect(Number.isFinite(result.append[3]!.overBaseline)).toBe(true);
    expect(formatReport(result)).toContain("goals:");
  });
});
