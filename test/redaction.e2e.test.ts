import { afterEach, describe, expect, it } from "vitest";
import { awaitAllCallbacks } from "@langchain/core/callbacks/promises";
import { AIMessage } from "@langchain/core/messages";
import { fakeModel } from "@langchain/core/testing";
import { tool } from "@langchain/core/tools";
import { createAgent } from "langchain";
import { z } from "zod";
import { Redactor } from "@auditgraph/core";
import { AuditCallbackHandler, QueueTransport } from "@auditgraph/langchain";
import { waitUntilIdle } from "@auditgraph/worker";
import { DEMO_IDENTITY } from "@auditgraph/cli";
import { inClear, isolatedConfig, readAll, startPipeline } from "./helpers.js";

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!().catch(() => undefined);
});

const SECRETS = {
  email: "jane.doe@example.com",
  phone: "+1 415 555 2671",
  card: "4111 1111 1111 1111",
  apiKey: "sk-proj-abcdefghijklmnopqrstuvwxyz0123456789ABCD",
};

describe("redaction in the agent process", () => {
  it("no secret or PII reaches Redis or the ledger; counts are kept and equal values link", async () => {
    const config = await isolatedConfig();
    const pipeline = await startPipeline(config, { start: false });
    cleanups.push(() => pipeline.stop());
    const transport = new QueueTransport({ connection: config.redis, queueName: config.queueName, spoolDir: config.spoolDir });
    cleanups.push(() => transport.close());
    const redactor = new Redactor({ hashKey: "test-hmac-key-0123456789", detectors: { email: { operator: "hash" } } });
    const handler = new AuditCallbackHandler({ agent: DEMO_IDENTITY.agent, user: DEMO_IDENTITY.user, redactor }, transport);

    const crm = tool(() => `customer ${SECRETS.email}, card ${SECRETS.card}, key ${SECRETS.apiKey}`, {
      name: "crm_lookup",
      description: "customer record",
      schema: z.object({ email: z.string() }),
    });
    const model = fakeModel()
      .respondWithTools([{ id: "c1", name: "crm_lookup", args: { email: SECRETS.email } }])
      .respond(new AIMessage(`Found ${SECRETS.email}; call ${SECRETS.phone}.`));
    await createAgent({ model, tools: [crm] }).invoke(
      { messages: [{ role: "user", content: `Find the customer ${SECRETS.email}, phone ${SECRETS.phone}` }] },
      { callbacks: [handler] },
    );
    await awaitAllCallbacks();
    await handler.flush();

    // What left the process, as Redis holds it, before any worker touched it.
    const jobs = await pipeline.queue.getJobs(["waiting", "prioritized", "delayed"]);
    const inRedis = JSON.stringify(jobs.map((j) => j.data));
    expect(jobs.length).toBeGreaterThan(0);
    for (const value of Object.values(SECRETS)) expect(inRedis).not.toContain(value);
    expect(inRedis).not.toContain("4111111111111111");

    await pipeline.start();
    await waitUntilIdle(pipeline.queue);
    const records = await readAll(pipeline.ledger);
    const ledgerText = JSON.stringify(records);
    for (const value of Object.values(SECRETS)) expect(ledgerText).not.toContain(value);
    const counts = inClear(records).map((r) => r.event.redactions ?? {});
    expect(counts.some((c) => (c.email ?? 0) > 0 && Object.keys(c).length > 0)).toBe(true);
    expect(counts.some((c) => (c.card ?? 0) > 0)).toBe(true);
    expect(counts.some((c) => (c.secret ?? 0) > 0)).toBe(true);
    // The keyed hash links the same e-mail across events without showing it.
    const hashes = new Set(ledgerText.match(/\[EMAIL:hmac:[0-9a-f]{16}\]/g));
    expect(hashes.size).toBe(1);
    expect(await pipeline.ledger.verify()).toMatchObject({ ok: true });
  });
});
