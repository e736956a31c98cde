import type { Cluster, Redis } from "ioredis";
import { z } from "zod";
import { AuditgraphError, parseWith } from "@auditgraph/core";
import { redisClient, type RedisConnection } from "./redis.js";
import type { Finding } from "./finding.js";
import type { HoldDecider, HoldDecision } from "./hold.js";

export const DEFAULT_HOLD_PREFIX = "auditgraph:hold:";

/**
 * The id of the hold a finding opens: its run and its policy. A run is one call, and a policy
 * holds it at most once, so the worker, which evaluates the same policy on the same `tool.start`
 * / `llm.start` event, and the CLI reach the same id without asking the agent.
 */
export const holdIdOf = (finding: Pick<Finding, "policyId"> & { concerns: Pick<Finding["concerns"], "runId"> }): string =>
  `${finding.concerns.runId}:${finding.policyId}`;

/** The Redis key of a hold. The braces are a Cluster hash tag: the hold's key and its data stay on one slot. */
const keyOf = (prefix: string, holdId: string): string => `${prefix}{${holdId}}`;
const channelOf = (prefix: string): string => `${prefix}decided`;

/** A hold as kept in Redis (a hash): ids and states only. */
export const HoldRecordSchema = z.object({
  holdId: z.string().min(1),
  /** `pending`: an agent waits; `withdrawn`: it stopped waiting (its timeout took the default, or it was aborted). */
  state: z.enum(["pending", "withdrawn", "allow", "deny"]),
  policyId: z.string().min(1).optional(),
  policyVersion: z.string().min(1).optional(),
  runId: z.string().min(1).optional(),
  traceId: z.string().min(1).optional(),
  eventId: z.string().min(1).optional(),
  registeredAt: z.string().optional(),
  reviewer: z.string().min(1).optional(),
  decidedAt: z.string().optional(),
});
export type HoldRecord = z.output<typeof HoldRecordSchema>;

export const ReviewerSchema = z.string().min(1).max(256);

/**
 * Registers a hold unless a decision is already there (made before the agent asked: it is taken
 * as is). KEYS[1] hold; ARGV: ttl ms, then field/value pairs. Returns the decision or nil.
 */
const REGISTER = `
local state = redis.call('HGET', KEYS[1], 'state')
if state == 'allow' or state == 'deny' then return state end
redis.call('HSET', KEYS[1], 'state', 'pending', unpack(ARGV, 2))
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return false
`;

/** The first decision wins; a hold that stopped waiting keeps its default. KEYS[1] hold; ARGV: decision, reviewer, at, ttl, channel, holdId. */
const DECIDE = `
local state = redis.call('HGET', KEYS[1], 'state')
if state == 'allow' or state == 'deny' then return {'already-decided', state} end
if state == 'withdrawn' then return {'too-late', state} end
redis.call('HSET', KEYS[1], 'holdId', ARGV[6], 'state', ARGV[1], 'reviewer', ARGV[2], 'decidedAt', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('PUBLISH', ARGV[5], ARGV[6])
if state == 'pending' then return {'decided', ARGV[1]} end
return {'recorded', ARGV[1]}
`;

/** KEYS[1] hold. */
const WITHDRAW = `
if redis.call('HGET', KEYS[1], 'state') == 'pending' then redis.call('HSET', KEYS[1], 'state', 'withdrawn') end
return 1
`;

export interface PublishHoldDecisionOptions {
  prefix?: string;
  /** How long the decision is kept (default: a day). */
  ttlMs?: number;
}

export type PublishHoldDecisionResult =
  /** An agent was waiting and is released. */
  | { status: "decided"; decision: HoldDecision }
  /** No agent waits (yet): the decision is kept for a hold that registers within the TTL. */
  | { status: "recorded"; decision: HoldDecision }
  /** Someone decided first; that decision stands. */
  | { status: "already-decided"; decision: HoldDecision }
  /** The agent stopped waiting: its rule's default outcome was taken. */
  | { status: "too-late" };

