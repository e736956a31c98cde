import { describe, expect, it } from "vitest";
import { parseEvent, streamIdFor } from "@auditgraph/core";
import { Graph } from "@auditgraph/graph";
import { TraceGenerator } from "../generator.js";
import { optionsFromEnv, runGraphBenchmark } from "../graph.js";
import { formatReport } from "../graph-report.js";

const positive = (v: number | undefined) => typeof v === "number" && Number.isFinite(v) && v > 0;

describe("bench/generator", () => {
  it("makes whole traces of valid events, the same ones from the same seed", () => {
    const make = () => new TraceGenerator({ seed: "smoke", tenantId: "bench-smoke", events: 2000, sampleOutputs: 10 });
    const generator = make();
    const events = generator.take(10_000);
    expect(generator.done).toBe(true);
    expect(events.length).toBeGreaterThanOrEqual(2000);
    for (const event of events) {
      const parsed = parseEvent(event);
      expect(parsed.success, `${event.type} ${event.eventId}: ${parsed.success ? "" : parsed.error.message}`).toBe(true);
    }
    // Ids sort in emission order (UUIDv7 from one clock), and every trace is whole.
    expect(events.map((e) => e.eventId)).toEqual(events.map((e) => e.eventId).sort());
    const starts = new Set(events.filter((e) => e.type === "chain.start").map((e) => e.traceId));
    const ends = new Set(events.filter((e) => e.type === "chain.end").map((e) => e.traceId));
    expect(starts.size).toBeGreaterThan(50);
    expect(ends).toEqual(starts);
    const summary = generator.summary();
    expect(summary.users).toBeGreaterThan(1);
    expect(summary.servedModelVersions.length).toBeGreaterThan(1);
    expect(generator.sampledOutputs()).toHaveLength(10);

    const again = make().take(10_000);
    expect(again).toEqual(events);
  });
});

// Tiny counts against the real Neo4j: this checks that the graph bench runs end to end (its own
// tenant, deleted at the end) and yields numbers. It asserts nothing about timings.
describe("bench/graph (smoke)", () => {
  it("yields a finite positive number for every figure and leaves nothing behind", async () => {
    const neo4j = optionsFromEnv(process.env).neo4j;
    const result = await runGraphBenchmark({ events: 2000, batch: 500, queries: 20, blastQueries: 5, warmup: 2, neo4j, log: () => {} });

    const figures: [string, number | undefined][] = [
      ["events", result.generated.events],
      ["traces", result.generated.traces],
      ["outputs", result.generated.outputs],
      ["event bytes", result.generated.meanEventBytes],
      ["nodes", result.graph.totalNodes],
      ["relationships", result.graph.relationships],
      ["load ratio", result.load.ratio],
      ["linked ratio", result.load.linkedRatio],
      ["stored ratio", result.load.storedRatio],
      ["stored / plain", result.load.storedOverPlain],
      ["linked anchors", result.load.linkedAnchors],
      ["cleanup nodes", result.cleanup.nodes],
      ["seconds", result.seconds],
    ];
    for (const c of [result.load.projection, result.load.plain, result.load.linked, result.load.stored]) {
      figures.push([`${c.variant} events/s`, c.eventsPerSec], [`${c.variant} batch p50`, c.batchMs.p50], [`${c.variant} batch p95`, c.batchMs.p95]);
      expect(c.events).toBe(result.generated.events);
      expect(c.batches).toBeGreaterThan(0);
    }
    expect(result.queries.map((q) => q.name)).toEqual(["trace-output", "blast-radius", "plain lookup"]);
    for (const q of result.queries) {
      figures.push([`${q.name} p50`, q.ms.p50], [`${q.name} p95`, q.ms.p95]);
      if (q.name !== "plain lookup") figures.push([`${q.name} / plain p50`, q.overPlainP50], [`${q.name} / plain p95`, q.overPlainP95]);
    }
    for (const [name, value] of figures) expect(positive(value), `${name} = ${value}`).toBe(true);
    // Every node the bench made was deleted: the projection's, the baselines' (BenchPlain, BenchLinked, BenchStored and their anchors), the cursor.
    expect(result.cleanup.nodes).toBe(result.graph.totalNodes + 3 * result.generated.events + result.load.linkedAnchors + 1);

    const graph = new Graph(neo4j);
    try {
      const left = await graph.read("MATCH (n) WHERE n.tenantId = $tenantId OR (n:ProjectionCursor AND n.streamId = $streamId) RETURN count(n) AS n", {
        tenantId: result.tenantId,
        streamId: streamIdFor(result.tenantId),
      });
      expect(left[0]?.n).toBe(0);
    } finally {
      await graph.close();
    }
    const report = formatReport(result);
    expect(report).toContain("goals:");
    expect(report).toMatch(/^\s*linked\s+2,\d{3}\s/m);
    expect(report).toMatch(/^\s*stored\s+2,\d{3}\s/m);
    expect(report).toMatch(/the stored baseline .* reaches \d+\.\d% of plain/);
  });
});
