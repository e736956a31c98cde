import { createHmac, randomUUID, timingSafeEqual } from "node:crypto";
import { z } from "zod";
import { ConcernKindSchema, SeveritySchema, backoffMs, parseWith } from "@auditgraph/core";
import type { Logger } from "pino";

const id = z.string().min(1).max(256);

/**
 * What an escalation notification says. Ids, categories and the policy's own reason only: a
 * receiver (a pager, a chat hook) sits outside the audit boundary, so no user name, prompt or
 * tool argument is ever part of it; whoever needs the evidence follows the lineage hint into the
 * graph, where access is controlled. Strict: an unknown field is refused rather than passed on.
 */
export const EscalationNotificationSchema = z
  .object({
    kind: z.literal("escalation.opened").default("escalation.opened"),
    escalationId: id,
    tenantId: id,
    severity: SeveritySchema,
    policyId: id,
    policyVersion: id,
    policySetHash: z
      .string()
      .regex(/^[0-9a-f]{64}$/)
      .optional(),
    concerns: z.object({ eventId: z.uuidv7().optional(), runId: id, traceId: id.optional(), kind: ConcernKindSchema }).strict(),
    /** Built by the policy from its settings and counts, never from event content (see findings). */
    reason: z.string().min(1).max(2_000),
    openedAt: z.iso.datetime({ offset: true }),
    /** Where to start the investigation: `auditgraph trace <traceId>` / the lineage view of the run. */
    lineage: z.object({ traceId: id, runId: id, eventId: z.uuidv7().optional() }).strict(),
    /** A link into the operator's console, if one is configured. */
    link: z.url({ protocol: /^https?$/ }).optional(),
    /**
     * A held call waits for this escalation: its hold (`escalations resolve` allows it, `dismiss`
     * denies it), when the agent stops waiting, and what it does then if no one decided.
     */
    holdId: id.optional(),
    deadline: z.iso.datetime({ offset: true }).optional(),
    defaultDecision: z.enum(["allow", "deny"]).optional(),
  })
  .strict()
  .refine((n) => (n.deadline === undefined && n.defaultDecision === undefined) || n.holdId !== undefined, {
    message: "a deadline or default decision needs the holdId it belongs to",
    path: ["holdId"],
  });
export type EscalationNotification = z.output<typeof EscalationNotificationSchema>;
export type EscalationNotificationInput = z.input<typeof EscalationNotificationSchema>;

export const NOTIFICATION_CHANNELS = ["webhook", "callback"] as const;
export type NotificationChannel = (typeof NOTIFICATION_CHANNELS)[number];

/** One delivery attempt on one channel, as the worker records it (an event per attempt). */
export const NotificationAttemptSchema = z.object({
  escalationId: id,
  /** Stays the same across the retries of one notification on one channel: receivers dedupe on it. */
  deliveryId: z.uuid(),
  channel: z.enum(NOTIFICATION_CHANNELS),
  /** 1 for the first try. */
  attempt: z.number().int().positive(),
  status: z.enum(["ok", "failed"]),
  /** The webhook's answer, when one came. */
  httpStatus: z.number().int().optional(),
  /** Why it failed: a category and the code, never the URL, the secret or a response body. */
  error: z.string().max(300).optional(),
  at: z.iso.datetime(),
  /** When the next attempt will be made; absent when this was the last (success, or given up). */
  nextRetryAt: z.iso.datetime().optional(),
});
export type NotificationAttempt = z.output<typeof NotificationAttemptSchema>;

export const SIGNATURE_HEADER = "x-auditgraph-signature";
export const TIMESTAMP_HEADER = "x-auditgraph-timestamp";
export const DELIVERY_HEADER = "x-auditgraph-delivery";