/**
 * The reviewer's side (the CLI's `escalations resolve` → allow, `escalations dismiss` → deny):
 * records the decision on the hold and wakes the agent waiting on it. Atomic: of two reviewers
 * the first wins, and a hold that already timed out is not changed after the fact.
 */
export async function publishHoldDecision(
  redis: Redis | Cluster,
  holdId: string,
  decision: HoldDecision,
  reviewer: string,
  { prefix = DEFAULT_HOLD_PREFIX, ttlMs = 86_400_000 }: PublishHoldDecisionOptions = {},
): Promise<PublishHoldDecisionResult> {
  parseWith(
    z.object({ holdId: z.string().min(1), decision: z.enum(["allow", "deny"]), reviewer: ReviewerSchema }),
    { holdId, decision, reviewer },
    "hold decision",
  );
  const [status, state] = (await redis.eval(
    DECIDE,
    1,
    keyOf(prefix, holdId),
    decision,
    reviewer,
    new Date().toISOString(),
    ttlMs,
    channelOf(prefix),
    holdId,
  )) as [PublishHoldDecisionResult["status"], string];
  return status === "too-late" ? { status } : { status, decision: state as HoldDecision };
}

/** The hold as stored, or undefined once it expired (or never was). */
export async function readHold(redis: Redis, holdId: string, { prefix = DEFAULT_HOLD_PREFIX }: { prefix?: string } = {}): Promise<HoldRecord | undefined> {
  const fields = await redis.hgetall(keyOf(prefix, holdId));
  if (!fields.state) return undefined;
  return parseWith(HoldRecordSchema, { holdId, ...fields }, `hold ${holdId}`);
}

export const RedisHoldDeciderOptionsSchema = z.object({
  /** ioredis options (and cluster nodes): the decider opens two connections of its own (commands, and the subscription). */
  connection: z.custom<RedisConnection>((v) => typeof v === "object" && v !== null, "must be ioredis options (host, port, ...)"),
  prefix: z.string().min(1).default(DEFAULT_HOLD_PREFIX),
  /** How long a hold's record is kept in Redis after it is registered or decided. */
  ttlMs: z.number().int().positive().default(86_400_000),
  /** A waiting hold re-reads its key this often: a decision whose message was missed (a reconnect) still arrives. */
  pollMs: z.number().int().positive().default(1_000),
  /** How long `decide` waits for Redis to be reachable before it fails (and the call is refused). */
  connectTimeoutMs: z.number().int().positive().default(2_000),
});
export type RedisHoldDeciderOptions = z.input<typeof RedisHoldDeciderOptionsSchema>;

interface Waiter {
  check(): void;
}

/**
 * The escalation-backed decider, for the agent process: a held call registers its hold in Redis
 * under `holdIdOf(finding)` and waits until a reviewer publishes a decision there (see
 * `publishHoldDecision`). A pub/sub message wakes it; the key is the truth, re-read on every
 * message, every `pollMs` and after each reconnect, so a lost message only costs time. The rule's
 * timeout and default stay with `awaitHold`: when it stops waiting, the hold is marked withdrawn,
 * so a late decision cannot claim to have released it. Redis unreachable: `decide` fails, and a
 * failed decider refuses the call (a failure is not silence).
 */
export class RedisHoldDecider implements HoldDecider {
  private readonly options: z.output<typeof RedisHoldDeciderOptionsSchema>;
  private readonly redis: Redis | Cluster;
  private readonly subscriber: Redis | Cluster;
  private readonly waiters = new Map<string, Set<Waiter>>();
  private subscribed: Promise<unknown> | undefined;

  constructor(options: RedisHoldDeciderOptions) {
    this.options = parseWith(RedisHoldDeciderOptionsSchema, options, "RedisHoldDecider options");
    // Commands fail fast while Redis is away, instead of waiting in ioredis' memory past the hold's timeout.
    const fast = { enableOfflineQueue: false, lazyConnect: true, maxRetriesPerRequest: 1 };
    this.redis = redisClient(this.options.connection, fast);
    this.subscriber = redisClient(this.options.connection, fast);
    this.redis.on("error", () => undefined);
    this.subscriber.on("error", () => undefined);
    this.subscriber.on("message", (_channel: string, holdId: string) => this.wake(holdId));
    // Messages sent while the subscription was down are lost: every waiting hold looks again.
    this.subscriber.on("ready", () => {
      for (const holdId of this.waiters.keys()) this.wake(holdId);
    });
  }

