// The escalation inbox in a real Chromium, over the real pipeline: a real LangChain agent whose
// transfer a `hold` rule holds, a real worker that opens the escalation and announces it, and the
// console (real Redis, Neo4j, PostgreSQL). The held call appears without a reload; a reviewer
// approves or denies it (the agent goes on, or is refused); the decision and the reads are in the
// ledger; a viewer cannot decide; recorded text never runs as script; tenant B cannot see A's ids.
import { mkdir } from "node:fs/promises";
import { randomUUID } from "node:crypto";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Browser, Page } from "playwright-core";
import { z } from "zod";
import { tool } from "@langchain/core/tools";
import { AIMessage, ToolMessage } from "@langchain/core/messages";
import { fakeModel } from "@langchain/core/testing";
import { createAgent } from "langchain";
import type { Queue } from "bullmq";
import type { Cluster, Redis } from "ioredis";
import { BATCH_JOB_NAME, SCHEMA_VERSION, isSealed, newEventId, streamIdFor, type AuditEvent, type EventOf, type UserEvent } from "@auditgraph/core";
import type { Graph } from "@auditgraph/graph";
import { SegmentLedger } from "@auditgraph/ledger";
import { AuditCallbackHandler, METADATA_KEYS, QueueTransport } from "@auditgraph/langchain";
import { PolicySet, RedisHoldDecider, redisClient } from "@auditgraph/policy";
import { type AuditWorker, ESCALATION_CHANGES_CHANNEL, waitUntilIdle } from "@auditgraph/worker";
import type { Config } from "@auditgraph/cli";
import { eventually, isolatedConfig, readAll, sampleTrace, startPolicyPipeline } from "../helpers.js";
import { PAYMENTS_AGENT, holdTransfers, startTransferAgent } from "../fixtures/transfer.js";
import { launchBrowser, startTestConsole, testEmail, type TestConsole } from "./harness.js";

const tag = randomUUID().slice(0, 8);
const TENANT_A = `inbox-a-${tag}`;
const TENANT_B = `inbox-b-${tag}`;
const TENANT_C = `inbox-c-${tag}`;
const PASSWORD = "correct horse battery staple";
const HOSTILE = "</script><img src=x onerror=window.__xss=1>";
const DOCS = fileURLToPath(new URL("../../docs/console/", import.meta.url));

let config: Config;
let graph: Graph;
let ledger: SegmentLedger;
let queue: Queue;
let worker: AuditWorker;
let transport: QueueTransport;
let decider: RedisHoldDecider;
let consoleApp: TestConsole;
let browser: Browser;
let listener: Redis | Cluster;
let consoleClosed = false;
const notices: { tenantId: string; escalationId: string }[] = [];
const accounts = {} as Record<"reviewer" | "viewer" | "reviewerB" | "reviewerC", { email: string; accountId: string }>;

const handlerOptions = () => ({
  agent: PAYMENTS_AGENT,
  inlinePolicies: { set: PolicySet.create([holdTransfers(120_000, "deny")]), decider, escalateAt: "high" as const },
});

/**
 * Like `startTransferAgent`, but the transfer carries a memo the model wrote (here, hostile markup):
 * the arguments as recorded are what the inbox shows. Same tool name, so the same rule holds it.
 */
function startMemoTransfer(memo: string) {
  const runs = { count: 0 };
  const transfer = tool(
    ({ amount }) => {
      runs.count += 1;
      return `sent ${amount} EUR`;
    },
    { name: "transfer_funds", description: "send money", schema: z.object({ amount: z.number(), memo: z.string() }) },
  );
  const model = fakeModel()
    .respondWithTools([{ id: `tc-${randomUUID().slice(0, 8)}`, name: "transfer_funds", args: { amount: 990, memo } }])
    .respond(new AIMessage("done"));
  const traceId = randomUUID();
  const running = createAgent({ model, tools: [transfer] }).invoke(
    { messages: [{ role: "user", content: `pay this ${memo}` }] },
    {
      runId: traceId,
      callbacks: [new AuditCallbackHandler(handlerOptions(), transport)],
      metadata: { [METADATA_KEYS.userId]: "bob", [METADATA_KEYS.tenantId]: TENANT_A },
    },
  );
  running.catch(() => undefined);
  return { runs, running, traceId };
}

const plain = async () =>
  (await readAll(new SegmentLedger(config.ledgerDir))).filter((r) => !isSealed(r.event)) as { position: number; streamId: string; event: AuditEvent }[];
