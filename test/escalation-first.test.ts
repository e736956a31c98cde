import { randomUUID } from "node:crypto";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { Queue, Worker } from "bullmq";
import { AIMessage } from "@langchain/core/messages";
import { awaitAllCallbacks } from "@langchain/core/callbacks/promises";
import { fakeModel } from "@langchain/core/testing";
import { tool } from "@langchain/core/tools";
import { createAgent } from "langchain";
import { z } from "zod";
import { SCHEMA_VERSION, newEventId, type AuditEvent } from "@auditgraph/core";
import { AuditCallbackHandler, QueueTransport } from "@auditgraph/langchain";
import { PolicySet } from "@auditgraph/policy";

const connection = { host: "127.0.0.1", port: 6379 };
const agent = { id: "payments-agent", name: "Payments agent", version: "1.0.0" };
const user = { id: "alice", tenantId: "acme" };

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!().catch(() => undefined);
});

/** An ordinary event of some other trace: the backlog. The test's worker only records it. */
const ordinary = (i: number): AuditEvent =>
  ({
    eventId: newEventId(),
    schemaVersion: SCHEMA_VERSION,
    type: "text",
    occurredAt: new Date().toISOString(),
    traceId: "backlog",
    runId: "backlog",
    parentRunId: null,
    sessionId: null,
    identity: { user, agent },
    payload: { text: `ordinary ${i}` },
  }) as AuditEvent;

describe("escalation-first: an urgent event skips the queue", () => {
  it("an event an escalate rule flags is sent at once, with a higher job priority, and a worker takes it before the backlog", async () => {
    const queueName = `test-urgent-${randomUUID().slice(0, 8)}`;
    const queue = new Queue(queueName, { connection });
    cleanups.push(async () => {
      await queue.obliterate({ force: true });
      await queue.close();
    });
    // Linger and retry far off: only the urgent path can send before the test flushes.
    const transport = new QueueTransport({
      connection,
      queueName,
      spoolDir: await mkdtemp(join(tmpdir(), "auditgraph-urgent-")),
      lingerMs: 60_000,
      retryMs: 60_000,
    });
    cleanups.push(() => transport.close());

    // A backlog of ordinary batches (another agent process) is in Redis before the urgent event exists.
    const busy = new QueueTransport({ connection, queueName, spoolDir: await mkdtemp(join(tmpdir(), "auditgraph-backlog-")), batchSize: 10 });
    for (let i = 0; i < 50; i++) busy.send(ordinary(i));
    await busy.close();
    expect(await queue.getJobCounts("prioritized", "waiting")).toEqual({ prioritized: 5, waiting: 0 });

    const set = PolicySet.create([
      {
        kind: "rule",
        id: "wire-transfers",
        version: "1",
        description: "wire transfers need a human look",
        severity: "critical",
        action: "escalate",
        eventTypes: ["tool.start"],
        when: { field: "name", op: "equals", value: "wire_transfer" },
      },
      // Below the escalation severity: recorded by the worker, but nothing to hurry for.
      {
        kind: "rule",
        id: "every-answer",
        version: "1",
        severity: "low",
        action: "flag",
        eventTypes: ["llm.end"],
        when: { field: "type", op: "equals", value: "llm.end" },
      },
    ]);
    const handler = new AuditCallbackHandler({ agent, user, inlinePolicies: { set, escalateAt: "high" } }, transport);
    const wire = tool(({ amount }) => `wired ${amount}`, { name: "wire_transfer", description: "wire money", schema: z.object({ amount: z.number() }) });
    const model = fakeModel()
      .respondWithTools([{ id: "tc-wire", name: "wire_transfer", args: { amount: 9000 } }])
      .respond(new AIMessage("done"));
    const traceId = randomUUID();
    await createAgent({ model, tools: [wire] }).invoke({ messages: [{ role: "user", content: "wire it" }] }, { runId: traceId, callbacks: [handler] });
    await awaitAllCallbacks();

    // The urgent batch went without waiting for the linger; what came after it still waits.
    const deadline = Date.now() + 5_000;
    while (((await queue.getJobCounts("prioritized")).prioritized ?? 0) < 6 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(await queue.getJobCounts("prioritized", "waiting")).toEqual({ prioritized: 6, waiting: 0 });
    expect(transport.pending).toBeGreaterThan(0);
    expect(transport.metrics.expedited).toBeGreaterThan(0);

    // A real worker, one job at a time, records the order it is given the jobs in.
    const taken: Array<{ priority: number | undefined; traces: string[]; types: string[]; names: (string | undefined)[] }> = [];
    const worker = new Worker(
      queueName,
      async (job) => {
        const events = (job.data as { events: AuditEvent[] }).events;
        taken.push({
          priority: job.opts.priority,
          traces: [...new Set(events.map((e) => e.traceId))],
          types: events.map((e) => e.type),
          names: events.map((e) => e.name),
        });
      },
      { connection: { ...connection, maxRetriesPerRequest: null }, concurrency: 1 },
    );
    cleanups.push(() => worker.close());
    while (taken.length < 6 && Date.now() < deadline + 5_000) await new Promise((r) => setTimeout(r, 10));

    expect(taken).toHaveLength(6);
    const [first, ...rest] = taken;
    expect(first!.priority).toBe(1);
    expect(first!.traces).toEqual([traceId]);
    // The urgent event, with what its trace captured before it, in order.
    expect(first!.types.at(-1)).toBe("tool.start");
    expect(first!.names.at(-1)).toBe("wire_transfer");
    expect(first!.types[0]).toBe("chain.start");
    expect(rest.map((t) => [t.priority, t.traces])).toEqual(Array.from({ length: 5 }, () => [1000, ["backlog"]]));
  });
});