  private wake(holdId: string): void {
    for (const waiter of this.waiters.get(holdId) ?? []) waiter.check();
  }

  private async ready(client: Redis | Cluster): Promise<void> {
    if (client.status === "ready") return;
    if (client.status === "wait") void client.connect().catch(() => undefined);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        client.off("ready", onReady);
        reject(new AuditgraphError("AUDITGRAPH_E_HOLD_REDIS_UNREACHABLE", `Redis for hold decisions not reachable within ${this.options.connectTimeoutMs} ms`));
      }, this.options.connectTimeoutMs);
      const onReady = () => {
        clearTimeout(timer);
        resolve();
      };
      client.once("ready", onReady);
    });
  }

  private subscribe(): Promise<unknown> {
    this.subscribed ??= this.ready(this.subscriber)
      .then(() => this.subscriber.subscribe(channelOf(this.options.prefix)))
      .catch((error: unknown) => {
        this.subscribed = undefined;
        throw error;
      });
    return this.subscribed;
  }

  async decide(finding: Finding, signal: AbortSignal): Promise<HoldDecision> {
    const holdId = holdIdOf(finding);
    const key = keyOf(this.options.prefix, holdId);
    // Subscribed before registering: a decision published in between is not missed.
    await Promise.all([this.subscribe(), this.ready(this.redis)]);
    if (signal.aborted) throw signal.reason;
    const fields = [
      "holdId",
      holdId,
      "policyId",
      finding.policyId,
      "policyVersion",
      finding.policyVersion,
      "runId",
      finding.concerns.runId,
      "traceId",
      finding.concerns.traceId,
      ...(finding.concerns.eventId ? ["eventId", finding.concerns.eventId] : []),
      "registeredAt",
      new Date().toISOString(),
    ];
    const early = (await this.redis.eval(REGISTER, 1, key, this.options.ttlMs, ...fields)) as HoldDecision | null;
    if (early) return early;

    return new Promise<HoldDecision>((resolve, reject) => {
      let reading = false;
      let again = false;
      const waiter: Waiter = {
        check: () => {
          if (reading) {
            again = true;
            return;
          }
          reading = true;
          this.redis.hget(key, "state").then(
            (state) => {
              reading = false;
              if (state === "allow" || state === "deny") finish(() => resolve(state));
              else if (again) {
                again = false;
                waiter.check();
              }
            },
            // A failed read is retried by the next poll; only the rule's timeout ends the wait.
            () => {
              reading = false;
            },
          );
        },
      };
      const poll = setInterval(waiter.check, this.options.pollMs);
      const onAbort = () => {
        finish(() => reject(signal.reason));
        // Withdrawn, so a reviewer told "too late" knows the default was taken.
        void this.redis.eval(WITHDRAW, 1, key).catch(() => undefined);
      };
      const finish = (settle: () => void) => {
        clearInterval(poll);
        signal.removeEventListener("abort", onAbort);
        const set = this.waiters.get(holdId);
        set?.delete(waiter);
        if (set?.size === 0) this.waiters.delete(holdId);
        settle();
      };
      const set = this.waiters.get(holdId) ?? new Set<Waiter>();
      set.add(waiter);
      this.waiters.set(holdId, set);
      signal.addEventListener("abort", onAbort, { once: true });
      // A decision may have landed between the registration and now.
      waiter.check();
    });
  }

  /** Closes both connections; holds still waiting then end with their rule's timeout. */
  async close(): Promise<void> {
    await Promise.all([this.subscriber.quit().catch(() => this.subscriber.disconnect()), this.redis.quit().catch(() => this.redis.disconnect())]);
  }
}