const ledgerCount = async () => (await readAll(new SegmentLedger(config.ledgerDir))).length;

async function signedIn(who: keyof typeof accounts): Promise<Page> {
  // A context of its own per account: cookies (the session) are not shared between them.
  const page = await (await browser.newContext()).newPage();
  page.on("pageerror", (error) => console.error(`page error (${who}): ${error.message}`));
  await consoleApp.login(page, accounts[who].email, PASSWORD);
  return page;
}

/** The row of the held call of `traceId` once the live stream brought it (the page is never reloaded meanwhile). */
async function liveRow(page: Page, traceId: string) {
  const row = page.locator(`tbody.escalation:has(a.trace-link[href$="/${traceId}"])`);
  await row.waitFor({ timeout: 90_000 });
  return { row, escalationId: (await row.getAttribute("data-escalation-id"))! };
}

/** A request from the page itself (its cookies), as a script on another tab of the same browser could send it. */
const post = (page: Page, path: string, body: Record<string, string>, csrf?: string) =>
  page.evaluate(
    async ({ path, body, csrf }) => {
      const res = await fetch(path, {
        method: "POST",
        headers: { "content-type": "application/json", ...(csrf ? { "csrf-token": csrf } : {}) },
        body: JSON.stringify(body),
      });
      return { status: res.status, body: await res.text() };
    },
    { path, body, csrf },
  );
const csrfOf = (page: Page) => page.locator('meta[name="csrf-token"]').getAttribute("content") as Promise<string>;

beforeAll(async () => {
  config = await isolatedConfig();
  ({ graph, ledger, queue, worker } = await startPolicyPipeline(config, tag));
  transport = new QueueTransport({ connection: config.redis, queueName: config.queueName, spoolDir: config.spoolDir, lingerMs: 500 });
  decider = new RedisHoldDecider({ connection: config.redis });
  consoleApp = await startTestConsole({ config, ledger, graph });
  for (const [who, roles] of [
    ["reviewer", { [TENANT_A]: "reviewer" }],
    ["viewer", { [TENANT_A]: "viewer" }],
    ["reviewerB", { [TENANT_B]: "reviewer" }],
    ["reviewerC", { [TENANT_C]: "reviewer" }],
  ] as const) {
    const email = testEmail(who);
    accounts[who] = { email, ...(await consoleApp.createAccount({ email, name: `${who} ${tag}`, password: PASSWORD, roles })) };
  }
  listener = redisClient(config.redis);
  listener.on("message", (_channel: string, message: string) => {
    // The channel is shared (other tests, and this file's garbage on purpose): tenant A's notices only.
    const notice = (() => {
      try {
        return JSON.parse(message) as { tenantId: string; escalationId: string };
      } catch {
        return undefined;
      }
    })();
    if (notice?.tenantId === TENANT_A) notices.push(notice);
  });
  await listener.subscribe(ESCALATION_CHANGES_CHANNEL);
  browser = await launchBrowser();
  await mkdir(DOCS, { recursive: true });
}, 180_000);

afterAll(async () => {
  await browser?.close();
  listener?.disconnect();
  if (!consoleClosed) await consoleApp?.close();
  await decider?.close();
  await transport?.close();
  await worker?.close();
  await queue?.obliterate({ force: true }).catch(() => undefined);
  await queue?.close();
  await graph?.close();
});

