import { randomUUID } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import { Redis } from "ioredis";
import { AIMessage, ToolMessage } from "@langchain/core/messages";
import { awaitAllCallbacks } from "@langchain/core/callbacks/promises";
import { fakeModel } from "@langchain/core/testing";
import { createAgent } from "langchain";
import { AuditCallbackHandler } from "@auditgraph/langchain";
import { PolicySet, RedisHoldDecider, holdIdOf, publishHoldDecision, readHold, type HoldRecord } from "@auditgraph/policy";
import { freePort } from "./redis-process.js";
import { holdTransfers, transferTool } from "./fixtures/transfer.js";
import { Collect } from "./fixtures/collect.js";

const connection = { host: "127.0.0.1", port: 6379 };
const agent = { id: "payments-agent", name: "Payments agent", version: "1.0.0" };
const user = { id: "alice", tenantId: "acme" };

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!().catch(() => undefined);
});

/** A real agent whose model asks for one transfer; the hold rule guards it; the decider is in Redis. */
function transferAgent(timeoutMs: number, defaultOutcome: "allow" | "deny", decider: RedisHoldDecider) {
  const { transfer, runs } = transferTool();
  const model = fakeModel()
    .respondWithTools([{ id: "tc-transfer", name: "transfer_funds", args: { amount: 250 } }])
    .respond(new AIMessage("done"));
  const transport = new Collect();
  const handler = new AuditCallbackHandler(
    { agent, user, inlinePolicies: { set: PolicySet.create([holdTransfers(timeoutMs, defaultOutcome)]), decider } },
    transport,
  );
  const running = createAgent({ model, tools: [transfer] }).invoke({ messages: [{ role: "user", content: "pay invoice 42" }] }, { callbacks: [handler] });
  return { runs, transport, running };
}

