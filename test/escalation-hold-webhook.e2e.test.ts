// Issue 14 point 6 on real services: a real LangChain agent whose tool call an inline `hold` rule
// holds (RedisHoldDecider), audited through QueueTransport into an AuditWorker that notifies a
// webhook receiver started here. The webhook says that a call waits: its hold's id, the deadline
// the agent keeps and what happens then, and still nothing of the user's. The built CLI's
// `escalations list` and `show` give the time left, and `expired` once the deadline has passed.
import { createServer, type Server } from "node:http";
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { awaitAllCallbacks } from "@langchain/core/callbacks/promises";
import type { Queue } from "bullmq";
import { isSealed, type AuditEvent, type EventOf } from "@auditgraph/core";
import type { Graph } from "@auditgraph/graph";
import type { SegmentLedger } from "@auditgraph/ledger";
import { QueueTransport } from "@auditgraph/langchain";
import { PolicySet, RedisHoldDecider, holdIdOf, verifyWebhookSignature, SIGNATURE_HEADER, TIMESTAMP_HEADER } from "@auditgraph/policy";
import { type AuditWorker, waitUntilIdle } from "@auditgraph/worker";
import type { Config } from "@auditgraph/cli";
import { eventually, isolatedConfig, runCli, cliEnvOf, startPolicyPipeline } from "./helpers.js";
import { freePort } from "./redis-process.js";
import { holdTransfers, startTransferAgent, PAYMENTS_AGENT } from "./fixtures/transfer.js";

const tag = randomUUID().slice(0, 8);
const TENANT = `hold-hook-${tag}`;
const SECRET = `whsec-${randomUUID()}`;
const AGENT = PAYMENTS_AGENT;
// The user's content, each unmistakable: none of it may reach the receiver.
const USER = `zebulon-${tag}`;
const PROMPT = `pay the Quillfeather invoice ${tag}`;
const AMOUNT = 4711.25;
const ANSWER = `transfer arranged for Quillfeather ${tag}`;

let config: Config;
let graph: Graph;
let ledger: SegmentLedger;
let queue: Queue;
let worker: AuditWorker;
let transport: QueueTransport;
let decider: RedisHoldDecider;
let server: Server;
const received: Array<{ body: string; signature: string; timestamp: string }> = [];

beforeAll(async () => {
  config = await isolatedConfig();
  const port = await freePort();
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      received.push({
        body: Buffer.concat(chunks).toString("utf8"),
        signature: String(req.headers[SIGNATURE_HEADER]),
        timestamp: String(req.headers[TIMESTAMP_HEADER]),
      });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  ({ graph, ledger, queue, worker } = await startPolicyPipeline(config, tag, {
    notifier: { webhook: { url: `http://127.0.0.1:${port}/hooks`, secret: SECRET, attempts: 5, baseDelayMs: 100, maxDelayMs: 400, timeoutMs: 2_000 } },
  }));
  transport = new QueueTransport({ connection: config.redis, queueName: config.queueName, spoolDir: config.spoolDir, lingerMs: 2_000 });
  decider = new RedisHoldDecider({ connection: config.redis });
}, 60_000);

afterAll(async () => {
  await decider?.close();
  await transport?.close();
  await worker?.close();
  await new Promise((resolve) => (server ? server.close(resolve) : resolve(undefined)));
  await queue?.obliterate({ force: true }).catch(() => undefined);
  await queue?.close();
  await graph?.close();
});

function heldAgent(timeoutMs: number, defaultOutcome: "allow" | "deny") {
  return startTransferAgent(
    { agent: AGENT, inlinePolicies: { set: PolicySet.create([holdTransfers(timeoutMs, defaultOutcome)]), decider, escalateAt: "high" } },
    transport,
    { tenantId: TENANT, userId: USER, prompt: PROMPT, amount: AMOUNT, answer: ANSWER },
  );
}

const plain = (records: Awaited<ReturnType<SegmentLedger["readTrace"]>>) => records.map((r) => r.event).filter((e): e is AuditEvent => !isSealed(e));

/** The held call's start, its `held` flag and its escalation, once the worker opened it (while the agent waits). */
async function heldRecord(traceId: string) {
  return eventually(async () => {
    const events = plain(await ledger.readTrace(traceId));
    const start = events.find((e) => e.type === "tool.start");
    const flag = events.find((e): e is EventOf<"policy.flag"> => e.type === "policy.flag" && e.payload.outcome === "held");
    const opened = events.find((e): e is EventOf<"escalation.opened"> => e.type === "escalation.opened");
    return start && flag && opened ? { start, flag, opened } : undefined;
  }, 20_000);
}

/** The webhook body the receiver got for `escalationId`, raw and parsed. */
async function webhookFor(escalationId: string) {
  const hit = await eventually(async () => received.find((r) => (JSON.parse(r.body) as { escalationId: string }).escalationId === escalationId), 20_000);
  return { ...hit, json: JSON.parse(hit.body) as Record<string, unknown> };
}

const cli = (...args: string[]) => runCli(cliEnvOf(config), ...args);