describe("escalation inbox (browser)", { timeout: 180_000 }, () => {
  let approvedId: string;

  it("a held call appears live; a reviewer approves it with a reason; the tool runs once; decision and reads are in the ledger", async () => {
    const page = await signedIn("reviewer");
    await page.goto(`${consoleApp.url}/`);
    await page.locator("#inbox-list").waitFor();
    // Set on this document: still there afterwards means the row came without a reload.
    await page.evaluate(() => ((globalThis as unknown as { __sameDocument: boolean }).__sameDocument = true));

    const agent = startTransferAgent(handlerOptions(), transport, { tenantId: TENANT_A });
    const { row, escalationId } = await liveRow(page, agent.traceId);
    approvedId = escalationId;
    expect(await page.evaluate(() => (globalThis as unknown as { __sameDocument?: boolean }).__sameDocument)).toBe(true);
    // The worker announced it (ids only) once projected: that is what refreshed the page.
    await eventually(async () => (notices.some((n) => n.escalationId === escalationId) ? true : undefined), 10_000);
    expect(notices).toContainEqual({ tenantId: TENANT_A, escalationId });
    await expect.poll(() => row.locator("code.tool").textContent()).toBe("transfer_funds");
    expect(JSON.parse((await row.locator("pre.args").textContent())!)).toEqual({ amount: 250 });
    expect(await row.locator("ul.flags").textContent()).toContain("held");
    expect(await row.locator(".time-left").textContent()).toMatch(/^time left \d+m \d+s \(then deny\)$/);
    expect(await row.locator("td").first().textContent()).toBe("high");
    expect(await row.locator("a.trace-link").getAttribute("href")).toBe(`/traces/${TENANT_A}/${agent.traceId}`);
    await page.screenshot({ path: `${DOCS}inbox.png`, fullPage: true });
    expect(agent.runs.count).toBe(0);

    await row.locator('input[name="reason"]').fill("invoice 42 checked");
    await Promise.all([page.waitForURL(`${consoleApp.url}/`), row.locator("button.verb-approve").click()]);
    const result = await agent.running;
    expect(agent.runs.count).toBe(1);
    expect(result.messages.at(-1)?.text).toBe("done");
    // Decided: off the queue.
    await expect.poll(() => page.locator(`tbody[data-escalation-id="${escalationId}"]`).count()).toBe(0);

    const events = await plain();
    const transitions = events.filter(
      (r): r is typeof r & { event: EventOf<"escalation.transition"> } =>
        r.event.type === "escalation.transition" && (r.event as EventOf<"escalation.transition">).payload.escalationId === escalationId,
    );
    expect(transitions.map((t) => t.event.payload)).toEqual([
      {
        escalationId,
        from: "open",
        to: "resolved",
        reviewer: { id: accounts.reviewer.accountId, name: `reviewer ${tag}` },
        reason: "invoice 42 checked",
        holdDecision: "allow",
      },
    ]);
    const access = events.filter(
      (r): r is typeof r & { event: EventOf<"access"> } =>
        r.event.type === "access" && (r.event as EventOf<"access">).payload.subject.escalationId === escalationId,
    );
    const decide = access.filter((a) => a.event.payload.action === "escalation.decide");
    expect(decide.map((a) => [a.event.tenantId, a.event.payload.actor.id, a.event.payload.subject.traceId])).toEqual([
      [TENANT_A, accounts.reviewer.accountId, agent.traceId],
    ]);
    // Appended before the decision, in the same stream.
    expect(decide[0]!.streamId).toBe(transitions[0]!.streamId);
    expect(decide[0]!.position).toBeLessThan(transitions[0]!.position);
    // Showing the call's arguments in the inbox was a read, on record too.
    expect(access.some((a) => a.event.payload.action === "escalation.view" && a.event.payload.actor.id === accounts.reviewer.accountId)).toBe(true);
    // The transition was announced as well.
    await eventually(async () => (notices.filter((n) => n.escalationId === escalationId).length >= 2 ? true : undefined), 10_000);
    await page.context().close();
  }, 120_000);

  it("deny refuses another held call (the tool never runs); hostile recorded text renders as text in the inbox and the escalation page", async () => {
    const page = await signedIn("reviewer");
    await page.goto(`${consoleApp.url}/`);
    const agent = startMemoTransfer(`invoice 43 ${HOSTILE}`);
    const { row, escalationId } = await liveRow(page, agent.traceId);
    await expect.poll(() => row.locator("pre.args").textContent()).toContain(HOSTILE);
    expect(await page.locator("img[src='x']").count()).toBe(0);
    expect(await page.evaluate(() => (globalThis as unknown as { __xss?: number }).__xss)).toBeUndefined();

    const detail = await page.context().newPage();
    await detail.goto(`${consoleApp.url}/escalations/${TENANT_A}/${escalationId}`);
    await expect.poll(() => detail.locator("pre.args").textContent()).toContain(HOSTILE);
    expect(await detail.locator("img[src='x']").count()).toBe(0);
    expect(await detail.evaluate(() => (globalThis as unknown as { __xss?: number }).__xss)).toBeUndefined();
    expect(await detail.locator("dd.state").textContent()).toBe("open");
    await detail.screenshot({ path: `${DOCS}escalation.png`, fullPage: true });
    await detail.close();
    const views = (await plain()).filter(
      (r) =>
        r.event.type === "access" &&
        (r.event as EventOf<"access">).payload.action === "escalation.view" &&
        (r.event as EventOf<"access">).payload.subject.escalationId === escalationId,
    );
    expect(views.length).toBeGreaterThanOrEqual(2); // the inbox's and the escalation page's

    // Rendered by the page itself this time (above, by the live stream's swap): text there too.
    await page.reload();
    await expect.poll(() => row.locator("pre.args").textContent()).toContain(HOSTILE);
    expect(await page.locator("img[src='x']").count()).toBe(0);
    expect(await page.evaluate(() => (globalThis as unknown as { __xss?: number }).__xss)).toBeUndefined();

    await row.locator('input[name="reason"]').fill("unknown payee");
    await Promise.all([page.waitForURL(`${consoleApp.url}/`), row.locator("button.verb-deny").click()]);
    const refused = await agent.running;
    expect(agent.runs.count).toBe(0);
    expect(refused.messages.find((m) => ToolMessage.isInstance(m))?.text).toMatch(/the reviewer denied it/);
    const transition = (await plain()).find(
      (r) => r.event.type === "escalation.transition" && (r.event as EventOf<"escalation.transition">).payload.escalationId === escalationId,
    );
    expect((transition!.event as EventOf<"escalation.transition">).payload).toMatchObject({ to: "dismissed", holdDecision: "deny", reason: "unknown payee" });
    await page.context().close();
  }, 120_000);

  it("a viewer sees no decision buttons, and a forged decision gets 403 with nothing appended", async () => {
    const agent = startTransferAgent(handlerOptions(), transport, { tenantId: TENANT_A, amount: 75 });
    const page = await signedIn("viewer");
    await page.goto(`${consoleApp.url}/`);
    const { row, escalationId } = await liveRow(page, agent.traceId);
    await expect.poll(() => row.locator("pre.args").count()).toBe(1);
    expect(await page.locator("form.decide, button.verb-approve, button.verb-deny").count()).toBe(0);
    await page.goto(`${consoleApp.url}/escalations/${TENANT_A}/${escalationId}`);
    expect(await page.locator("form.decide").count()).toBe(0);
    await page.goto(`${consoleApp.url}/`);

    // The live stream is for signed-in viewers only.
    expect((await fetch(`${consoleApp.url}/inbox/events`)).status).toBe(401);

    await transport.flush();
    await waitUntilIdle(queue);
    const before = await ledgerCount();
    const noToken = await post(page, `/escalations/${TENANT_A}/${escalationId}/approve`, { reason: "forged" });
    expect(noToken.status).toBe(403);
    const withToken = await post(page, `/escalations/${TENANT_A}/${escalationId}/approve`, { reason: "forged" }, await csrfOf(page));
    expect(withToken.status).toBe(403);
    expect(JSON.parse(withToken.body)).toMatchObject({ code: "AUDITGRAPH_E_CONSOLE_FORBIDDEN" });
    expect(await ledgerCount()).toBe(before);
    expect(agent.runs.count).toBe(0);
    await page.context().close();

    // Tenant B's reviewer: A's escalation does not exist for them, whichever tenant the URL names.
    const other = await signedIn("reviewerB");
    await other.goto(`${consoleApp.url}/`);
    const token = await csrfOf(other);
    for (const path of [`/escalations/${TENANT_A}/${escalationId}`, `/escalations/${TENANT_B}/${escalationId}`, `/escalations/${TENANT_B}/${approvedId}`]) {
      const res = await other.goto(consoleApp.url + path);
      expect(res?.status(), path).toBe(404);
      expect(await other.locator("pre.args").count()).toBe(0);
      expect((await post(other, `${path}/deny`, { reason: "not mine" }, token)).status, `POST ${path}/deny`).toBe(404);
    }
    expect(await other.locator("tbody.escalation").count()).toBe(0);
    await other.goto(`${consoleApp.url}/`);
    expect(await other.locator("tbody.escalation").count()).toBe(0);
    expect(await ledgerCount()).toBe(before);
    await other.context().close();

    // Released, so the agent does not wait out its hold: a reviewer dismisses it through the API.
    const reviewer = await signedIn("reviewer");
    await reviewer.goto(`${consoleApp.url}/`);
    // Showing the held call's arguments to the reviewer (after sign-in, and now) were reads, appended.
    const shownToReviewer = await ledgerCount();
    expect(shownToReviewer).toBe(before + 2);
    // A reviewer's session without the CSRF token (a forged cross-site post): refused, nothing appended.
    const forged = await post(reviewer, `/escalations/${TENANT_A}/${escalationId}/deny`, { reason: "forged" });
    expect(forged.status).toBe(403);
    expect(JSON.parse(forged.body)).toMatchObject({ code: "AUDITGRAPH_E_CONSOLE_FORBIDDEN", message: expect.stringMatching(/CSRF/) });
    expect(await ledgerCount()).toBe(shownToReviewer);
    const done = await post(reviewer, `/escalations/${TENANT_A}/${escalationId}/deny`, { reason: "cleanup" }, await csrfOf(reviewer));
    expect(done.status, done.body).toBe(200);
    expect(JSON.parse(done.body)).toMatchObject({ state: "dismissed", hold: { decision: "deny", status: "decided" } });
    await agent.running;
    expect(agent.runs.count).toBe(0);
    await reviewer.context().close();
  }, 120_000);

  it("filters (tenant, severity, state, policy, agent), most severe then oldest first; ack, resolve and reopen each need a reason", async () => {
    // Two traces of tenant C by two agents, through the worker; three escalations on them, opened in this order.
    const first = sampleTrace(TENANT_C);
    const second = sampleTrace(TENANT_C).map((e) => ({
      ...e,
      identity: { ...e.identity, agent: { id: "agent-other", name: "Other agent", version: "2.0.0" } },
    })) as UserEvent[];
    await queue.add(BATCH_JOB_NAME, { events: [...first, ...second] });
    await waitUntilIdle(queue);
    const opened: Record<string, string> = {};
    for (const [policyId, severity, trace] of [
      ["p-low", "low", first],
      ["p-crit", "critical", second],
      ["p-med", "medium", first],
      ["p-low2", "low", second],
    ] as const) {
      const traceId = trace[0]!.traceId;
      const event = {
        eventId: newEventId(),
        schemaVersion: SCHEMA_VERSION,
        type: "escalation.opened",
        occurredAt: new Date().toISOString(),
        traceId,
        runId: traceId,
        parentRunId: null,
        sessionId: null,
        tenantId: TENANT_C,
        payload: {
          escalationId: "",
          severity,
          policyId,
          policyVersion: "1",
          policySetHash: "0".repeat(64),
          flagEventIds: [newEventId()],
          concerns: { runId: traceId, kind: "output", traceId },
          reason: `${policyId} needs a look`,
        },
      } as unknown as EventOf<"escalation.opened">;
      event.payload.escalationId = event.eventId;
      const { records } = await ledger.append(streamIdFor(TENANT_C), [event]);
      await graph.project([{ ...records[0]!, event }]);
      opened[policyId] = event.eventId;
    }
    const page = await signedIn("reviewerC");
    await page.goto(`${consoleApp.url}/`);
    const shown = () => page.locator("tbody.escalation").evaluateAll((rows) => rows.map((r) => r.querySelector("code")!.textContent));
    expect(await shown()).toEqual(["p-crit", "p-med", "p-low", "p-low2"]);
    expect(await page.locator("tbody.escalation").first().locator("td").nth(3).textContent()).toContain("agent-other@2.0.0");

    // The htmx filter form: a change swaps the list (and its stream) in place and puts the filters in the URL.
    await page.selectOption('select[name="severity"]', "low");
    await expect.poll(shown).toEqual(["p-low", "p-low2"]);
    expect(new URL(page.url()).searchParams.get("severity")).toBe("low");
    expect(await page.locator("#inbox-live").getAttribute("sse-connect")).toMatch(/^\/inbox\/events\?severity=low&since=/);
    await page.selectOption('select[name="severity"]', "");
    await page.fill('input[name="policy"]', "p-med");
    await page.click('form.filters button[type="submit"]');
    await expect.poll(shown).toEqual(["p-med"]);
    await page.goto(`${consoleApp.url}/?agent=agent-other`);
    expect(await shown()).toEqual(["p-crit", "p-low2"]);
    await page.goto(`${consoleApp.url}/?tenant=${TENANT_C}&agent=agent-t`);
    expect(await shown()).toEqual(["p-med", "p-low"]);
    // A tenant the viewer has no role in does not exist; an unknown filter is refused, named.
    expect((await page.goto(`${consoleApp.url}/?tenant=${TENANT_A}`))?.status()).toBe(404);
    expect((await page.goto(`${consoleApp.url}/?colour=red`))?.status()).toBe(400);

    // No reason, no move (400, nothing appended); an unknown id is 404.
    await page.goto(`${consoleApp.url}/`);
    const token = await csrfOf(page);
    const before = await ledgerCount();
    expect((await post(page, `/escalations/${TENANT_C}/${opened["p-low"]}/ack`, { reason: "  " }, token)).status).toBe(400);
    expect((await post(page, `/escalations/${TENANT_C}/${newEventId()}/ack`, { reason: "x" }, token)).status).toBe(404);
    // Approve is for held calls only.
    expect((await post(page, `/escalations/${TENANT_C}/${opened["p-low"]}/approve`, { reason: "x" }, token)).status).toBe(400);
    expect(await ledgerCount()).toBe(before);

    const low = page.locator(`tbody[data-escalation-id="${opened["p-low"]}"]`);
    expect(await low.locator("button").allTextContents()).toEqual(["Resolve", "Dismiss", "Acknowledge"]);
    await low.locator('input[name="reason"]').fill("looking into it");
    await Promise.all([page.waitForURL(`${consoleApp.url}/`), low.locator("button.verb-ack").click()]);
    await expect.poll(() => low.locator("td.state").textContent()).toBe("acknowledged");
    await low.locator('input[name="reason"]').fill("false positive");
    await Promise.all([page.waitForURL(`${consoleApp.url}/`), low.locator("button.verb-resolve").click()]);
    await expect.poll(() => low.count()).toBe(0);
    await page.goto(`${consoleApp.url}/?state=resolved`);
    expect(await low.locator("button").allTextContents()).toEqual(["Reopen"]);
    await low.locator('input[name="reason"]').fill("it came back");
    await Promise.all([page.waitForURL(`${consoleApp.url}/?state=resolved`), low.locator("button.verb-reopen").click()]);
    await expect.poll(() => low.count()).toBe(0);
    await page.goto(`${consoleApp.url}/`);
    expect(await shown()).toEqual(["p-crit", "p-med", "p-low", "p-low2"]);

    // A script with an API token decides through the same route (no CSRF: no cookie to ride on).
    const apiToken = await consoleApp.createToken(accounts.reviewerC.accountId);
    const scripted = await fetch(`${consoleApp.url}/escalations/${TENANT_C}/${opened["p-med"]}/ack`, {
      method: "POST",
      headers: { authorization: `Bearer ${apiToken}`, "content-type": "application/json" },
      body: JSON.stringify({ reason: "via script" }),
    });
    expect(scripted.status).toBe(200);
    expect(await scripted.json()).toMatchObject({ escalationId: opened["p-med"], state: "acknowledged", projected: true });

    const moves = (await plain())
      .filter((r) => r.event.type === "escalation.transition" && r.event.tenantId === TENANT_C)
      .map((r) => (r.event as EventOf<"escalation.transition">).payload);
    expect(moves.map((m) => [m.escalationId, m.from, m.to, m.reason, m.reviewer.id])).toEqual([
      [opened["p-low"], "open", "acknowledged", "looking into it", accounts.reviewerC.accountId],
      [opened["p-low"], "acknowledged", "resolved", "false positive", accounts.reviewerC.accountId],
      [opened["p-low"], "resolved", "open", "it came back", accounts.reviewerC.accountId],
      [opened["p-med"], "open", "acknowledged", "via script", accounts.reviewerC.accountId],
    ]);
    const decided = (await plain()).filter(
      (r) => r.event.type === "access" && r.event.tenantId === TENANT_C && (r.event as EventOf<"access">).payload.action === "escalation.decide",
    );
    expect(decided.map((d) => (d.event as EventOf<"access">).payload.actor.via)).toEqual(["password", "password", "password", "token"]);
    await page.context().close();
  }, 120_000);

  it("closing the console ends its open live streams (and its subscription) instead of waiting on them", async () => {
    const page = await signedIn("reviewer");
    const cookie = (await page.context().cookies()).map((c) => `${c.name}=${c.value}`).join("; ");
    const stream = await fetch(`${consoleApp.url}/inbox/events`, { headers: { cookie, accept: "text/event-stream" } });
    expect(stream.status).toBe(200);
    expect(stream.headers.get("content-type")).toMatch(/^text\/event-stream/);
    const reader = stream.body!.getReader();
    await reader.read(); // the stream is open (its first bytes came)
    await page.context().close();
    consoleClosed = true;
    await consoleApp.close();
    // Ended by the server: the body runs out.
    for (;;) if ((await reader.read()).done) break;
  }, 60_000);
});
