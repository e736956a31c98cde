// Issue 14, point 9: approvals are proven, not trusted. A real LangChain agent whose held call a
// reviewer allows leaves nothing for `approval-integrity` and no critical flag; tool runs forged
// straight onto the queue (a producer bypassing the handler, as frameworks that ran rejected
// calls would look) are each found by the investigation and by the worker's critical flag: (a)
// ran while held with no decision, (b) ran after a deny, (c) ran after the hold's deadline, (d) a
// high-impact tool ran with no start event. The investigation stays within its tenant and window.
import { randomUUID } from "node:crypto";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { awaitAllCallbacks } from "@langchain/core/callbacks/promises";
import type { Queue } from "bullmq";
import { SCHEMA_VERSION, isSealed, newEventId, type AuditEvent, type EventOf, type UserEvent } from "@auditgraph/core";
import { type Graph, investigate } from "@auditgraph/graph";
import { SegmentLedger } from "@auditgraph/ledger";
import { QueueTransport } from "@auditgraph/langchain";
import { PolicySet, RedisHoldDecider, redisClient } from "@auditgraph/policy";
import { type AuditWorker, transitionEscalation, waitUntilIdle } from "@auditgraph/worker";
import { loadConfig, type Config } from "@auditgraph/cli";
import { cliEnvOf, eventually, isolatedConfig, readAll, runCli, startPolicyPipeline } from "./helpers.js";
import { holdTransfers, startTransferAgent, PAYMENTS_AGENT } from "./fixtures/transfer.js";

const tag = randomUUID().slice(0, 8);
const TENANT = `approvals-${tag}`;
const OTHER = `approvals-other-${tag}`;
const AGENT = PAYMENTS_AGENT;
const HIGH_IMPACT = ["transfer_funds"];

let config: Config;
let graph: Graph;
let ledger: SegmentLedger;
let queue: Queue;
let worker: AuditWorker;
let transport: QueueTransport;
let forger: QueueTransport;
let decider: RedisHoldDecider;
let holds: ReturnType<typeof redisClient>;

beforeAll(async () => {
  config = await isolatedConfig();
  ({ graph, ledger, queue, worker } = await startPolicyPipeline(config, tag, {
    highImpactTools: HIGH_IMPACT,
  }));
  transport = new QueueTransport({ connection: config.redis, queueName: config.queueName, spoolDir: config.spoolDir, lingerMs: 20 });
  // The forger: a producer of its own on the same queue, no handler, events written by hand.
  const forgerSpool = await mkdtemp(join(tmpdir(), "auditgraph-forger-"));
  forger = new QueueTransport({ connection: config.redis, queueName: config.queueName, spoolDir: forgerSpool, lingerMs: 20 });
  decider = new RedisHoldDecider({ connection: config.redis });
  holds = redisClient(config.redis);
}, 60_000);

afterAll(async () => {
  await decider?.close();
  await transport?.close();
  await forger?.close();
  await worker?.close();
  await holds?.quit();
  await queue?.obliterate({ force: true }).catch(() => undefined);
  await queue?.close();
  await graph?.close();
});

const plain = (records: Awaited<ReturnType<typeof readAll>>) => records.map((r) => r.event).filter((e): e is AuditEvent => !isSealed(e));

async function settled() {
  await awaitAllCallbacks();
  await transport.flush();
  await forger.flush();
  await waitUntilIdle(queue);
  await worker.projected();
}

/** The escalation the worker opened for the hold of `traceId`, once it is in the ledger. */
const escalationOf = (traceId: string) =>
  eventually(async () => plain(await ledger.readTrace(traceId)).find((e): e is EventOf<"escalation.opened"> => e.type === "escalation.opened"), 20_000);

/** The worker's approval-integrity flags, by run: what its critical flags say. */
async function criticalFlags(tenantId: string) {
  const events = plain(await readAll(new SegmentLedger(config.ledgerDir)));
  return events
    .filter((e): e is EventOf<"policy.flag"> => e.type === "policy.flag" && e.identity.user.tenantId === tenantId && e.payload.severity === "critical")
    .map((f) => ({ runId: f.payload.concerns.runId, policyId: f.payload.policyId }))
    .sort((a, b) => a.policyId.localeCompare(b.policyId));
}

const findings = async (tenantId: string, extra: Record<string, unknown> = {}) =>
  (await investigate(graph, "approval-integrity", { tenantId, highImpactTools: HIGH_IMPACT, ...extra })).map((r) => ({
    runId: r.runId,
    violation: r.violation,
  }));

