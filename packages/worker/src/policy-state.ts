import { Cluster, Redis } from "ioredis";
import { redisClient, type RedisConnection } from "@auditgraph/policy";
import { InvalidAmountError, type PolicyState } from "@auditgraph/policy";
import { AuditgraphError } from "@auditgraph/core";

// One hash per counter: field `t` holds the total, `e:<eventId>` marks each event counted. HSETNX
// and HINCRBYFLOAT run in one script, so two workers given the same event (a redelivery, or a
// stalled job taken over) count it once, and every worker adds to the same total.
const ADD = `
local fresh = redis.call('HSETNX', KEYS[1], 'e:' .. ARGV[1], '1')
local total
if fresh == 1 then
  total = redis.call('HINCRBYFLOAT', KEYS[1], 't', ARGV[2])
else
  total = redis.call('HGET', KEYS[1], 't') or '0'
end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return total`;

// The first event to claim a key keeps it; the answer is the holder, so a redelivered claimant still holds it.
const CLAIM = `
local owner = redis.call('GET', KEYS[1])
if not owner then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  owner = ARGV[1]
end
return owner`;

export interface RedisPolicyStateOptions {
  /** An ioredis client (shared, not closed by `close`) or the options to open one with. */
  redis: Redis | Cluster | RedisConnection;
  /** Key prefix; a hash tag (`{...}`) keeps every counter on one Redis Cluster slot's node. */
  prefix?: string;
  /**
   * How long an idle counter lives (ms; each add renews it). Longer than any budget window:
   * a per-user window key is new each window, so old ones expire instead of piling up.
   */
  ttlMs?: number;
}

/**
 * The worker's `PolicyState`: counters in Redis, so that budgets per user or per trace add up
 * across every worker process, and a redelivered event is counted once (see `ADD`).
 */
export class RedisPolicyState implements PolicyState {
  private readonly redis: Redis | Cluster;
  private readonly owned: boolean;
  private readonly prefix: string;
  private readonly ttlMs: number;

  constructor(options: RedisPolicyStateOptions) {
    const shared = options.redis instanceof Redis || options.redis instanceof Cluster ? options.redis : undefined;
    this.owned = !shared;
    this.redis = shared ?? redisClient(options.redis as RedisConnection, { maxRetriesPerRequest: null });
    this.prefix = options.prefix ?? "auditgraph:policy-state:";
    this.ttlMs = options.ttlMs ?? 7 * 24 * 3600 * 1000;
    if (!Number.isInteger(this.ttlMs) || this.ttlMs <= 0)
      throw new AuditgraphError("AUDITGRAPH_E_POLICY_STATE_OPTIONS", "RedisPolicyState: ttlMs must be a positive integer");
  }

  async add(key: string, eventId: string, amount: number): Promise<number> {
    if (!Number.isFinite(amount)) throw new InvalidAmountError(key);
    const total = (await this.redis.eval(ADD, 1, this.prefix + key, eventId, String(amount), String(this.ttlMs))) as string;
    return Number(total);
  }

  async get(key: string): Promise<number> {
    return Number((await this.redis.hget(this.prefix + key, "t")) ?? 0);
  }

  async claim(key: string, eventId: string): Promise<boolean> {
    // Its own key space: a claim is a string, a counter a hash.
    const owner = (await this.redis.eval(CLAIM, 1, `${this.prefix}claim:${key}`, eventId, String(this.ttlMs))) as string;
    return owner === eventId;
  }

  async close(): Promise<void> {
    if (this.owned) await this.redis.quit().catch(() => undefined);
  }
}
