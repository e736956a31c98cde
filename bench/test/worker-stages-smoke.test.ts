import { describe, expect, it } from "vitest";
import { formatReport, runStagesBenchmark } from "../worker-stages.js";

// Tiny counts: the stages bench runs end to end (segment ledger, key store and policies in a temp
// dir) and reads every stage from the worker's counters. It asserts nothing about timings.
describe("bench/worker-stages (smoke)", () => {
  it("reads every job stage's events and CPU from the counters, and a finite overhead ratio", async () => {
    const result = await runStagesBenchmark({ events: 600, batch: 100, tenants: 2, rounds: 1, warmup: 0, log: () => {} });
    const events = result.runs[0]!.events;
    expect(events).toBeGreaterThanOrEqual(600);
    expect(result.stages.map((s) => s.stage)).toEqual(["validation", "sealing", "append", "policies"]);
    for (const s of result.stages) {
      expect(s.events, s.stage).toBe(events);
      expect(Number.isFinite(s.usPerEvent) && s.usPerEvent > 0, `${s.stage} = ${s.usPerEvent}`).toBe(true);
    }
    expect(Number.isFinite(result.overhead) && result.overhead > 0).toBe(true);
    expect(formatReport(result)).toContain("stage timers cost under 2%");
  });
});
