/**
 * Counters the stateful policies keep across events (tokens per trace, tool errors per trace,
 * spend per user). Asynchronous because the worker's will be shared by all worker processes
 * (Redis, phase 2): a budget per user must add up whichever worker sees the event. The agent
 * process's inline rules use an in-memory one of their own.
 *
 * `add` counts an event once: redelivered events (the queue delivers at least once) must not
 * spend a budget twice.
 */
export interface PolicyState {
  /** Adds `amount` to the counter `key` unless `eventId` was already added to it; resolves to the total. */
  add(key: string, eventId: string, amount: number): Promise<number>;
  /** The counter's total (0 for a counter never added to). */
  get(key: string): Promise<number>;
  /**
   * Claims `key` for `eventId` unless another event claimed it first; resolves to whether
   * `eventId` holds it (true again for a redelivery of the claimant, so its finding is raised
   * again and the ledger's duplicate check keeps one). Optional for states written before it:
   * policies then fall back to `add` (first counted = first claimant).
   */
  claim?(key: string, eventId: string): Promise<boolean>;
}

interface Counter {
  total: number;
  seen: Set<string>;
}

/**
 * One process's counters. Bounded: past `maxKeys` counters the least recently used is dropped
 * (a finished trace's, mostly), and each remembers only its last `maxSeen` event ids, enough to
 * recognise a redelivery, which comes soon after the first delivery.
 */
/**
 * A counter was given an amount that is not a finite number. A RangeError still (callers and tests
 * branch on that), with the stable code every auditgraph error carries.
 */
export class InvalidAmountError extends RangeError {
  readonly code = "AUDITGRAPH_E_POLICY_STATE_AMOUNT";
  constructor(readonly key: string) {
    super(`policy state: amount for ${key} must be a finite number`);
  }
}

export class InMemoryPolicyState implements PolicyState {
  private readonly counters = new Map<string, Counter>();
  private readonly claims = new Map<string, string>();
  private readonly maxKeys: number;
  private readonly maxSeen: number;

  constructor(options: { maxKeys?: number; maxSeen?: number } = {}) {
    this.maxKeys = options.maxKeys ?? 100_000;
    this.maxSeen = options.maxSeen ?? 1024;
  }

  private touch(key: string): Counter {
    let counter = this.counters.get(key);
    if (counter) this.counters.delete(key);
    else counter = { total: 0, seen: new Set() };
    // Map order is insertion order: re-inserting keeps the least recently used first.
    this.counters.set(key, counter);
    if (this.counters.size > this.maxKeys) this.counters.delete(this.counters.keys().next().value!);
    return counter;
  }

  add(key: string, eventId: string, amount: number): Promise<number> {
    if (!Number.isFinite(amount)) return Promise.reject(new InvalidAmountError(key));
    const counter = this.touch(key);
    if (!counter.seen.has(eventId)) {
      counter.seen.add(eventId);
      if (counter.seen.size > this.maxSeen) counter.seen.delete(counter.seen.values().next().value!);
      counter.total += amount;
    }
    return Promise.resolve(counter.total);
  }

  get(key: string): Promise<number> {
    return Promise.resolve(this.counters.get(key)?.total ?? 0);
  }

  claim(key: string, eventId: string): Promise<boolean> {
    let owner = this.claims.get(key);
    if (owner === undefined) {
      owner = eventId;
      this.claims.set(key, owner);
      // Bounded like the counters: the oldest claim (a finished trace's, mostly) goes first.
      if (this.claims.size > this.maxKeys) this.claims.delete(this.claims.keys().next().value!);
    }
    return Promise.resolve(owner === eventId);
  }
}

/** The state as one policy sees it: its keys prefixed with its id, so two policies never share a counter. */
export function scopedState(state: PolicyState, scope: string): PolicyState {
  const prefix = `${scope}|`;
  return {
    add: (key, eventId, amount) => state.add(prefix + key, eventId, amount),
    get: (key) => state.get(prefix + key),
    ...(state.claim ? { claim: (key: string, eventId: string) => state.claim!(prefix + key, eventId) } : {}),
  };
}
