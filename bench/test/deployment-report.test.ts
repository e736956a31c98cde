import { describe, expect, it } from "vitest";
import { cpuPerEvent, limitAt, type ScenarioResult } from "../deployment-report.js";

// A scenario's CPU figures only: what limitAt reads.
const scenario = (cpu: Partial<ScenarioResult["cpu"]>, ledger: number, loadSeconds: number) =>
  ({
    ledger,
    loadSeconds,
    cpu: { agentsSeconds: 0, workersSeconds: 0, othersSeconds: 0, wallSeconds: loadSeconds, benchCores: 0, machineCoresLoad: 0, machineCoresDrain: 0, ...cpu },
  }) as ScenarioResult;

describe("bench/deployment-report: which raw limit stops a rate", () => {
  it("splits the machine's CPU per event into agents, workers, services and the bench", () => {
    // 10 s of load at 2 cores busy, 5 s of drain at 1: 25 core-seconds over 10,000 events.
    const s = scenario({ agentsSeconds: 8, workersSeconds: 6, othersSeconds: 1, wallSeconds: 15, machineCoresLoad: 2, machineCoresDrain: 1 }, 10_000, 10);
    const c = cpuPerEvent(s);
    expect(c.total).toBeCloseTo(2500);
    expect(c.agents).toBeCloseTo(800);
    expect(c.workers).toBeCloseTo(600);
    expect(c.bench).toBeCloseTo(100);
    expect(c.services).toBeCloseTo(1000);
  });

  it("names the CPU when the cores the rate needs exceed the machine's, and not when they do not", () => {
    const s = scenario({ agentsSeconds: 8, workersSeconds: 6, othersSeconds: 1, wallSeconds: 15, machineCoresLoad: 2, machineCoresDrain: 1 }, 10_000, 10);
    // 2,500 µs per event at 10,000/s is 25 cores.
    expect(limitAt(s, 10_000, 2)).toMatch(/^the CPU stops it: 2500\.0 µs of CPU per event .* is 25\.0 cores at 10,000\/s, on 2$/);
    expect(limitAt(s, 100, 2)).toMatch(/^the CPU would allow it \(0\.3 of 2 cores at 100\/s/);
  });
});
