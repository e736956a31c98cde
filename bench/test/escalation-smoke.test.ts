import { describe, expect, it } from "vitest";
import { formatReport, runEscalationBenchmark } from "../escalation.js";

const finite = (v: number | undefined) => typeof v === "number" && Number.isFinite(v);

// Tiny counts on the real pipeline (Redis, Neo4j, worker, local webhook receiver): checks that
// every phase runs end to end and yields numbers. It asserts nothing about timings.
describe("bench/escalation (smoke)", () => {
  it("yields finite latencies for both phases", async () => {
    const result = await runEscalationBenchmark({ escalations: 3, rateEvents: 400, gapMs: 10, log: () => {} });
    expect(finite(result.sustainedEventsPerSec)).toBe(true);
    expect(result.phases).toHaveLength(2);
    for (const p of result.phases) {
      expect(p.webhook.n, p.name).toBeGreaterThan(0);
      expect(finite(p.opened.p50) && finite(p.opened.p95) && finite(p.webhook.p50) && finite(p.webhook.p95), p.name).toBe(true);
    }
    expect(finite(result.ratio)).toBe(true);
    expect(formatReport(result)).toContain("goals:");
  }, 120_000);
});
