/**
 * Issue 14 point 5: one e-mail in one tool result raised a flag on the tool's end and on every
 * chain and model event of the trace that repeated it. Each distinct value must be one finding
 * per trace, also when the trace's events reach the worker in several jobs, across a restart.
 */
import { randomUUID } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import { awaitAllCallbacks } from "@langchain/core/callbacks/promises";
import { AIMessage } from "@langchain/core/messages";
import { fakeModel } from "@langchain/core/testing";
import { tool } from "@langchain/core/tools";
import { createAgent } from "langchain";
import { z } from "zod";
import { BATCH_JOB_NAME, type AuditEvent } from "@auditgraph/core";
import { AuditCallbackHandler, QueueTransport, Redactor } from "@auditgraph/langchain";
import { loadWorkerPolicies, waitUntilIdle } from "@auditgraph/worker";
import { DEMO_IDENTITY } from "@auditgraph/cli";
import { inClear, isolatedConfig, readAll, startPipeline } from "./helpers.js";

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!().catch(() => undefined);
});

const EMAIL = "jane.doe@example.com";

/** Runs a real agent (fake model) whose one tool returns one e-mail; its events stay in the queue. */
async function recordRun(tenantId: string, config: Awaited<ReturnType<typeof isolatedConfig>>) {
  const transport = new QueueTransport({ connection: config.redis, queueName: config.queueName, spoolDir: config.spoolDir });
  cleanups.push(() => transport.close());
  const handler = new AuditCallbackHandler(
    { agent: DEMO_IDENTITY.agent, user: { ...DEMO_IDENTITY.user, tenantId }, redactor: new Redactor({ pii: true }) },
    transport,
  );
  const crm = tool(() => `Customer record: ${EMAIL}, invoice 2026-000123, client version 10.2.3.4`, {
    name: "crm_lookup",
    description: "customer record",
    schema: z.object({ customer: z.string() }),
  });
  const model = fakeModel()
    .respondWithTools([{ id: "c1", name: "crm_lookup", args: { customer: "42" } }])
    .respond(new AIMessage("The customer's record is on file."));
  await createAgent({ model, tools: [crm] }).invoke({ messages: [{ role: "user", content: "Look up customer 42" }] }, { callbacks: [handler] });
  await awaitAllCallbacks();
  await handler.flush();
}

describe("PII flags: one finding per distinct value per trace", () => {
  it("one e-mail in one tool result, repeated by later events, is one flag in the ledger and the graph, across jobs and a worker restart", async () => {
    const config = await isolatedConfig();
    const tenantId = `tenant-${randomUUID()}`;
    const pipeline = await startPipeline(config, { start: false });
    cleanups.push(() => pipeline.stop());
    await recordRun(tenantId, config);

    // The trace's events as they left the agent, in order; re-sent below in two jobs.
    const jobs = await pipeline.queue.getJobs(["waiting", "prioritized", "delayed"]);
    const events = jobs.flatMap((j) => (j.data as { events: AuditEvent[] }).events).sort((a, b) => (a.eventId < b.eventId ? -1 : 1));
    await pipeline.queue.drain(true);
    expect(JSON.stringify(events)).not.toContain(EMAIL);
    const withEmail = events.filter((e) => (e.redactions?.email ?? 0) > 0);
    // The report: the tool's end and the chain and model events after it all hold the address.
    expect(withEmail.length).toBeGreaterThanOrEqual(3);
    // Invoice and version numbers are not personal data.
    expect(events.every((e) => e.redactions?.phone === undefined && e.redactions?.ip === undefined)).toBe(true);
    const traceId = withEmail[0]!.traceId;

    // First half with one worker, the rest with another after a restart (policy state in Redis).
    const cut = events.indexOf(withEmail[1]!);
    // The worker's default policies (`default.pii-or-secret` among them), its state in Redis.
    const policies = await loadWorkerPolicies(undefined);
    await pipeline.start({ policies });
    await pipeline.queue.add(BATCH_JOB_NAME, { events: events.slice(0, cut) });
    await waitUntilIdle(pipeline.queue);
    await pipeline.worker!.close();
    await pipeline.start({ policies });
    await pipeline.queue.add(BATCH_JOB_NAME, { events: events.slice(cut) });
    // A redelivery of the whole trace raises nothing new either.
    await pipeline.queue.add(BATCH_JOB_NAME, { events });
    await waitUntilIdle(pipeline.queue);

    const flags = inClear(await readAll(pipeline.ledger))
      .map((r) => r.event)
      .filter((e) => e.type === "policy.flag" && e.traceId === traceId && e.name === "default.pii-or-secret");
    expect(flags).toHaveLength(1);
    expect(flags[0]!.type === "policy.flag" && flags[0]!.payload.evidence.measures).toEqual({ email: 1 });
    const [{ n }] = (await pipeline.graph.read(
      `MATCH (f:PolicyFlag {tenantId: $tenantId, traceId: $traceId}) WHERE f.policyId = 'default.pii-or-secret' RETURN count(f) AS n`,
      { tenantId, traceId },
    )) as [{ n: number }];
    expect(Number(n)).toBe(1);
  });
});