/** Polls from the reviewer's own connection until the agent's hold is registered: what the CLI sees. */
async function pendingHold(reviewer: Redis, prefix: string, transport: Collect, running: Promise<unknown>): Promise<HoldRecord> {
  const deadline = Date.now() + 10_000;
  let finished = false;
  void running.finally(() => (finished = true));
  for (;;) {
    const start = transport.events.find((e) => e.type === "tool.start");
    // The worker and the CLI compute the id the same way, from the tool.start event and the policy id.
    if (start) {
      const hold = await readHold(reviewer, holdIdOf({ policyId: "review-transfers", concerns: { runId: start.runId } }), { prefix });
      if (hold?.state === "pending") return hold;
    }
    if (finished) throw new Error("the agent finished without holding the transfer");
    if (Date.now() > deadline) throw new Error("no hold registered in Redis");
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

async function dropKeys(redis: Redis, prefix: string) {
  const keys = await redis.keys(`${prefix}*`);
  if (keys.length) await redis.del(...keys);
}

describe("RedisHoldDecider: holds decided by a reviewer through Redis", () => {
  it("a decision published from another connection releases the agent's call; a second hold times out and takes its default", async () => {
    const prefix = `auditgraph-test:${randomUUID()}:hold:`;
    const decider = new RedisHoldDecider({ connection, prefix });
    const reviewer = new Redis(connection);
    cleanups.push(
      () => decider.close(),
      () => reviewer.quit(),
      () => dropKeys(reviewer, prefix),
    );

    // 1. Approved by the reviewer: the tool runs.
    const first = transferAgent(30_000, "deny", decider);
    const hold = await pendingHold(reviewer, prefix, first.transport, first.running);
    const start = first.transport.events.find((e) => e.type === "tool.start")!;
    expect(hold).toMatchObject({
      holdId: `${start.runId}:review-transfers`,
      state: "pending",
      policyId: "review-transfers",
      policyVersion: "1",
      runId: start.runId,
      eventId: start.eventId,
    });
    // Pending in Redis (what happens instead of the call): only a decision releases the tool.
    expect(first.runs.count).toBe(0);

    const published = await publishHoldDecision(reviewer, hold.holdId, "allow", "reviewer-7", { prefix });
    expect(published).toEqual({ status: "decided", decision: "allow" });
    const result = await first.running;
    await awaitAllCallbacks();
    expect(first.runs.count).toBe(1);
    expect(result.messages.at(-1)?.text).toBe("done");
    expect(first.transport.flags().map((f) => f.payload)).toMatchObject([
      { outcome: "held" },
      { policyId: "review-transfers", outcome: "held-allowed", decision: "allow" },
    ]);
    expect(await readHold(reviewer, hold.holdId, { prefix })).toMatchObject({ state: "allow", reviewer: "reviewer-7" });
    // A second reviewer comes too late to change it.
    expect(await publishHoldDecision(reviewer, hold.holdId, "deny", "reviewer-8", { prefix })).toEqual({ status: "already-decided", decision: "allow" });

    // 2. Nobody decides: the rule's timeout passes and its default (deny) is taken.
    const started = Date.now();
    const second = transferAgent(300, "deny", decider);
    const waiting = await pendingHold(reviewer, prefix, second.transport, second.running);
    const denied = await second.running;
    await awaitAllCallbacks();
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    expect(second.runs.count).toBe(0);
    expect(second.transport.flags().map((f) => f.payload)).toMatchObject([{ outcome: "held" }, { outcome: "held-timeout", decision: "deny" }]);
    expect(denied.messages.find((m) => ToolMessage.isInstance(m))?.text).toContain("no decision came in time");
    // The hold is withdrawn, so a reviewer arriving now is told the default was taken.
    expect(await readHold(reviewer, waiting.holdId, { prefix })).toMatchObject({ state: "withdrawn" });
    expect(await publishHoldDecision(reviewer, waiting.holdId, "allow", "reviewer-7", { prefix })).toEqual({ status: "too-late" });
  });

  it("survives a missed pub/sub message by re-reading the key, and takes a decision made before it asked", async () => {
    const prefix = `auditgraph-test:${randomUUID()}:hold:`;
    const decider = new RedisHoldDecider({ connection, prefix, pollMs: 50 });
    const reviewer = new Redis(connection);
    cleanups.push(
      () => decider.close(),
      () => reviewer.quit(),
      () => dropKeys(reviewer, prefix),
    );

    const run = transferAgent(30_000, "deny", decider);
    const hold = await pendingHold(reviewer, prefix, run.transport, run.running);
    // Decided without a message (as if it were lost): only the poll of the key can see it.
    await reviewer.hset(`${prefix}{${hold.holdId}}`, "state", "deny", "reviewer", "reviewer-7");
    await run.running;
    await awaitAllCallbacks();
    expect(run.runs.count).toBe(0);
    expect(run.transport.flags().map((f) => f.payload)).toMatchObject([{ outcome: "held" }, { outcome: "held-denied", decision: "deny" }]);

    // Decided before the agent's hold registers (the escalation was quick): kept, then taken at once.
    const finding = {
      policyId: "review-transfers",
      policyVersion: "1",
      policySetHash: "0".repeat(64),
      severity: "high" as const,
      action: "hold" as const,
      concerns: { runId: randomUUID(), traceId: randomUUID(), kind: "tool_call" as const },
      reason: "r",
      evidence: { fields: [], measures: {} },
    };
    expect(await publishHoldDecision(reviewer, holdIdOf(finding), "allow", "reviewer-7", { prefix })).toEqual({ status: "recorded", decision: "allow" });
    expect(await decider.decide(finding, new AbortController().signal)).toBe("allow");
  });

  it("with Redis unreachable, decide fails (so the call is refused, not left to its default)", async () => {
    const decider = new RedisHoldDecider({ connection: { host: "127.0.0.1", port: await freePort(), retryStrategy: () => 50 }, connectTimeoutMs: 200 });
    cleanups.push(() => decider.close());
    const run = transferAgent(30_000, "allow", decider);
    await run.running;
    await awaitAllCallbacks();
    expect(run.runs.count).toBe(0);
    expect(run.transport.flags().map((f) => f.payload)).toMatchObject([{ outcome: "held" }, { outcome: "blocked", decision: "deny" }]);
  });
});
