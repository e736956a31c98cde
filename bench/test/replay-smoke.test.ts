import { describe, expect, it } from "vitest";
import { formatReport, runReplayBenchmark } from "../replay.js";

// Tiny counts: checks that both sides run end to end on a real agent and yield numbers. It
// asserts nothing about timings.
describe("bench/replay (smoke)", () => {
  it("yields finite times for direct and replay runs and a ratio", async () => {
    const result = await runReplayBenchmark({ traces: 4, rounds: 2, log: () => {} });
    expect(result.traces).toBe(4);
    expect(Number.isFinite(result.directMs.p50) && Number.isFinite(result.replayMs.p50) && Number.isFinite(result.ratio)).toBe(true);
    expect(formatReport(result)).toContain("goals:");
  });
});
