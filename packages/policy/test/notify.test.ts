import { createHmac, timingSafeEqual } from "node:crypto";
import { createServer, type IncomingMessage, type Server } from "node:http";
import { afterEach, describe, expect, it, vi } from "vitest";
import { ValidationError } from "@auditgraph/core";
import {
  EscalationNotifier,
  NotificationAttemptSchema,
  verifyWebhookSignature,
  type EscalationNotification,
  type EscalationNotificationInput,
  type NotificationAttempt,
} from "../src/index.js";

const SECRET = "whsec-test-0123456789abcdef";

const notification: EscalationNotificationInput = {
  escalationId: "esc-0001",
  tenantId: "acme",
  severity: "critical",
  policyId: "review-transfers",
  policyVersion: "1",
  concerns: { eventId: "0190c6d2-7f3a-7b1e-9c4d-2f1e0a9b8c7d", runId: "run-1", kind: "tool_call" },
  reason: "a human approves every transfer",
  openedAt: "2025-01-01T12:00:00.000Z",
  lineage: { traceId: "trace-1", runId: "run-1", eventId: "0190c6d2-7f3a-7b1e-9c4d-2f1e0a9b8c7d" },
};

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

interface Received {
  raw: string;
  headers: IncomingMessage["headers"];
  answered: number;
}

/** A receiver on `port`, started on demand, that answers 503 to the first `failures` requests. */
function receiver(port: number, failures: number) {
  const received: Received[] = [];
  let server: Server | undefined;
  return {
    received,
    start: () =>
      new Promise<void>((resolve) => {
        server = createServer((req, res) => {
          const chunks: Buffer[] = [];
          req.on("data", (c: Buffer) => chunks.push(c));
          req.on("end", () => {
            const answered = received.length < failures ? 503 : 204;
            received.push({ raw: Buffer.concat(chunks).toString("utf8"), headers: req.headers, answered });
            res.writeHead(answered).end();
          });
        });
        server.listen(port, "127.0.0.1", resolve);
      }),
    stop: () => new Promise((resolve) => (server ? server.close(resolve) : resolve(undefined))),
  };
}

/** The receiver's check, exactly as docs/policies.md tells it, written without the library's helper. */
function verifyAsDocumented(secret: string, raw: string, headers: IncomingMessage["headers"], now = Date.now()): boolean {
  const timestamp = String(headers["x-auditgraph-timestamp"]);
  const signature = String(headers["x-auditgraph-signature"]);
  if (Math.abs(now - Number(timestamp)) > 5 * 60_000) return false;
  const expected = `sha256=${createHmac("sha256", secret).update(`${timestamp}.${raw}`).digest("hex")}`;
  return signature.length === expected.length && timingSafeEqual(Buffer.from(signature), Buffer.from(expected));
}

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!().catch(() => undefined);
});

