import { describe, expect, it } from "vitest";
import { formatReport, runLedgerBenchmark } from "../ledger.js";

// Tiny counts: this checks that every part of the ledger bench runs end to end on a real
// SegmentLedger in a temp dir and yields numbers. It asserts nothing about timings.
describe("bench/ledger (smoke)", () => {
  it("yields a finite positive number for every figure", async () => {
    const result = await runLedgerBenchmark({
      scale: 0.0001, // every cell falls to its minimum: one batch per round
      batches: [1, 100, 1000],
      rounds: 1,
      warmupBatches: 0,
      verifyRecords: 2000,
      verifyCheckpoints: 2,
      signedLongBatches: 1,
      proofSize: 1000,
      proofGenerations: 2,
      proofVerifications: 20,
      log: () => {},
    });

    const figures: [string, number | undefined][] = [
      ["eventBytes", result.eventBytes],
      ["recordBytes", result.recordBytes],
      ["seconds", result.seconds],
    ];
    expect(result.append).toHaveLength(9);
    for (const c of result.append) {
      const at = `append b${c.batch} ${c.variant}`;
      figures.push(
        [`${at} events`, c.events],
        [`${at} batches`, c.batches],
        [`${at} seconds`, c.seconds],
        [`${at} events/s`, c.eventsPerSec],
        [`${at} batch p50`, c.batchMs.p50],
        [`${at} batch p99`, c.batchMs.p99],
        [`${at} / plain`, c.overPlain],
        [`${at} stream`, c.streamEnd],
      );
    }
    const v = result.verify;
    expect(v?.modes).toHaveLength(3);
    figures.push(["verify records", v?.records], ["verify checkpoints", v?.checkpoints], ["verify bytes", v?.bytes], ["verify build", v?.buildSeconds]);
    for (const m of v?.modes ?? [])
      figures.push([`verify ${m.name} s`, m.seconds], [`verify ${m.name} events/s`, m.eventsPerSec], [`verify ${m.name} cpu`, m.cpuOverWall]);
    figures.push(["signature ms", v?.signatureMsPerCheckpoint]);
    const s = result.signedLong;
    figures.push(["signed long events/s", s?.eventsPerSec], ["signed long p50", s?.batchMs.p50]);
    const p = result.proof;
    figures.push(
      ["proof hashes", p?.hashes.p50],
      ["proof bytes", p?.bytes],
      ["proof generate p50", p?.generateMs.p50],
      ["proof verify p50", p?.verifyUs.p50],
      ["proof levels p50", p?.levelsProofUs.p50],
    );
    for (const [name, value] of figures) expect(typeof value === "number" && Number.isFinite(value) && value > 0, `${name} = ${value}`).toBe(true);
    // A difference between two timed runs: finite, but noise can make it negative.
    expect(Number.isFinite(v?.checkpointMsPerCheckpoint), `checkpoint diff = ${v?.checkpointMsPerCheckpoint}`).toBe(true);

    const report = formatReport(result);
    expect(report).toContain("goals:");
  });
});
