import type { Cluster, Redis } from "ioredis";
import type { Logger } from "pino";
import { ESCALATION_CHANGES_CHANNEL, EscalationChangeSchema, type EscalationChange } from "@auditgraph/worker";

/** Told of a change in one of its tenants (`change`), or of a poll tick (`undefined`: look again). */
export type ChangeListener = (change: EscalationChange | undefined) => void;

export interface EscalationFeedOptions {
  /** The console's Redis client: the feed subscribes on a duplicate of it (a subscribed connection takes no other commands). */
  redis: Redis | Cluster;
  log: Logger;
  /** The safety poll: how often every listener is asked to look again, so a missed notice heals (ms). */
  pollMs?: number;
}

/**
 * The inbox's live feed: one Redis subscription per console process, fanned out to every open
 * inbox stream whose viewer may read the changed tenant. The worker (and `transitionEscalation`)
 * publish ids only; each stream then renders its own viewer's list through its tenant-scoped
 * query, so a notice never carries content across tenants. Pub/sub drops messages while a
 * connection is down, hence the poll.
 */
export class EscalationFeed {
  private readonly listeners = new Map<ChangeListener, ReadonlySet<string>>();
  private subscriber: Redis | Cluster | undefined;
  private subscribing: Promise<void> | undefined;
  private poll: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(private readonly options: EscalationFeedOptions) {}

  /** Listens for changes in `tenants`; returns the function that stops listening. */
  listen(tenants: Iterable<string>, listener: ChangeListener): () => void {
    if (this.closed) return () => undefined;
    this.listeners.set(listener, new Set(tenants));
    this.start();
    return () => void this.listeners.delete(listener);
  }

  /** How many streams listen (for tests and the close). */
  get size(): number {
    return this.listeners.size;
  }

  /** Subscribes on first use: a console nobody watches the inbox of holds no subscription. */
  private start(): void {
    if (this.subscribing) return;
    const subscriber = (this.subscriber = this.options.redis.duplicate());
    // One line per outage (ioredis reports every reconnect attempt); back, it resubscribes by itself
    // and every stream looks again at once, for the notices missed meanwhile.
    let down = false;
    subscriber.on("error", (error: Error) => {
      if (this.closed || down) return;
      down = true;
      this.options.log.warn({ error: error.message }, "inbox live feed: Redis error (the poll keeps the inbox current)");
    });
    subscriber.on("ready", () => {
      if (!down) return;
      down = false;
      this.fanOut(undefined);
    });
    subscriber.on("message", (channel: string, message: string) => {
      if (channel === ESCALATION_CHANGES_CHANNEL) this.deliver(message);
    });
    this.subscribing = subscriber.subscribe(ESCALATION_CHANGES_CHANNEL).then(
      () => undefined,
      (error: Error) => {
        if (!this.closed) this.options.log.warn({ error: error.message }, "inbox live feed: could not subscribe (the poll keeps the inbox current)");
      },
    );
    this.poll = setInterval(() => this.fanOut(undefined), this.options.pollMs ?? 10_000);
    this.poll.unref();
  }

  private deliver(message: string): void {
    let change: EscalationChange;
    try {
      change = EscalationChangeSchema.parse(JSON.parse(message));
    } catch {
      // Not a notice of ours (another publisher on the channel): ignored, ids only are trusted.
      return;
    }
    this.fanOut(change);
  }

  private fanOut(change: EscalationChange | undefined): void {
    for (const [listener, tenants] of this.listeners) {
      if (change && !tenants.has(change.tenantId)) continue;
      try {
        listener(change);
      } catch (error) {
        this.options.log.warn({ error: (error as Error).message }, "inbox live feed: a listener failed");
      }
    }
  }

  /** Unsubscribes and closes the duplicate connection; listeners are dropped (their streams are ended by their owner). */
  async close(): Promise<void> {
    this.closed = true;
    this.listeners.clear();
    clearInterval(this.poll);
    const subscriber = this.subscriber;
    this.subscriber = undefined;
    // Disconnected, not quit: a subscription holds nothing to flush, and with Redis away a quit (or
    // the pending subscribe) would wait for a reconnection that the close should not.
    subscriber?.disconnect();
  }
}