describe("EscalationNotifier", () => {
  it("webhook down, then failing, then up: arrives once, signed, and every attempt is reported in order", async () => {
    const port = await freePort();
    const site = receiver(port, 1);
    cleanups.push(site.stop);
    const attempts: NotificationAttempt[] = [];
    const called: EscalationNotification[] = [];
    const logged: string[] = [];
    const logger = { warn: (...a: unknown[]) => logged.push(JSON.stringify(a)), debug: (...a: unknown[]) => logged.push(JSON.stringify(a)) };
    const notifier = new EscalationNotifier({
      webhook: { url: `http://127.0.0.1:${port}/hooks/auditgraph?token=${SECRET}`, secret: SECRET, attempts: 5, baseDelayMs: 20, maxDelayMs: 100 },
      callback: (n) => void called.push(n),
      onAttempt: async (attempt) => {
        attempts.push(attempt);
        // The receiver comes up once the first attempt has been refused.
        if (attempt.channel === "webhook" && attempt.attempt === 1) await site.start();
      },
      logger: logger as never,
    });
    cleanups.push(() => notifier.close(0));

    expect(notifier.notify(notification)).toBe(true);
    // Never on the caller's path: notify has returned (a boolean, not a promise) before the
    // first attempt, refused by the receiver that is down, has even been recorded.
    expect(attempts).toEqual([]);
    await notifier.flush();

    const webhook = attempts.filter((a) => a.channel === "webhook");
    expect(webhook.map((a) => [a.attempt, a.status, a.httpStatus, a.error])).toEqual([
      [1, "failed", undefined, "connection refused (ECONNREFUSED)"],
      [2, "failed", 503, "HTTP 503"],
      [3, "ok", 204, undefined],
    ]);
    for (const a of attempts) NotificationAttemptSchema.parse(a);
    // A failed attempt says when the next one comes; the last one does not.
    expect(webhook.slice(0, 2).every((a) => a.nextRetryAt && Date.parse(a.nextRetryAt) >= Date.parse(a.at))).toBe(true);
    expect(webhook[2]!.nextRetryAt).toBeUndefined();
    expect(new Set(webhook.map((a) => a.deliveryId)).size).toBe(1);
    expect(attempts.filter((a) => a.channel === "callback").map((a) => [a.attempt, a.status])).toEqual([[1, "ok"]]);
    expect(called).toEqual([{ kind: "escalation.opened", ...notification }]);

    // Arrived once (the 503 is a try the receiver refused), and the signature holds.
    const accepted = site.received.filter((r) => r.answered < 300);
    expect(accepted).toHaveLength(1);
    const [{ raw, headers }] = accepted as [Received];
    expect(JSON.parse(raw)).toEqual({ kind: "escalation.opened", ...notification });
    expect(headers["x-auditgraph-delivery"]).toBe(webhook[0]!.deliveryId);
    expect(verifyAsDocumented(SECRET, raw, headers)).toBe(true);
    const check = { secret: SECRET, signature: headers["x-auditgraph-signature"] as string, timestamp: headers["x-auditgraph-timestamp"] as string };
    expect(verifyWebhookSignature({ ...check, body: raw })).toBe(true);
    // A changed body, another key, or a replay long after are refused.
    expect(verifyWebhookSignature({ ...check, body: raw.replace("critical", "low") })).toBe(false);
    expect(verifyWebhookSignature({ ...check, secret: "another-secret-0123456789", body: raw })).toBe(false);
    expect(verifyWebhookSignature({ ...check, body: raw, now: Date.now() + 10 * 60_000 })).toBe(false);
    expect(verifyAsDocumented(SECRET, raw, headers, Date.now() + 10 * 60_000)).toBe(false);

    // The secret (here in the URL too) reaches no report and no log line.
    expect(JSON.stringify(attempts)).not.toContain(SECRET);
    expect(logged.join("\n")).not.toContain(SECRET);
    expect(logged.join("\n")).not.toContain("/hooks/auditgraph");
    expect(notifier.metrics).toMatchObject({ accepted: 1, delivered: 2, failed: 0, attempts: 4 });
  });

  it("gives up after the configured attempts, and does not retry what cannot pass (4xx)", async () => {
    const port = await freePort();
    const attempts: NotificationAttempt[] = [];
    const down = new EscalationNotifier({
      webhook: { url: `http://127.0.0.1:${port}/`, secret: SECRET, attempts: 3, baseDelayMs: 10, maxDelayMs: 10 },
      onAttempt: (a) => void attempts.push(a),
    });
    down.notify(notification);
    await down.flush();
    expect(attempts.map((a) => [a.attempt, a.status, a.nextRetryAt === undefined])).toEqual([
      [1, "failed", false],
      [2, "failed", false],
      [3, "failed", true],
    ]);
    expect(down.metrics).toMatchObject({ failed: 1, delivered: 0 });

    const server = createServer((_req, res) => res.writeHead(401).end("bad signature"));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    cleanups.push(() => new Promise((resolve) => server.close(resolve)));
    const refused: NotificationAttempt[] = [];
    const notifier = new EscalationNotifier({
      webhook: { url: `http://127.0.0.1:${(server.address() as { port: number }).port}/`, secret: SECRET, attempts: 5, baseDelayMs: 10 },
      onAttempt: (a) => void refused.push(a),
    });
    notifier.notify(notification);
    await notifier.flush();
    expect(refused.map((a) => [a.attempt, a.httpStatus, a.nextRetryAt])).toEqual([[1, 401, undefined]]);
    await notifier.close();
  });

  it("is bounded, and close() cuts waiting retries short with a last reported attempt", async () => {
    const port = await freePort();
    const attempts: NotificationAttempt[] = [];
    const notifier = new EscalationNotifier({
      webhook: { url: `http://127.0.0.1:${port}/`, secret: SECRET, attempts: 10, baseDelayMs: 60_000, maxDelayMs: 60_000 },
      onAttempt: (a) => void attempts.push(a),
      maxQueued: 2,
    });
    expect(notifier.notify(notification)).toBe(true);
    expect(notifier.notify({ ...notification, escalationId: "esc-0002" })).toBe(true);
    expect(notifier.notify({ ...notification, escalationId: "esc-0003" })).toBe(false);
    expect(notifier.metrics.dropped).toBe(1);
    const started = Date.now();
    // Both first attempts failed (nothing listens) and wait a minute for their retry.
    await vi.waitFor(() => expect(attempts.filter((a) => a.nextRetryAt !== undefined)).toHaveLength(2));
    await notifier.close(50);
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(notifier.pending).toBe(0);
    const last = attempts.filter((a) => a.nextRetryAt === undefined);
    expect(last.map((a) => [a.escalationId, a.error]).sort()).toEqual([
      ["esc-0001", "notifier closed before the attempt"],
      ["esc-0002", "notifier closed before the attempt"],
    ]);
    expect(notifier.notify(notification)).toBe(false);
  });

  it("refuses a malformed notification or config naming the field, and never the secret", () => {
    const notifier = new EscalationNotifier({ callback: () => undefined });
    expect(() => notifier.notify({ ...notification, severity: "urgent" as never })).toThrow(/severity/);
    // Strict: a field nobody declared (an email, a prompt) is refused rather than sent out.
    expect(() => notifier.notify({ ...notification, userEmail: "a@b.c" } as never)).toThrow(ValidationError);
    expect(() => new EscalationNotifier({})).toThrow(/webhook: needs a webhook, a callback or both/);
    // A held call's fields: an ISO deadline and allow/deny only, and never without the hold they belong to.
    expect(() => notifier.notify({ ...notification, holdId: "run-1:review-transfers", deadline: "in five minutes" })).toThrow(/deadline/);
    expect(() => notifier.notify({ ...notification, holdId: "run-1:review-transfers", defaultDecision: "maybe" as never })).toThrow(/defaultDecision/);
    expect(() => notifier.notify({ ...notification, deadline: "2025-01-01T12:05:00.000Z", defaultDecision: "deny" })).toThrow(
      /holdId: a deadline or default decision needs the holdId/,
    );
    const short = "tiny-secret";
    try {
      new EscalationNotifier({ webhook: { url: "http://127.0.0.1:1/", secret: short } });
      expect.unreachable();
    } catch (error) {
      expect((error as Error).message).toMatch(/webhook\.secret: must be at least 16 characters/);
      expect((error as Error).message).not.toContain(short);
    }
  });

  it("a held call's notification says which hold waits, until when and what happens then, and nothing of the user's", async () => {
    const got: EscalationNotification[] = [];
    const notifier = new EscalationNotifier({ callback: (n) => void got.push(n) });
    const held = { ...notification, holdId: "run-1:review-transfers", deadline: "2025-01-01T12:05:00.000Z", defaultDecision: "deny" as const };
    expect(notifier.notify(held)).toBe(true);
    // A user's name, prompt or tool arguments have no field to travel in: refused, not passed on.
    for (const extra of [{ userId: "alice" }, { prompt: "pay invoice 42" }, { arguments: { amount: 250 } }, { answer: "done" }])
      expect(() => notifier.notify({ ...held, ...extra } as never)).toThrow(ValidationError);
    await notifier.flush();
    expect(got).toEqual([{ kind: "escalation.opened", ...held }]);
  });
});