export const WebhookOptionsSchema = z.strictObject({
  url: z.url({ protocol: /^https?$/ }),
  /** The HMAC key shared with the receiver. Long enough to not be guessed; never logged. */
  secret: z.string().min(16, "must be at least 16 characters"),
  /** Tries per notification, the first included. */
  attempts: z.number().int().positive().default(8),
  /** The first retry waits about this long; each next one twice as long, up to `maxDelayMs`. */
  baseDelayMs: z.number().int().positive().default(250),
  maxDelayMs: z.number().int().positive().default(30_000),
  /** One attempt slower than this has failed. */
  timeoutMs: z.number().int().positive().default(5_000),
});

export const EscalationNotifierOptionsSchema = z
  .strictObject({
    webhook: WebhookOptionsSchema.optional(),
    /** Called in process with each notification; a throw counts as a failed attempt (not retried). */
    callback: z.custom<(notification: EscalationNotification) => unknown>((v) => typeof v === "function", "must be a function").optional(),
    /**
     * Every attempt, in order per notification and channel; awaited before the next attempt, so
     * the worker can append it as an event first. Its own failures are counted, never retried.
     */
    onAttempt: z.custom<(attempt: NotificationAttempt) => unknown>((v) => typeof v === "function", "must be a function").optional(),
    /** Notifications waiting or being delivered at most; past it `notify` refuses (returns false). */
    maxQueued: z.number().int().positive().default(1_000),
    /** Notifications delivered at the same time. */
    concurrency: z.number().int().positive().default(4),
    logger: z.custom<Logger>((v) => typeof v === "object" && v !== null && "warn" in v).optional(),
  })
  .refine((o) => o.webhook !== undefined || o.callback !== undefined, { message: "needs a webhook, a callback or both", path: ["webhook"] })
  .refine((o) => !o.webhook || o.webhook.baseDelayMs <= o.webhook.maxDelayMs, {
    message: "must not exceed webhook.maxDelayMs",
    path: ["webhook", "baseDelayMs"],
  });
export type EscalationNotifierOptions = z.input<typeof EscalationNotifierOptionsSchema>;

export interface NotifierMetrics {
  accepted: number;
  /** Refused because `maxQueued` were waiting already. */
  dropped: number;
  /** Channel deliveries that succeeded. */
  delivered: number;
  /** Channel deliveries that gave up (attempts spent, a permanent error, or closed). */
  failed: number;
  attempts: number;
  /** onAttempt hooks that threw. */
  hookErrors: number;
}

/** The string that is signed: the timestamp ties the signature to one moment, so a captured request cannot be replayed later. */
const signedString = (timestamp: string, body: string): string => `${timestamp}.${body}`;

/** `sha256=<hex>`: HMAC-SHA256 over `<timestamp>.<raw body>`. */
export function signWebhook(secret: string, timestamp: string, body: string): string {
  return `sha256=${createHmac("sha256", secret).update(signedString(timestamp, body)).digest("hex")}`;
}

export interface VerifyWebhookInput {
  secret: string;
  /** The raw request body, byte for byte as received (not re-serialised JSON). */
  body: string | Buffer;
  signature: string | undefined;
  timestamp: string | undefined;
  /** How old (or how far ahead) a timestamp may be. Default 5 minutes. */
  toleranceMs?: number;
  now?: number;
}

