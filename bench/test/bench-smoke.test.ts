import { describe, expect, it } from "vitest";
import { ALL_VARIANTS, formatReport, runBenchmark } from "../capture-overhead.js";

const finite = (v: number | undefined) => typeof v === "number" && Number.isFinite(v);

// Tiny counts: this checks that every variant runs end to end (real Redis, real peer clients
// against the in-process sink) and yields numbers. It asserts nothing about timings.
describe("bench/capture-overhead (smoke)", () => {
  it("yields finite figures for every variant that ran", async () => {
    const result = await runBenchmark({ runs: 2, warmup: 1, replay: 3, replayWarmup: 1, heap: 2, variants: ALL_VARIANTS, log: () => {} });

    expect(result.callbacksPerRun).toBeGreaterThan(0);
    const byName = new Map(result.variants.map((v) => [v.name, v]));
    // The baseline and ours must run; a peer may be left out, but then it says why.
    expect(byName.get("none")?.ran).toBe(true);
    expect(byName.get("auditgraph")?.ran).toBe(true);
    for (const v of result.variants) {
      if (!v.ran) {
        expect(v.skipped).toBeTruthy();
        continue;
      }
      expect(finite(v.wallMs?.p50) && finite(v.wallMs?.p99), `${v.name} wall`).toBe(true);
      if (v.name === "none") continue;
      expect(finite(v.perCallbackUs?.p50) && finite(v.perCallbackUs?.p99), `${v.name} per callback`).toBe(true);
      expect(finite(v.cpuUsPerCallback), `${v.name} cpu`).toBe(true);
      // Heap needs --expose-gc, which vitest's workers do not have: null then, never NaN.
      expect(v.heapBytesPerCallback === null || finite(v.heapBytesPerCallback ?? undefined), `${v.name} heap`).toBe(true);
    }
    expect(formatReport(result)).toContain("goals:");
  });
});
