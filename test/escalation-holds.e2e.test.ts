// Issue 6 phase 2c on real services: a real LangChain agent whose tool call a `hold` rule holds
// (RedisHoldDecider), audited through QueueTransport into an AuditWorker. The worker opens an
// escalation from the agent's `held` flag, with the hold's id; the built CLI resolves it (the
// call runs) or dismisses it (the call is refused), and the decision is on the transition.
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ToolMessage } from "@langchain/core/messages";
import { awaitAllCallbacks } from "@langchain/core/callbacks/promises";
import type { Queue } from "bullmq";
import { isSealed, type AuditEvent, type EventOf } from "@auditgraph/core";
import type { Graph } from "@auditgraph/graph";
import { SegmentLedger } from "@auditgraph/ledger";
import { QueueTransport } from "@auditgraph/langchain";
import { PolicySet, RedisHoldDecider, holdIdOf } from "@auditgraph/policy";
import { type AuditWorker, waitUntilIdle } from "@auditgraph/worker";
import type { Config } from "@auditgraph/cli";
import { eventually, isolatedConfig, readAll, runCli, cliEnvOf, startPolicyPipeline } from "./helpers.js";
import { holdTransfers, startTransferAgent, PAYMENTS_AGENT } from "./fixtures/transfer.js";

const tag = randomUUID().slice(0, 8);
const TENANT = `holds-${tag}`;
const AGENT = PAYMENTS_AGENT;

const HOLD = holdTransfers(60_000, "deny");

let config: Config;
let graph: Graph;
let ledger: SegmentLedger;
let queue: Queue;
let worker: AuditWorker;
let transport: QueueTransport;
let decider: RedisHoldDecider;

beforeAll(async () => {
  config = await isolatedConfig();
  ({ graph, ledger, queue, worker } = await startPolicyPipeline(config, tag));
  // A long linger: the held flag reaches the worker because it is expedited, not because the batch was due.
  transport = new QueueTransport({ connection: config.redis, queueName: config.queueName, spoolDir: config.spoolDir, lingerMs: 2_000 });
  decider = new RedisHoldDecider({ connection: config.redis });
}, 60_000);

afterAll(async () => {
  await decider?.close();
  await transport?.close();
  await worker?.close();
  await queue?.obliterate({ force: true }).catch(() => undefined);
  await queue?.close();
  await graph?.close();
});

function transferAgent() {
  return startTransferAgent({ agent: AGENT, inlinePolicies: { set: PolicySet.create([HOLD]), decider, escalateAt: "high" } }, transport, { tenantId: TENANT });
}

const plain = (records: Awaited<ReturnType<typeof readAll>>) => records.map((r) => r.event).filter((e): e is AuditEvent => !isSealed(e));

/** The escalation the worker opened for the held call of `traceId`, once it is in the ledger (while the agent waits). */
async function heldEscalation(traceId: string) {
  return eventually(async () => {
    const records = await ledger.readTrace(traceId);
    return plain(records).find((e): e is EventOf<"escalation.opened"> => e.type === "escalation.opened");
  }, 20_000);
}

const cli = (...args: string[]) => runCli(cliEnvOf(config), ...args);

describe("holds decided through escalations", () => {
  it("resolve releases a held tool call (it runs); dismiss refuses another (it does not); both decisions are on record", async () => {
    // 1. Held, escalated, resolved through the CLI: the agent goes on and the tool runs.
    const first = transferAgent();
    const opened = await heldEscalation(first.traceId);
    const start = plain(await ledger.readTrace(first.traceId)).find((e) => e.type === "tool.start")!;
    expect(opened.payload).toMatchObject({
      policyId: "review-transfers",
      severity: "high",
      holdId: holdIdOf({ policyId: "review-transfers", concerns: { runId: start.runId } }),
    });
    expect(opened.payload.concerns).toMatchObject({ eventId: start.eventId, runId: start.runId, kind: "tool_call", traceId: first.traceId });
    // When the agent stops waiting (the rule's 60 s from the hold's start) and what it then does.
    expect(opened.payload.defaultDecision).toBe("deny");
    expect(Date.parse(opened.payload.deadline!)).toBeGreaterThan(Date.parse(start.occurredAt) + 59_000);
    expect(Date.parse(opened.payload.deadline!)).toBeLessThan(Date.now() + 60_000);
    expect(first.runs.count).toBe(0);

    const resolved = await cli("escalations", "resolve", opened.payload.escalationId, "--by", "rev-1", "--reason", "invoice checked", "--tenant", TENANT);
    expect(resolved, resolved.stderr).toMatchObject({ code: 0 });
    expect(resolved.stdout).toContain(`hold ${opened.payload.holdId}: allow (decided)`);
    const result = await first.running;
    expect(first.runs.count).toBe(1);
    expect(result.messages.at(-1)?.text).toBe("done");

    // 2. Held, escalated, dismissed: the call is refused and the model is told so.
    const second = transferAgent();
    const secondOpened = await heldEscalation(second.traceId);
    const dismissed = await cli("escalations", "dismiss", secondOpened.payload.escalationId, "--by", "rev-2", "--reason", "unknown payee");
    expect(dismissed, dismissed.stderr).toMatchObject({ code: 0 });
    expect(dismissed.stdout).toContain(`hold ${secondOpened.payload.holdId}: deny (decided)`);
    const refused = await second.running;
    expect(second.runs.count).toBe(0);
    expect(refused.messages.find((m) => ToolMessage.isInstance(m))?.text).toMatch(/the reviewer denied it/);

    // Everything on record: the held flag, the escalation, the transition with its decision, the final flag.
    await awaitAllCallbacks();
    await transport.flush();
    await waitUntilIdle(queue);
    const reader = new SegmentLedger(config.ledgerDir);
    const events = plain(await readAll(reader));
    for (const [run, decision, outcome, escalationId] of [
      [first, "allow", "held-allowed", opened.payload.escalationId],
      [second, "deny", "held-denied", secondOpened.payload.escalationId],
    ] as const) {
      const ofTrace = events.filter((e) => e.traceId === run.traceId);
      const flags = ofTrace.filter((e): e is EventOf<"policy.flag"> => e.type === "policy.flag");
      expect(flags.map((f) => [f.payload.outcome, f.payload.decision])).toEqual([
        ["held", undefined],
        [outcome, decision],
      ]);
      const transitions = ofTrace.filter((e): e is EventOf<"escalation.transition"> => e.type === "escalation.transition");
      expect(transitions.map((t) => [t.payload.escalationId, t.payload.to, t.payload.holdDecision])).toEqual([
        [escalationId, decision === "allow" ? "resolved" : "dismissed", decision],
      ]);
      // One escalation per hold, although the final flag reached the worker too.
      expect(ofTrace.filter((e) => e.type === "escalation.opened")).toHaveLength(1);
    }
    expect(await reader.verify()).toMatchObject({ ok: true });

    await worker.projected();
    const rows = await graph.read(
      `MATCH (f:PolicyFlag {tenantId: $tenantId})-[:ESCALATED_TO]->(e:Escalation)
       RETURN e.holdId AS holdId, e.state AS state, f.outcome AS flag ORDER BY e.openedAt`,
      { tenantId: TENANT },
    );
    expect(rows).toEqual([
      { holdId: opened.payload.holdId, state: "resolved", flag: "held" },
      { holdId: secondOpened.payload.holdId, state: "dismissed", flag: "held" },
    ]);
  }, 120_000);
});
