import { describe, expect, it } from "vitest";
import { formatReport, runPipelineBenchmark } from "../pipeline.js";

const finite = (v: number | undefined) => typeof v === "number" && Number.isFinite(v);

// Tiny counts on the real pipeline (Redis, worker processes of the built CLI, ledger, Neo4j):
// checks that a phase and the raw limits run end to end and yield numbers. It asserts nothing
// about timings.
describe("bench/pipeline (smoke)", () => {
  it("yields finite rates, lag and RSS for one worker process, and the raw limits", async () => {
    const result = await runPipelineBenchmark({
      workers: [1],
      agents: 2,
      tenants: 2,
      seconds: 2,
      sampleEvery: 5,
      rawEvents: 300,
      drainTimeoutMs: 20_000,
      log: () => {},
    });
    expect(result.phases).toHaveLength(1);
    const p = result.phases[0]!;
    expect(p.captured).toBeGreaterThan(0);
    for (const v of [p.capturedPerSec, p.ledgerPerSec, p.graphPerSec, p.lagMs.p50, p.lagMs.p95, p.maxRssMb]) expect(finite(v)).toBe(true);
    expect(result.raw).toHaveLength(3);
    for (const r of result.raw) expect(finite(r.eventsPerSec), r.name).toBe(true);
    expect(formatReport(result)).toContain("goals:");
  }, 60_000);
});
