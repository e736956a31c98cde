import { describe, expect, it } from "vitest";
import { Graph } from "@auditgraph/graph";
import { optionsFromEnv as graphOptionsFromEnv } from "../graph.js";
import { formatReport, runConsoleBenchmark } from "../console.js";

const finite = (v: number | undefined) => typeof v === "number" && Number.isFinite(v) && v >= 0;

// Tiny counts against the real Neo4j, Redis and PostgreSQL: this checks that the console bench
// runs end to end (its own tenants, ledger directory and accounts schema, all removed at the end)
// and yields numbers. It asserts nothing about timings.
describe("bench/console (smoke)", () => {
  it("yields a finite number for every figure and leaves no node behind", async () => {
    const result = await runConsoleBenchmark({
      escalations: 60,
      held: 3,
      inboxRepeats: 3,
      traceRuns: 30,
      traceRepeats: 3,
      events: 1500,
      batch: 500,
      searches: 2,
      warmup: 1,
      log: () => {},
    });
    expect(result.inbox?.seed.escalations).toBe(60);
    expect(result.inbox?.seed.held).toBeGreaterThan(0);
    expect(result.trace?.seed.runs).toBe(30);
    expect(result.search?.cells).toHaveLength(7);
    const cells = [result.inbox!.cell, result.trace!.cell, ...result.search!.cells];
    const figures: [string, number | undefined][] = [
      ["search events", result.search!.events],
      ["search pooled p95", result.search!.pooled.p95],
      ["search baseline p95", result.search!.baselineMs.p95],
      ["cleanup nodes", result.cleanup.nodes],
      ["seconds", result.seconds],
    ];
    for (const c of cells)
      figures.push(
        [`${c.name} first`, c.firstMs],
        [`${c.name} p50`, c.ms.p50],
        [`${c.name} p95`, c.ms.p95],
        [`${c.name} baseline first`, c.baselineFirstMs],
        [`${c.name} baseline p95`, c.baselineMs.p95],
        [`${c.name} / baseline p50`, c.overBaselineP50],
        [`${c.name} / baseline p95`, c.overBaselineP95],
      );
    for (const [name, value] of figures) expect(finite(value), `${name} = ${value}`).toBe(true);
    expect(result.cleanup.nodes).toBeGreaterThan(0);
    expect(result.goals.map((g) => g.holds)).toEqual([undefined, undefined, undefined, undefined]);

    const graph = new Graph(graphOptionsFromEnv(process.env).neo4j);
    try {
      const left = await graph.read("MATCH (n) WHERE n.tenantId IN $tenants RETURN count(n) AS n", { tenants: Object.values(result.tenants) });
      expect(left[0]?.n).toBe(0);
    } finally {
      await graph.close();
    }
    expect(formatReport(result)).toContain("goals:");
  }, 120_000);
});
