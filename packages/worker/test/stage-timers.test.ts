import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { pino } from "pino";
import { FileKeyStore, type AuditEvent } from "@auditgraph/core";
import { InMemoryPolicyState, PolicySet } from "@auditgraph/policy";
import { SegmentLedger } from "@auditgraph/ledger";
import { StageTimers, STAGES } from "../src/stage-timers.js";
import { WorkerMetrics } from "../src/metrics.js";
import { EventRecorder } from "../src/recorder.js";
import { PolicyEngine } from "../src/policies.js";
import { recordJob } from "../src/pipeline.js";
import { trace } from "../../policy/test/events.js";

/** A clock the test moves by hand (µs). */
function handClock() {
  let now = 0;
  return { read: () => now, advance: (us: number) => void (now += us) };
}

describe("StageTimers: each moment's CPU to one stage", () => {
  it("takes a nested section out of the one around it, and counts the events of each", () => {
    const clock = handClock();
    const timers = new StageTimers(clock.read);
    const outer = timers.start("policies");
    clock.advance(10);
    const inner = timers.start("append");
    clock.advance(5);
    timers.stop(inner, 3);
    clock.advance(2);
    timers.stop(outer, 7);
    expect(timers.cpuSeconds("policies")).toBeCloseTo(12e-6, 12);
    expect(timers.cpuSeconds("append")).toBeCloseTo(5e-6, 12);
    expect(timers.events("policies")).toBe(7);
    expect(timers.events("append")).toBe(3);
    expect(timers.sections).toBe(2);
  });

  it("gives overlapping sections' shared moments to the one opened last, never twice, and nothing while none is open", () => {
    const clock = handClock();
    const timers = new StageTimers(clock.read);
    clock.advance(100); // nothing open: in no stage
    const append = timers.start("append");
    clock.advance(3);
    const sealing = timers.start("sealing");
    clock.advance(2);
    timers.stop(append, 4); // closed before the later one: the 2 µs went to sealing
    clock.advance(4);
    timers.stop(sealing, 4);
    clock.advance(50);
    expect(timers.cpuSeconds("append")).toBeCloseTo(3e-6, 12);
    expect(timers.cpuSeconds("sealing")).toBeCloseTo(6e-6, 12);
    // The sum is the time some section was open.
    expect(STAGES.reduce((sum, s) => sum + timers.cpuSeconds(s), 0)).toBeCloseTo(9e-6, 12);
    // A section closed twice (or never opened) changes nothing.
    timers.stop(append, 100);
    expect(timers.events("append")).toBe(4);
    expect(timers.cpuSeconds("validation")).toBe(0);
    expect(timers.events("projection")).toBe(0);
  });
});

const dirs: string[] = [];
afterAll(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

const noSources = { projectionLag: () => 0, queueCounts: async () => undefined, redisUp: () => true, ledgerWritable: () => true, graphMigrated: () => true };
const policies = PolicySet.create([
  { kind: "function", id: "errors", version: "1", severity: "medium", action: "flag", function: "repeated-tool-errors", params: { errors: 2 } },
]);

/** recordJob on a segment ledger of its own, with or without a key store and policies. */
async function recorded(events: AuditEvent[], { sealed, withPolicies, untimed = false }: { sealed: boolean; withPolicies: boolean; untimed?: boolean }) {
  const dir = await mkdtemp(join(tmpdir(), "auditgraph-stages-"));
  dirs.push(dir);
  const ledger = new SegmentLedger(join(dir, "ledger"));
  const keyStore = sealed ? new FileKeyStore(join(dir, "keys")) : undefined;
  const metrics = new WorkerMetrics(noSources);
  const log = pino({ level: "silent" });
  const recorder = new EventRecorder({ ledger, ...(keyStore ? { keyStore } : {}) });
  const policyEngine = withPolicies
    ? new PolicyEngine({ policies, state: new InMemoryPolicyState(), ledger, logger: log, ...(keyStore ? { keyStore } : {}) })
    : undefined;
  await recordJob({ ledger, recorder, policyEngine, metrics, log, untimed }, "job-1", { events });
  const text = await metrics.registry.metrics();
  let records = 0;
  for (const stream of await ledger.streams()) records += await ledger.count(stream);
  await ledger.close();
  return { metrics, text, records };
}

const sample = (text: string, name: string, stage: string) => {
  const line = text.split("\n").find((l) => l.startsWith(`${name}{stage="${stage}"} `));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(" ") + 1));
};

describe("recordJob: the stages of a job counted in the worker's metrics", () => {
  const a = trace({ user: { id: "alice", tenantId: "acme" } });
  // Two tool errors of one trace: the second is flagged (a flag's append is the policies' CPU, not the append's events).
  const events: AuditEvent[] = [a.llmStart(), a.toolError("search"), a.toolError("search"), a.toolEnd("search", "ok")];

  it("counts every event through validation, sealing, append and policies, with CPU in each", async () => {
    const { metrics, text, records } = await recorded(events, { sealed: true, withPolicies: true });
    expect(records).toBe(events.length + 1); // the flag too
    for (const stage of ["validation", "sealing", "append", "policies"] as const) {
      expect(metrics.stages.events(stage), stage).toBe(events.length);
      expect(metrics.stages.cpuSeconds(stage), stage).toBeGreaterThan(0);
      expect(sample(text, "auditgraph_worker_stage_events_total", stage), stage).toBe(events.length);
      expect(sample(text, "auditgraph_worker_stage_cpu_seconds_total", stage), stage).toBeGreaterThan(0);
    }
    // No projection in recordJob: no series for it.
    expect(sample(text, "auditgraph_worker_stage_events_total", "projection")).toBeUndefined();
    expect(sample(text, "auditgraph_worker_stage_cpu_seconds_total", "projection")).toBeUndefined();
    expect(text).toContain("# TYPE auditgraph_worker_stage_cpu_seconds_total counter");
    expect(text).toContain("# TYPE auditgraph_worker_stage_events_total counter");
  });

  it("leaves out the stages that did not run: no sealing without a key store, no policies without them", async () => {
    const { text } = await recorded(events, { sealed: false, withPolicies: false });
    expect(sample(text, "auditgraph_worker_stage_events_total", "append")).toBe(events.length);
    expect(sample(text, "auditgraph_worker_stage_events_total", "validation")).toBe(events.length);
    for (const stage of ["sealing", "policies"]) {
      expect(sample(text, "auditgraph_worker_stage_events_total", stage), stage).toBeUndefined();
      expect(sample(text, "auditgraph_worker_stage_cpu_seconds_total", stage), stage).toBeUndefined();
    }
  });

  it("times nothing when the pipeline is told `untimed` (the overhead bench's baseline)", async () => {
    const { metrics, text } = await recorded(events, { sealed: true, withPolicies: true, untimed: true });
    for (const stage of STAGES) expect(metrics.stages.events(stage) + metrics.stages.cpuSeconds(stage), stage).toBe(0);
    expect(text).not.toContain("auditgraph_worker_stage_events_total{");
  });
});