/** Hand-written events of one trace of `tenantId`, as a producer that bypasses the handler sends them. */
function forgedTrace(tenantId: string) {
  const traceId = randomUUID();
  const runId = randomUUID();
  const identity = { user: { id: "mallory", tenantId }, agent: AGENT };
  const base = () => ({
    eventId: newEventId(),
    schemaVersion: SCHEMA_VERSION,
    occurredAt: new Date().toISOString(),
    traceId,
    runId,
    parentRunId: traceId,
    sessionId: null,
    identity,
  });
  const start = (name = "transfer_funds") =>
    ({ ...base(), type: "tool.start", name, payload: { toolCallId: `call-${runId}`, input: '{"amount":9000}' } }) as UserEvent;
  const end = (name = "transfer_funds") =>
    ({ ...base(), type: "tool.end", name, payload: { toolCallId: `call-${runId}`, output: "sent 9000 EUR" } }) as UserEvent;
  const held = (concerned: string, deadline: Date) =>
    ({
      ...base(),
      type: "policy.flag",
      name: "review-transfers",
      payload: {
        policyId: "review-transfers",
        policyVersion: "1",
        policySetHash: "a".repeat(64),
        severity: "high",
        action: "hold",
        concerns: { eventId: concerned, runId, kind: "tool_call" },
        reason: "a human approves every transfer",
        evidence: { fields: [], measures: {} },
        outcome: "held",
        hold: { holdId: `${runId}:review-transfers`, deadline: deadline.toISOString(), defaultDecision: "deny" },
      },
    }) as UserEvent;
  return { traceId, runId, start, end, held };
}

async function send(...events: UserEvent[]) {
  for (const e of events) forger.send(e);
  await forger.flush();
}

/** A real agent whose `transfer_funds` call a hold rule holds, and the tool's run counter. */
function heldAgent(timeoutMs: number, defaultOutcome: "allow" | "deny") {
  return startTransferAgent(
    {
      agent: AGENT,
      highImpactTools: HIGH_IMPACT,
      inlinePolicies: { set: PolicySet.create([holdTransfers(timeoutMs, defaultOutcome)]), decider, escalateAt: "high" },
    },
    transport,
    { tenantId: TENANT },
  );
}

