import { randomUUID } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import { awaitAllCallbacks } from "@langchain/core/callbacks/promises";
import { AIMessage } from "@langchain/core/messages";
import { fakeModel } from "@langchain/core/testing";
import { tool } from "@langchain/core/tools";
import { createAgent } from "langchain";
import { z } from "zod";
import { AuditCallbackHandler, QueueTransport, Redactor } from "@auditgraph/langchain";
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
  it("a handler with no redaction options keeps every secret format out of Redis", async () => {
    const config = await isolatedConfig();
    const pipeline = await startPipeline(config, { start: false });
    cleanups.push(() => pipeline.stop());
    const transport = new QueueTransport({ connection: config.redis, queueName: config.queueName, spoolDir: config.spoolDir });
    cleanups.push(() => transport.close());
    const handler = new AuditCallbackHandler(
      { agent: DEMO_IDENTITY.agent, user: { ...DEMO_IDENTITY.user, tenantId: `acme-${randomUUID().slice(0, 8)}` } },
      transport,
    );
    const secrets = {
      apiKey: SECRETS.apiKey,
      bearer: "mF_9.B5f-4.1JqMzz81",
      jwt: "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
      pem: "MIIEowIBAAKCAQEA7bq3Xk2uQ9vTn1c",
      password: "correct-horse-battery-staple",
    };
    const vault = tool(() => `jwt ${secrets.jwt}\n-----BEGIN PRIVATE KEY-----\n${secrets.pem}\n-----END PRIVATE KEY-----`, {
      name: "vault_read",
      description: "reads a credential",
      schema: z.object({ password: z.string(), auth: z.string() }),
    });
    const model = fakeModel()
      .respondWithTools([{ id: "c1", name: "vault_read", args: { password: secrets.password, auth: `Bearer ${secrets.bearer}` } }])
      .respond(new AIMessage(`Done with ${secrets.apiKey}.`));
    await createAgent({ model, tools: [vault] }).invoke(
      { messages: [{ role: "user", content: `Use ${secrets.apiKey} to read it for ${SECRETS.email}` }] },
      { callbacks: [handler] },
    );
    await awaitAllCallbacks();
    await handler.flush();

    const jobs = await pipeline.queue.getJobs(["waiting", "prioritized", "delayed"]);
    const inRedis = JSON.stringify(jobs.map((j) => j.data));
    expect(jobs.length).toBeGreaterThan(0);
    for (const value of Object.values(secrets)) expect(inRedis).not.toContain(value);
    // Personal data is only redacted on request (Redactor({ pii: true })).
    expect(inRedis).toContain(SECRETS.email);
  });

  it("no secret or PII reaches Redis or the ledger; counts are kept and equal values link", async () => {
    const config = await isolatedConfig();
    const pipeline = await startPipeline(config, { start: false });
    cleanups.push(() => pipeline.stop());
    const transport = new QueueTransport({ connection: config.redis, queueName: config.queueName, spoolDir: config.spoolDir });
    cleanups.push(() => transport.close());
    const redactor = new Redactor({ pii: true, hashKey: "test-hmac-key-0123456789", detectors: { email: { operator: "hash" } } });
    const handler = new AuditCallbackHandler(
      { agent: DEMO_IDENTITY.agent, user: { ...DEMO_IDENTITY.user, tenantId: `acme-${randomUUID().slice(0, 8)}` }, redactor },
      transport,
    );

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
