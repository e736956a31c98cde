import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomUUID } from "node:crypto";
import { BATCH_JOB_NAME, ValidationError } from "@auditgraph/core";
import { investigate } from "@auditgraph/graph";
import { waitUntilIdle } from "@auditgraph/worker";
import { isolatedConfig, sampleTrace, startPipeline } from "./helpers.js";

let pipeline: Awaited<ReturnType<typeof startPipeline>>;
const tenant = `inv-${randomUUID().slice(0, 8)}`;
const other = `inv-${randomUUID().slice(0, 8)}`;
const traces = [sampleTrace(tenant), sampleTrace(tenant), sampleTrace(other)];

beforeAll(async () => {
  pipeline = await startPipeline(await isolatedConfig());
  for (const events of traces) await pipeline.queue.add(BATCH_JOB_NAME, { events });
  await waitUntilIdle(pipeline.queue);
});
afterAll(async () => {
  await pipeline?.stop();
});

describe("named investigations, scoped to one tenant, in read transactions", () => {
  it("on-behalf-of: the users an agent acted for, and how often", async () => {
    const rows = await investigate(pipeline.graph, "on-behalf-of", { tenantId: tenant, agentId: "agent-t" });
    expect(rows).toEqual([{ userId: "u1", agentVersion: "0.1.0", traces: 2, firstAt: expect.any(String), lastAt: expect.any(String) }]);
  });

  it("blast-radius: what a served model version produced, per user and agent version", async () => {
    const rows = await investigate(pipeline.graph, "blast-radius", { tenantId: tenant, modelVersion: "fake-2026" });
    const row = { userId: "u1", agentId: "agent-t", agentVersion: "0.1.0", modelVersion: "fake-2026", outputs: 2, traces: 2, flags: 0 };
    expect(rows).toEqual([{ ...row, firstAt: expect.any(String), lastAt: expect.any(String) }]);
    const none = await investigate(pipeline.graph, "blast-radius", { tenantId: tenant, modelVersion: "fake-2026", since: "2999-01-01T00:00:00Z" });
    expect(none).toEqual([]);
    // The same, asked of the agent version instead of the model version.
    const byAgent = await investigate(pipeline.graph, "blast-radius", { tenantId: tenant, agentId: "agent-t", agentVersion: "0.1.0" });
    expect(byAgent).toEqual([{ ...row, firstAt: expect.any(String), lastAt: expect.any(String) }]);
    expect(await investigate(pipeline.graph, "blast-radius", { tenantId: other, agentId: "agent-t", agentVersion: "9.9.9" })).toEqual([]);
    await expect(investigate(pipeline.graph, "blast-radius", { tenantId: tenant })).rejects.toThrow(
      /modelVersion: give either modelVersion, or agentId and agentVersion/,
    );
    await expect(investigate(pipeline.graph, "blast-radius", { tenantId: tenant, agentVersion: "0.1.0" })).rejects.toThrow(/agentId/);
  });

  it("user-activity: one user's traces with their final outputs, and nothing of another tenant", async () => {
    const rows = await investigate(pipeline.graph, "user-activity", { tenantId: tenant, userId: "u1" });
    expect(rows.map((r) => r.traceId).sort()).toEqual([traces[0]![0]!.traceId, traces[1]![0]!.traceId].sort());
    expect(rows.every((r) => r.sessionId === "s1" && r.status === "ok" && r.outputId !== null)).toBe(true);
    const theirs = await investigate(pipeline.graph, "user-activity", { tenantId: other, userId: "u1" });
    expect(theirs.map((r) => r.traceId)).toEqual([traces[2]![0]!.traceId]);
  });

  it("refuses a bad parameter, naming it", async () => {
    await expect(investigate(pipeline.graph, "blast-radius", { tenantId: tenant, modelVersion: "x", since: "yesterday" })).rejects.toThrow(ValidationError);
    await expect(investigate(pipeline.graph, "on-behalf-of", { agentId: "a" } as never)).rejects.toThrow(/tenantId/);
    await expect(investigate(pipeline.graph, "user-activity", { tenantId: tenant, userId: "u1", limit: 0 })).rejects.toThrow(/limit/);
  });
});
