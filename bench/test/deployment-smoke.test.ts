import { describe, expect, it } from "vitest";
import { formatReport, runDeploymentBenchmark } from "../deployment.js";

// Small counts on the real deployment (agent processes, `auditgraph worker` processes of the built
// CLI, Redis, the segment ledger, Neo4j): 1 and 2 workers on one sharded tenant, every event
// sampled, so each captured event must be found in the ledger and past a graph cursor. It asserts
// that the run drained and that the report prints every figure, nothing about timings.
describe("bench/deployment (smoke)", () => {
  it("drains every captured event into the ledger and the graph, and prints each figure", async () => {
    const result = await runDeploymentBenchmark({
      workers: [1, 2],
      layouts: ["one"],
      seconds: 2,
      agentProcesses: 1,
      loops: 10,
      modelMinMs: 20,
      modelMaxMs: 50,
      sampleEvery: 1,
      drainTimeoutMs: 90_000,
      log: () => {},
    });
    expect(result.scenarios.map((s) => s.workers)).toEqual([1, 2]);
    for (const s of result.scenarios) {
      expect(s.agentFailures, s.firstFailure).toBe(0);
      expect(s.captured).toBeGreaterThan(0);
      expect(s.drained).toBe(true);
      expect(s.ledger).toBeGreaterThanOrEqual(s.captured);
      expect(s.graph).toBeGreaterThanOrEqual(s.captured);
      // Every event was sampled: each one found by its id in the ledger, and behind a graph cursor.
      expect(s.sampled).toBe(s.captured);
      expect(s.ledgerLagMs.n).toBe(s.captured);
      expect(s.graphLagMs.n).toBe(s.captured);
      expect(s.streams).toBeGreaterThanOrEqual(1);
      for (const st of s.stages) expect(Number.isFinite(st.usPerStageEvent), st.stage).toBe(true);
      expect(Number.isFinite(s.workerCpuUsPerEvent)).toBe(true);
      // Read from the workers' /metrics: a count, 0 for one worker (no other writer to meet).
      expect(Number.isInteger(s.busyReturns)).toBe(true);
      if (s.workers === 1) expect(s.busyReturns).toBe(0);
    }
    const report = formatReport(result);
    for (const figure of [
      "os.availableParallelism() = ",
      "streams",
      "offered/s",
      "ledger/s",
      "graph/s",
      "ledger ×1w",
      "graph ×1w",
      "ledger lag p50",
      "ledger lag p95",
      "graph lag p50",
      "graph lag p95",
      "stages sum",
      "validation",
      "sealing",
      "append",
      "policies",
      "projection",
      "machine cores load",
      "2 workers on one tenant >= 1.6x one worker's (when the machine has the cores)",
      "worker CPU <= 100 µs/event",
      "10,000 events/s sustained into ledger and graph with lag p95 < 1 s",
      // A small run misses 10,000/s, and the report says what stops it.
      "Redis/Neo4j/rest",
    ])
      expect(report, figure).toContain(figure);
  }, 240_000);
});