describe("approval-integrity", () => {
  let before: string;
  let after: string;
  const forged: Record<"a" | "b" | "c" | "d" | "elsewhere", string> = { a: "", b: "", c: "", d: "", elsewhere: "" };

  it("a held call a reviewer allowed, which then ran, and one whose rule allows at the deadline: no findings, no critical flag", async () => {
    before = new Date().toISOString();
    // A hold nobody answers whose rule's default is allow: the call runs at the deadline, rightly.
    const byDefault = heldAgent(1_000, "allow");
    const { traceId, running, runs } = heldAgent(60_000, "deny");
    const opened = await escalationOf(traceId);
    expect(runs.count).toBe(0);
    const decided = await transitionEscalation(
      ledger,
      graph,
      { escalationId: opened.payload.escalationId, to: "resolved", reviewer: { id: "rev-1" }, reason: "invoice checked", tenantId: TENANT },
      { redis: holds },
    );
    expect(decided.hold).toMatchObject({ decision: "allow", published: { status: "decided" } });
    await running;
    expect(runs.count).toBe(1);
    await byDefault.running;
    expect(byDefault.runs.count).toBe(1);
    await settled();
    // Both runs are on record (so there was something to check).
    const ran = plain(await readAll(new SegmentLedger(config.ledgerDir))).filter(
      (e) => e.type === "tool.end" && new Set<string>([traceId, byDefault.traceId]).has(e.traceId),
    );
    expect(ran).toHaveLength(2);

    expect(await findings(TENANT)).toEqual([]);
    expect(await criticalFlags(TENANT)).toEqual([]);
  }, 60_000);

  it("finds each forged run, by the investigation and by a critical flag", async () => {
    // (a) Held (deadline a minute ahead), nobody decided, and it ran: one batch, as a producer would send it.
    const a = forgedTrace(TENANT);
    const aStart = a.start();
    await send(aStart, a.held(aStart.eventId, new Date(Date.now() + 60_000)), a.end());

    // (b) Held, a reviewer denied it (the decision on record), and it ran anyway.
    const b = forgedTrace(TENANT);
    const bStart = b.start();
    await send(bStart, b.held(bStart.eventId, new Date(Date.now() + 60_000)));
    const bOpened = await escalationOf(b.traceId);
    const denied = await transitionEscalation(
      ledger,
      graph,
      { escalationId: bOpened.payload.escalationId, to: "dismissed", reviewer: { id: "rev-2" }, reason: "unknown payee", tenantId: TENANT },
      { redis: holds },
    );
    expect(denied.event.payload.holdDecision).toBe("deny");
    await send(b.end());

    // (c) It ran first; the hold's flag, whose deadline (default deny) had passed before it ran, reaches the worker after the run's end.
    const c = forgedTrace(TENANT);
    const cStart = c.start();
    const cDeadline = new Date(Date.now() - 1_000);
    await send(cStart, c.end());
    await eventually(async () => plain(await ledger.readTrace(c.traceId)).find((e) => e.type === "tool.end"), 20_000);
    await send(c.held(cStart.eventId, cDeadline));

    // (d) A high-impact tool ran with no start event; a tool not named high-impact without one is no finding.
    const d = forgedTrace(TENANT);
    const lookup = forgedTrace(TENANT);
    await send(d.end(), lookup.end("lookup_rates"));

    // Another tenant's forged run: its own finding, never this tenant's.
    const elsewhere = forgedTrace(OTHER);
    await send(elsewhere.end());
    await settled();
    after = new Date().toISOString();
    Object.assign(forged, { a: a.runId, b: b.runId, c: c.runId, d: d.runId, elsewhere: elsewhere.runId });

    const expected = [
      { runId: a.runId, violation: "no-decision" },
      { runId: b.runId, violation: "after-deny" },
      { runId: c.runId, violation: "after-deadline" },
      { runId: d.runId, violation: "no-start" },
    ];
    const byRun = (x: { runId: string }, y: { runId: string }) => x.runId.localeCompare(y.runId);
    expect((await findings(TENANT)).sort(byRun)).toEqual([...expected].sort(byRun));
    const rows = await investigate(graph, "approval-integrity", { tenantId: TENANT, highImpactTools: HIGH_IMPACT });
    expect(rows.find((r) => r.runId === b.runId)).toMatchObject({
      tool: "transfer_funds",
      decision: "deny",
      decidedBy: "rev-2",
      holdId: `${b.runId}:review-transfers`,
      userId: "mallory",
    });
    expect(rows.find((r) => r.runId === d.runId)).toMatchObject({ tool: "transfer_funds", startedAt: null, holdId: null });

    // The worker's critical flags: one per forged run, of its kind, and none on the correct run.
    expect(await criticalFlags(TENANT)).toEqual(
      expected.map((e) => ({ runId: e.runId, policyId: `approval-integrity.${e.violation}` })).sort((x, y) => x.policyId.localeCompare(y.policyId)),
    );
    // In the graph too, on the tool run they are about.
    const flagged = await graph.read(
      `MATCH (x:ToolCall {tenantId: $tenantId})-[:FLAGGED]->(f:PolicyFlag {severity: 'critical'}) RETURN x.runId AS runId, f.policyId AS policyId ORDER BY policyId`,
      { tenantId: TENANT },
    );
    expect(flagged).toEqual(
      expected.map((e) => ({ runId: e.runId, policyId: `approval-integrity.${e.violation}` })).sort((x, y) => x.policyId.localeCompare(y.policyId)),
    );
  }, 90_000);

  it("is scoped to its tenant and to its window (the run's end, worker time)", async () => {
    expect(await findings(OTHER)).toEqual([{ runId: forged.elsewhere, violation: "no-start" }]);
    expect(await criticalFlags(OTHER)).toEqual([{ runId: forged.elsewhere, policyId: "approval-integrity.no-start" }]);
    // Without the tool named high-impact, a missing start is no finding; the holds are checked whatever the list.
    expect((await findings(TENANT, { highImpactTools: [] })).map((r) => r.violation).sort()).toEqual(["after-deadline", "after-deny", "no-decision"]);
    expect(await findings(TENANT, { until: before })).toEqual([]);
    expect(await findings(TENANT, { since: after })).toEqual([]);
    expect(await findings(TENANT, { since: before, until: after })).toHaveLength(4);

    // The CLI's worker takes its list from the environment, as the investigation takes it from --param.
    expect(loadConfig({ AUDITGRAPH_HIGH_IMPACT_TOOLS: "transfer_funds, delete_account," }).highImpactTools).toEqual(["transfer_funds", "delete_account"]);

    // And from the CLI, with the list as text.
    const cli = await runCli(
      cliEnvOf(config),
      "query",
      "approval-integrity",
      "--tenant",
      OTHER,
      "--param",
      "highImpactTools=transfer_funds,other_tool",
      "--json",
    );
    expect(cli, cli.stderr).toMatchObject({ code: 0 });
    expect((JSON.parse(cli.stdout) as { runId: string; violation: string }[]).map((r) => [r.runId, r.violation])).toEqual([[forged.elsewhere, "no-start"]]);
    // Without --param, `query` reads the worker's list from AUDITGRAPH_HIGH_IMPACT_TOOLS; without either, no missing start is a finding.
    const fromEnv = await runCli(
      { ...cliEnvOf(config), AUDITGRAPH_HIGH_IMPACT_TOOLS: "transfer_funds" },
      "query",
      "approval-integrity",
      "--tenant",
      OTHER,
      "--json",
    );
    expect(fromEnv, fromEnv.stderr).toMatchObject({ code: 0 });
    expect((JSON.parse(fromEnv.stdout) as { runId: string }[]).map((r) => r.runId)).toEqual([forged.elsewhere]);
    const none = await runCli(cliEnvOf(config), "query", "approval-integrity", "--tenant", OTHER, "--json");
    expect(JSON.parse(none.stdout)).toEqual([]);
  }, 180_000);
});
