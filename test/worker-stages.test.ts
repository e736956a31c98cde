import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { BATCH_JOB_NAME, FileKeyStore } from "@auditgraph/core";
import { startWorkerHttp, waitUntilIdle } from "@auditgraph/worker";
import { capturedLogger, isolatedConfig, readAll, sampleTrace, startPipeline, startPolicyPipeline } from "./helpers.js";

/**
 * The worker's CPU by stage in /metrics, for real: an AuditWorker on the real Redis and Neo4j
 * with a temporary segment ledger records jobs, and its /metrics counts each stage's events (and
 * some CPU in each stage that ran, none in one that did not).
 */

/** The value of `name{stage="<stage>"}` in Prometheus text, undefined when there is no such series. */
function stageSample(text: string, name: string, stage: string): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(`${name}{stage="${stage}"} `));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(" ") + 1));
}

const cleanup: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  for (const step of cleanup.reverse()) await step().catch(() => undefined);
});

/** Two jobs of sample traces (6 events each) for a tenant of the run's own; resolves once recorded and projected. */
async function recordTraces(queue: Parameters<typeof waitUntilIdle>[0]) {
  const tenant = `stages-${crypto.randomUUID().slice(0, 8)}`;
  const jobs = [[...sampleTrace(tenant), ...sampleTrace(tenant)], sampleTrace(tenant)];
  for (const events of jobs) await queue.add(BATCH_JOB_NAME, { events });
  await waitUntilIdle(queue, 60_000);
  return jobs.flat().length;
}

describe("worker /metrics: CPU and events by stage", () => {
  it("counts a sealing, policy-evaluating worker's events through every stage, each with CPU", async () => {
    const config = await isolatedConfig();
    const keyStore = new FileKeyStore(join(config.ledgerDir, "..", "keystore"));
    const pipeline = await startPolicyPipeline(config, `stages-${crypto.randomUUID().slice(0, 8)}`, { keyStore, logger: capturedLogger().logger });
    cleanup.push(() => pipeline.stop());
    const http = await startWorkerHttp(pipeline.worker, { port: 0, host: "127.0.0.1", processMetrics: false });
    cleanup.push(() => http.close());

    const n = await recordTraces(pipeline.queue);
    const records = (await readAll(pipeline.ledger)).length;
    const text = await (await fetch(`${http.url}/metrics`)).text();

    expect(text).toContain("# TYPE auditgraph_worker_stage_cpu_seconds_total counter");
    expect(text).toContain("# TYPE auditgraph_worker_stage_events_total counter");
    // A job's events go through validation, sealing, append and the policies once each.
    for (const stage of ["validation", "sealing", "append", "policies"]) {
      expect(stageSample(text, "auditgraph_worker_stage_events_total", stage), stage).toBe(n);
      expect(stageSample(text, "auditgraph_worker_stage_cpu_seconds_total", stage), stage).toBeGreaterThan(0);
    }
    // The projection projects every record of the ledger (flags included, if any were raised).
    expect(stageSample(text, "auditgraph_worker_stage_events_total", "projection")).toBe(records);
    expect(stageSample(text, "auditgraph_worker_stage_cpu_seconds_total", "projection")).toBeGreaterThan(0);
  });

  it("has no series for the stages a worker does not run: no sealing without a key store, no policies without them", async () => {
    const pipeline = await startPipeline(await isolatedConfig(), { start: false });
    await pipeline.start({ logger: capturedLogger().logger });
    cleanup.push(() => pipeline.stop());
    const http = await startWorkerHttp(pipeline.worker!, { port: 0, host: "127.0.0.1", processMetrics: false });
    cleanup.push(() => http.close());

    const n = await recordTraces(pipeline.queue);
    const text = await (await fetch(`${http.url}/metrics`)).text();

    for (const stage of ["validation", "append"]) {
      expect(stageSample(text, "auditgraph_worker_stage_events_total", stage), stage).toBe(n);
      expect(stageSample(text, "auditgraph_worker_stage_cpu_seconds_total", stage), stage).toBeGreaterThan(0);
    }
    expect(stageSample(text, "auditgraph_worker_stage_events_total", "projection")).toBe(n);
    for (const stage of ["sealing", "policies"]) {
      expect(stageSample(text, "auditgraph_worker_stage_events_total", stage), stage).toBeUndefined();
      expect(stageSample(text, "auditgraph_worker_stage_cpu_seconds_total", stage), stage).toBeUndefined();
    }
  });
});