/** The receiver's check (see docs/policies.md): signature over timestamp and body, in constant time, and a fresh timestamp. */
export function verifyWebhookSignature({ secret, body, signature, timestamp, toleranceMs = 300_000, now = Date.now() }: VerifyWebhookInput): boolean {
  if (!signature || !timestamp || !/^\d{1,16}$/.test(timestamp)) return false;
  if (Math.abs(now - Number(timestamp)) > toleranceMs) return false;
  const expected = Buffer.from(signWebhook(secret, timestamp, Buffer.isBuffer(body) ? body.toString("utf8") : body));
  const given = Buffer.from(signature);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/** 408, 425, 429 and 5xx may pass; any other 4xx will not, however often it is tried. */
const retryable = (status: number): boolean => status === 408 || status === 425 || status === 429 || status >= 500;

/** A failure as a category and code: fetch's errors can carry the URL (and so a token in it). */
function describeFailure(error: unknown, timeoutMs: number): string {
  const cause = (error as { cause?: { code?: unknown } })?.cause;
  const code = typeof cause?.code === "string" ? cause.code : undefined;
  if ((error as Error)?.name === "TimeoutError") return `timed out after ${timeoutMs} ms`;
  if (code === "ECONNREFUSED") return "connection refused (ECONNREFUSED)";
  if (code) return `network error (${code})`;
  return `request failed (${(error as Error)?.name ?? "Error"})`;
}

interface Job {
  notification: EscalationNotification;
  body: string;
}

/**
 * Sends escalation notifications to a signed webhook and to a callback, in the background.
 * `notify` validates and enqueues, and returns at once: the worker's path never waits on a
 * receiver. The webhook is retried with exponential backoff and jitter; every attempt, failed or
 * not, goes to `onAttempt` in order, so each can be recorded as an event.
 */
export class EscalationNotifier {
  readonly metrics: NotifierMetrics = { accepted: 0, dropped: 0, delivered: 0, failed: 0, attempts: 0, hookErrors: 0 };
  private readonly options: z.output<typeof EscalationNotifierOptionsSchema>;
  private readonly waiting: Job[] = [];
  private running = 0;
  private idle: Array<() => void> = [];
  private closed = false;
  /** Aborted by close() once its grace is over: cuts the retries' sleeps and requests short. */
  private readonly stop = new AbortController();

  constructor(options: EscalationNotifierOptions) {
    this.options = parseWith(EscalationNotifierOptionsSchema, options, "EscalationNotifier options");
  }

  /** Notifications accepted and not yet finished on every channel. */
  get pending(): number {
    return this.waiting.length + this.running;
  }

  /**
   * Queues one notification. Throws a ValidationError naming the field on a malformed one (a
   * caller's bug); returns false when the queue is full or the notifier closed (counted).
   */
  notify(input: EscalationNotificationInput): boolean {
    const notification = parseWith(EscalationNotificationSchema, input, "escalation notification");
    if (this.closed || this.pending >= this.options.maxQueued) {
      this.metrics.dropped += 1;
      this.options.logger?.warn(
        { escalationId: notification.escalationId, pending: this.pending, closed: this.closed },
        "escalation notification refused: notifier full or closed",
      );
      return false;
    }
    this.metrics.accepted += 1;
    this.waiting.push({ notification, body: JSON.stringify(notification) });
    this.pump();
    return true;
  }

  private pump(): void {
    while (this.running < this.options.concurrency && this.waiting.length > 0) {
      const job = this.waiting.shift()!;
      this.running += 1;
      void this.deliver(job).finally(() => {
        this.running -= 1;
        if (this.pending === 0) for (const resolve of this.idle.splice(0)) resolve();
        else this.pump();
      });
    }
  }

  private async deliver(job: Job): Promise<void> {
    // Off the caller's turn of the event loop: the callback and the request start later.
    await new Promise((resolve) => setImmediate(resolve));
    // The channels are independent: a receiver that is down does not delay the callback.
    await Promise.all([
      this.options.callback ? this.deliverCallback(job) : undefined,
      this.options.webhook ? this.deliverWebhook(job, this.options.webhook) : undefined,
    ]);
  }

  private async report(attempt: NotificationAttempt): Promise<void> {
    this.metrics.attempts += 1;
    if (attempt.status === "ok") this.metrics.delivered += 1;
    else if (attempt.nextRetryAt === undefined) this.metrics.failed += 1;
    this.options.logger?.[attempt.status === "ok" ? "debug" : "warn"](
      { escalationId: attempt.escalationId, channel: attempt.channel, attempt: attempt.attempt, httpStatus: attempt.httpStatus, error: attempt.error },
      `escalation notification ${attempt.status}`,
    );
    try {
      await this.options.onAttempt?.(attempt);
    } catch {
      this.metrics.hookErrors += 1;
    }
  }

  private async deliverCallback({ notification }: Job): Promise<void> {
    const deliveryId = randomUUID();
    const base = { escalationId: notification.escalationId, deliveryId, channel: "callback" as const, attempt: 1 };
    try {
      await this.options.callback!(notification);
      await this.report({ ...base, status: "ok", at: new Date().toISOString() });
    } catch (error) {
      // The callback's name only: its message is the embedder's text, which may quote anything.
      await this.report({ ...base, status: "failed", error: `callback threw (${(error as Error)?.name ?? "Error"})`, at: new Date().toISOString() });
    }
  }

  private async deliverWebhook({ notification, body }: Job, webhook: z.output<typeof WebhookOptionsSchema>): Promise<void> {
    const deliveryId = randomUUID();
    for (let attempt = 1; ; attempt++) {
      let httpStatus: number | undefined;
      let error: string | undefined;
      let permanent = false;
      if (this.stop.signal.aborted) {
        error = "notifier closed before the attempt";
        permanent = true;
      } else {
        // Signed per attempt: a fresh timestamp keeps a late retry inside the receiver's window.
        const timestamp = String(Date.now());
        try {
          const response = await fetch(webhook.url, {
            method: "POST",
            headers: {
              "content-type": "application/json",
              [TIMESTAMP_HEADER]: timestamp,
              [SIGNATURE_HEADER]: signWebhook(webhook.secret, timestamp, body),
              [DELIVERY_HEADER]: deliveryId,
            },
            body,
            signal: AbortSignal.any([AbortSignal.timeout(webhook.timeoutMs), this.stop.signal]),
            redirect: "error",
          });
          httpStatus = response.status;
          // Drained so the connection can be reused; the body itself is never looked at.
          await response.arrayBuffer().catch(() => undefined);
          if (!response.ok) {
            error = `HTTP ${response.status}`;
            permanent = !retryable(response.status);
          }
        } catch (failure) {
          error = this.stop.signal.aborted ? "notifier closed during the attempt" : describeFailure(failure, webhook.timeoutMs);
          permanent = this.stop.signal.aborted;
        }
      }
      const at = Date.now();
      const base = { escalationId: notification.escalationId, deliveryId, channel: "webhook" as const, attempt, at: new Date(at).toISOString() };
      if (error === undefined) {
        await this.report({ ...base, status: "ok", ...(httpStatus !== undefined ? { httpStatus } : {}) });
        return;
      }
      const delay = permanent || attempt >= webhook.attempts ? undefined : this.backoff(attempt, webhook);
      await this.report({
        ...base,
        status: "failed",
        ...(httpStatus !== undefined ? { httpStatus } : {}),
        error,
        ...(delay !== undefined ? { nextRetryAt: new Date(at + delay).toISOString() } : {}),
      });
      if (delay === undefined) return;
      await this.sleep(delay);
    }
  }

  /**
   * The core's step (exponential, capped), with "equal jitter": between half and all of the step,
   * so receivers coming back are not hit by every sender at once, yet no retry comes at once
   * (the core's "full" jitter may wait nothing).
   */
  private backoff(attempt: number, webhook: z.output<typeof WebhookOptionsSchema>): number {
    const step = backoffMs(attempt, { minMs: webhook.baseDelayMs, maxMs: webhook.maxDelayMs });
    return Math.round(step / 2 + Math.random() * (step / 2));
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      if (this.stop.signal.aborted) return resolve();
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.stop.signal.addEventListener("abort", done, { once: true });
    });
  }

  /** Resolves when every notification accepted so far is delivered or given up on every channel. */
  flush(): Promise<void> {
    if (this.pending === 0) return Promise.resolve();
    return new Promise((resolve) => this.idle.push(resolve));
  }

  /**
   * Refuses new notifications and waits up to `graceMs` for the ones under way; then cuts the
   * rest short, each reporting a last failed attempt, so nothing is left unaccounted for.
   */
  async close(graceMs = 10_000): Promise<void> {
    this.closed = true;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.flush(), new Promise((resolve) => (timer = setTimeout(resolve, graceMs)))]);
    clearTimeout(timer);
    if (this.pending > 0) {
      this.stop.abort();
      await this.flush();
    }
  }
}