describe("a held call's escalation says that a call is waiting", () => {
  it("the webhook carries holdId, deadline and defaultDecision and nothing of the user's; list and show give the time left, then expired", async () => {
    const HOLD_MS = 10 * 60_000;
    const before = Date.now();
    const waiting = heldAgent(HOLD_MS, "deny");
    const { start, flag, opened } = await heldRecord(waiting.traceId);
    const holdId = holdIdOf({ policyId: "review-transfers", concerns: { runId: start.runId } });

    // The hold as the agent recorded it when it started waiting: the deadline it keeps.
    expect(flag.payload.hold).toEqual({ holdId, deadline: expect.any(String), defaultDecision: "deny" });
    const deadline = flag.payload.hold!.deadline;
    expect(Date.parse(deadline)).toBeGreaterThanOrEqual(before + HOLD_MS);
    expect(Date.parse(deadline)).toBeLessThanOrEqual(Date.now() + HOLD_MS);
    expect(opened.payload).toMatchObject({ holdId, deadline, defaultDecision: "deny" });

    // The webhook: signed, a call waits, until when, and what then; ids and the policy's words only.
    const hook = await webhookFor(opened.payload.escalationId);
    expect(verifyWebhookSignature({ secret: SECRET, body: hook.body, signature: hook.signature, timestamp: hook.timestamp })).toBe(true);
    expect(hook.json).toMatchObject({
      kind: "escalation.opened",
      escalationId: opened.payload.escalationId,
      tenantId: TENANT,
      holdId,
      deadline,
      defaultDecision: "deny",
    });
    expect(new Date(hook.json.deadline as string).toISOString()).toBe(hook.json.deadline);
    expect(Date.parse(hook.json.deadline as string)).toBeGreaterThan(Date.now());
    expect(Object.keys(hook.json).sort()).toEqual(
      [
        "concerns",
        "deadline",
        "defaultDecision",
        "escalationId",
        "holdId",
        "kind",
        "lineage",
        "openedAt",
        "policyId",
        "policySetHash",
        "policyVersion",
        "reason",
        "severity",
        "tenantId",
      ].sort(),
    );
    for (const content of [USER, PROMPT, String(AMOUNT), "Quillfeather", ANSWER]) expect(hook.body).not.toContain(content);
    expect(waiting.runs.count).toBe(0);

    // The queue, from the graph: the time left, as a number and in words.
    await worker.projected();
    const listed = await cli("escalations", "list", "--tenant", TENANT, "--json");
    expect(listed, listed.stderr).toMatchObject({ code: 0 });
    const row = (JSON.parse(listed.stdout) as Array<Record<string, unknown>>).find((r) => r.id === opened.payload.escalationId);
    expect(row).toMatchObject({ holdId, deadline, defaultDecision: "deny", timeLeftMs: expect.any(Number) });
    expect(row!.timeLeftMs as number).toBeGreaterThan(0);
    expect(row!.timeLeftMs as number).toBeLessThanOrEqual(Date.parse(deadline) - before);
    const text = await cli("escalations", "list", "--tenant", TENANT);
    expect(text.stdout).toMatch(new RegExp(`${opened.payload.escalationId}.*held call: time left (9m|10m) \\d+s \\(then deny\\)`));

    // One escalation, from the ledger.
    const shown = await cli("escalations", "show", opened.payload.escalationId, "--tenant", TENANT, "--json");
    expect(shown, shown.stderr).toMatchObject({ code: 0 });
    const view = JSON.parse(shown.stdout) as { deadline: unknown; timeLeftMs: unknown };
    expect(view.deadline).toBe(deadline);
    expect(typeof view.timeLeftMs).toBe("number");
    expect(view.timeLeftMs as number).toBeGreaterThan(0);
    expect((await cli("escalations", "show", opened.payload.escalationId, "--tenant", TENANT)).stdout).toMatch(
      new RegExp(`deadline ${deadline.replace(/[.]/g, "\\.")}, default deny: time left (9m|10m) \\d+s`),
    );

    // Decided: no call waits any more, so no time is left to count.
    const dismissed = await cli("escalations", "dismiss", opened.payload.escalationId, "--by", "rev-1", "--reason", "unknown payee", "--tenant", TENANT);
    expect(dismissed, dismissed.stderr).toMatchObject({ code: 0 });
    await waiting.running;
    expect(waiting.runs.count).toBe(0);

    // A short hold nobody answers: the agent takes its default at the recorded deadline, and the queue says expired.
    const SHORT_MS = 3_000;
    const lapsed = heldAgent(SHORT_MS, "allow");
    const short = await heldRecord(lapsed.traceId);
    const shortHook = await webhookFor(short.opened.payload.escalationId);
    expect(shortHook.json).toMatchObject({ holdId: short.flag.payload.hold!.holdId, deadline: short.flag.payload.hold!.deadline, defaultDecision: "allow" });
    await lapsed.running;
    expect(lapsed.runs.count).toBe(1);
    await awaitAllCallbacks();
    await transport.flush();
    await waitUntilIdle(queue);
    const final = plain(await ledger.readTrace(lapsed.traceId)).find(
      (e): e is EventOf<"policy.flag"> => e.type === "policy.flag" && e.payload.outcome === "held-timeout",
    )!;
    expect(final.payload).toMatchObject({ decision: "allow", hold: short.flag.payload.hold });
    expect(Date.parse(final.occurredAt)).toBeGreaterThanOrEqual(Date.parse(short.flag.payload.hold!.deadline));

    await worker.projected();
    const all = JSON.parse((await cli("escalations", "list", "--tenant", TENANT, "--state", "all", "--json")).stdout) as Array<Record<string, unknown>>;
    expect(all.find((r) => r.id === opened.payload.escalationId)).toMatchObject({ state: "dismissed", deadline, timeLeftMs: null });
    expect(all.find((r) => r.id === short.opened.payload.escalationId)).toMatchObject({ state: "open", timeLeftMs: 0 });
    const lines = (await cli("escalations", "list", "--tenant", TENANT)).stdout;
    expect(lines).toMatch(new RegExp(`${short.opened.payload.escalationId}.*held call: expired \\(allow taken\\)`));
    expect((await cli("escalations", "show", short.opened.payload.escalationId, "--tenant", TENANT)).stdout).toMatch(/default allow: expired/);
  }, 120_000);
});
