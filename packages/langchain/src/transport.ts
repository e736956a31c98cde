import { Queue, type ConnectionOptions } from "bullmq";
import { AuditgraphError, BATCH_JOB_NAME, batchJobOptions, epochKey, logLevelOf, newEventId, type AuditEvent } from "@auditgraph/core";
import { cutBatch } from "./batching.js";
import { describeRedis, readEpoch, redisClient } from "@auditgraph/policy";
import { pino, type Logger } from "pino";
import { Spool, type SpooledBatch } from "./spool.js";
import { UnconfirmedBatches } from "./unconfirmed.js";
import {
  newTransportMetrics,
  resolveTransportOptions,
  type QueueTransportOptions,
  type ResolvedTransportOptions,
  type TransportMetrics,
} from "./transport-options.js";
import { closing, withTimeout } from "./deadline.js";
import type { Transport } from "./transport-contract.js";

export { QueueTransportOptionsSchema, type QueueTransportOptions, type TransportMetrics } from "./transport-options.js";
export { tapTransport, type Transport } from "./transport-contract.js";

/** Batches sent in one round trip at most (a MULTI of that many jobs). */
const BULK = 20;

/**
 * Batches events in memory and adds one BullMQ job per batch, with a job id fixed when the
 * batch is cut, so a retried send is never a second job. When Redis does not answer in time
 * the batch goes to an fsynced spool file instead, and Redis counts as down: every batch after
 * it goes straight to the spool, in order, without waiting on Redis, until a background probe
 * finds Redis again; then the spool is forwarded, oldest first (also by the next process that
 * opens the same spool directory). So `flush()`, `close()` and a fail-closed tool never wait on
 * a dead Redis longer than one `sendTimeoutMs` (`close()`: `closeTimeoutMs` at most).
 */
export class QueueTransport implements Transport {
  readonly queue: Queue;
  readonly metrics: TransportMetrics = newTransportMetrics();
  private readonly options: ResolvedTransportOptions;
  /** The queue's client, the transport's own: closed (or, if it will not, disconnected) by `close`. */
  private readonly client: ReturnType<typeof redisClient>;
  private buffer: AuditEvent[] = [];
  /** Every drain and forward runs on this chain, one at a time, so batches keep their order. */
  private chain: Promise<void>;
  private spool: Spool | undefined;
  private readonly timers: NodeJS.Timeout[] = [];
  /** Batches in Redis that no worker has recorded yet, oldest first: re-sent if Redis loses them. */
  private readonly unconfirmed: UnconfirmedBatches;
  private confirming = false;
  /** Redis counts as down: batches go straight to the spool until `probe` finds it again. */
  private down = false;
  private probing = false;
  /** A probe found Redis: the spool's forwarding waits on the chain. */
  private recovering = false;
  /** Aborted at `close`'s deadline: sends still waiting on Redis give up, and their batches go to the spool. */
  private readonly cut = new AbortController();
  private closing: Promise<void> | undefined;

  private closed = false;
  private dropping = false;
  /** The first this-many buffered events go in urgent batches: up to and including the last expedited event. */
  private urgentThrough = 0;
  private readonly log: Logger;
  lastError: Error | undefined;

  constructor(options: QueueTransportOptions = {}) {
    this.options = resolveTransportOptions(options);
    this.unconfirmed = new UnconfirmedBatches(this.options.maxUnconfirmed);
    const { connection, queueName, spoolDir } = this.options;
    this.log = this.options.logger ?? pino({ name: "auditgraph-transport", level: logLevelOf(options.env) }, pino.destination(2));
    // Fail fast while Redis is away instead of queueing commands in ioredis' memory. The client
    // is the transport's (BullMQ shares it, and does not close it), so `close` can cut it off.
    this.client = redisClient(connection, { enableOfflineQueue: false });
    this.client.on("error", (error: Error) => (this.lastError = error));
    // ioredis's own options type and BullMQ's differ in detail only.
    this.queue = new Queue(queueName, { connection: this.client as unknown as ConnectionOptions });
    this.queue.on("error", (error) => (this.lastError = error));
    this.log.info({ redis: describeRedis(connection), queue: queueName, spoolDir }, "audit transport started");
    // What an earlier process left in the spool goes first.
    this.chain = Spool.open(spoolDir).then(
      (spool) => {
        this.spool = spool;
        return this.forwardSpool().then(() => undefined);
      },
      (error: unknown) => {
        this.lastError = error as Error;
      },
    );
    this.every(this.options.lingerMs, () => void this.flush().catch(() => undefined));
    this.every(this.options.confirmMs, () => void this.confirm());
    this.every(this.options.retryMs, () => void this.probe());
  }

  private every(ms: number, run: () => void): void {
    const timer = setInterval(run, ms);
    timer.unref();
    this.timers.push(timer);
  }

  send(event: AuditEvent): void {
    if (this.closed) throw new AuditgraphError("AUDITGRAPH_E_TRANSPORT_CLOSED", "audit transport is closed: the event was not accepted");
    this.metrics.accepted += 1;
    if (this.buffer.length >= this.options.maxBuffered) {
      if (this.options.overflow === "drop") {
        this.metrics.dropped += 1;
        if (!this.dropping) {
          this.dropping = true;
          this.log.warn({ buffered: this.buffer.length, dropped: this.metrics.dropped }, "audit buffer full: dropping events (overflow: drop)");
        }
        return;
      }
      // Bounded memory: the full buffer goes to disk now, synchronously, in order.
      this.spillBuffer();
    }
    this.buffer.push(event);
    if (this.buffer.length >= this.options.batchSize) void this.flush().catch(() => undefined);
  }

  /**
   * Sends the buffer up to `event` now, with the urgent priority. The events captured before it
   * go along, so the trace keeps its order up to the urgent event; those after it wait for their
   * linger as usual, so the urgent job stays small. An event no longer buffered is already in
   * Redis (or the spool), as an ordinary batch.
   */
  expedite(event: AuditEvent): void {
    if (this.closed) return;
    const at = this.buffer.lastIndexOf(event);
    if (at < 0) return;
    this.urgentThrough = Math.max(this.urgentThrough, at + 1);
    this.chain = this.chain.catch(() => undefined).then(() => this.drain(true));
    this.chain.catch(() => undefined);
  }

  flush(): Promise<void> {
    this.chain = this.chain.catch(() => undefined).then(() => this.drain());
    return this.chain;
  }

  /** Events captured and not yet in Redis or the spool. */
  get pending(): number {
    return this.buffer.length;
  }

  /** True while batches wait in the spool for Redis. */
  get spooling(): boolean {
    return this.spool !== undefined && !this.spool.empty;
  }

  /** True while Redis counts as down: every batch goes straight to the spool. */
  get offline(): boolean {
    return this.down;
  }

  private cutBatch(): SpooledBatch {
    const urgent = this.urgentThrough > 0;
    const cut = cutBatch(this.buffer, this.options.batchSize, this.options.shards, this.urgentThrough);
    this.buffer = cut.rest;
    this.urgentThrough -= cut.urgentTaken;
    if (this.dropping && this.buffer.length < this.options.maxBuffered / 2) {
      this.dropping = false;
      this.log.warn({ dropped: this.metrics.dropped }, "audit buffer has room again: no longer dropping");
    }
    return { jobId: newEventId(), events: cut.events, shards: cut.shards, ...(urgent ? { urgent } : {}) };
  }

  private spillBuffer(): void {
    if (!this.spool)
      throw new AuditgraphError(
        "AUDITGRAPH_E_BUFFER_FULL",
        `audit buffer full (${this.buffer.length} events) and the spool is not open: ${this.lastError?.message ?? "still opening"}`,
      );
    while (this.buffer.length > 0) this.toSpool(this.cutBatch());
  }

  private toSpool(batch: SpooledBatch): void {
    if (!this.spool) throw new AuditgraphError("AUDITGRAPH_E_SPOOL_UNAVAILABLE", `spool unavailable: ${this.lastError?.message ?? "not open"}`);
    this.spool.append(batch);
    this.metrics.spooled += batch.events.length;
  }

  /** One job per batch, in order, in one round trip (a MULTI for several). */
  private async add(batches: SpooledBatch[]): Promise<void> {
    const { sendTimeoutMs, urgentPriority, priority, attempts } = this.options;
    // The epoch a batch is sent in tells, later, whether a vanished job was lost (see `confirm`).
    if (this.unconfirmed.epoch === undefined) await withTimeout(this.readEpoch(), sendTimeoutMs, "reading Redis's epoch", this.cut.signal);
    const jobs = batches.map((b) => ({
      name: BATCH_JOB_NAME,
      data: { events: b.events, ...(b.shards !== undefined ? { shards: b.shards } : {}) },
      opts: batchJobOptions({ jobId: b.jobId, priority: b.urgent ? urgentPriority : priority, attempts }),
    }));
    const adding: Promise<unknown> = jobs.length === 1 ? this.queue.add(jobs[0]!.name, jobs[0]!.data, jobs[0]!.opts) : this.queue.addBulk(jobs);
    await withTimeout(adding, sendTimeoutMs, "adding batches to the queue", this.cut.signal);
    for (const batch of batches) this.metrics.unguarded += this.unconfirmed.hold(batch);
  }

  /** A send failed: Redis counts as down until `probe` finds it again (said once, not per batch). */
  private sendFailed(error: unknown): void {
    this.metrics.sendFailures += 1;
    this.lastError = error as Error;
    if (this.down) return;
    this.down = true;
    if ((error as { [closing]?: boolean })[closing]) return;
    this.log.warn(
      { redis: describeRedis(this.options.connection), queue: this.options.queueName, error: (error as Error).message },
      "Redis does not answer: batches go to the spool until it does again",
    );
  }

  /**
   * While Redis counts as down: asks it for a PING (in the background, never on the agent's
   * path); once it answers, the spool is forwarded on the chain, and once that went through,
   * batches go to Redis again.
   */
  private async probe(): Promise<void> {
    if (!this.down || this.probing || this.recovering || this.closed) return;
    this.probing = true;
    try {
      await withTimeout(this.client.ping(), this.options.sendTimeoutMs, "PING", this.cut.signal);
    } catch {
      return;
    } finally {
      this.probing = false;
    }
    this.recovering = true;
    this.chain = this.chain
      .catch(() => undefined)
      .then(async () => {
        this.recovering = false;
        if (!this.down || this.closed) return;
        const spooled = this.metrics.spooled - this.metrics.forwarded;
        if (!(await this.forwardSpool(true))) return;
        this.down = false;
        this.lastError = undefined;
        this.log.warn(
          { redis: describeRedis(this.options.connection), queue: this.options.queueName, forwarded: spooled },
          "Redis answers again: the spool is forwarded",
        );
      });
    this.chain.catch(() => undefined);
  }

  /**
   * Looks the oldest unconfirmed batches up in the queue: completed ones (and ones failed for
   * good) are let go. One the queue no longer knows was either finished and removed (a
   * completed job leaves Redis at once, see `batchJobOptions`, and one failed for good once it
   * is dead-lettered) or lost with Redis's data: the epoch tells them apart. A lost one is sent
   * again: safe, as job ids and event ids are fixed and the worker keeps each event once.
   */
  private async confirm(): Promise<void> {
    if (this.confirming || this.down || this.unconfirmed.size === 0) return;
    this.confirming = true;
    try {
      const held = this.unconfirmed.oldest(500);
      // The job's own hash, read in O(1) (`getJobState` searches the waiting list): `name` is
      // there while the job exists, `finishedOn` once it completed or failed for good.
      const client = await withTimeout(this.queue.getBackend().client, this.options.sendTimeoutMs, "connecting", this.cut.signal);
      const [epoch, fields] = await withTimeout(
        Promise.all([this.readEpoch(), Promise.all(held.map(({ batch }) => client.hmget(this.queue.toKey(batch.jobId), "name", "finishedOn")))]),
        this.options.sendTimeoutMs,
        "looking batches up",
        this.cut.signal,
      );
      const lost: SpooledBatch[] = [];
      held.forEach(({ batch, epoch: sentIn }, i) => {
        const [name, finishedOn] = fields[i]!;
        const gone = name === null;
        if (gone && sentIn !== epoch) lost.push(batch);
        else if (!gone && finishedOn === null) return;
        else this.metrics.confirmed += batch.events.length;
        this.unconfirmed.release(batch);
      });
      if (lost.length === 0) return;
      const events = lost.reduce((n, b) => n + b.events.length, 0);
      this.log.error(
        { batches: lost.length, events },
        "Redis lost batches no worker had recorded (restarted without persistence, or flushed): sending them again",
      );
      this.metrics.resent += events;
      // On the chain, as any send: they keep their place before what is captured next.
      this.chain = this.chain
        .catch(() => undefined)
        .then(async () => {
          for (const batch of lost) {
            try {
              if (this.down) throw new AuditgraphError("AUDITGRAPH_E_REDIS_DOWN", "Redis counts as down");
              await this.add([batch]);
            } catch (error) {
              this.sendFailed(error);
              this.toSpool(batch);
            }
          }
        });
      await this.chain.catch(() => undefined);
    } catch {
      // Redis away: the spool covers new batches, and these are looked up again next time.
    } finally {
      this.confirming = false;
    }
  }

  /** Redis's epoch, set now if it has none (a Redis that lost its data, or a new one). */
  private async readEpoch(): Promise<string> {
    const epoch = await readEpoch(await this.queue.getBackend().client, epochKey(this.options.queueName, this.queue.opts.prefix), newEventId());
    if (this.unconfirmed.changedEpoch(epoch)) {
      this.log.warn(
        { queue: this.options.queueName },
        "Redis lost its data (restarted without persistence, or flushed): looking for batches of this transport it lost",
      );
    }
    return epoch;
  }

  /** Events sent and not yet known to be recorded by a worker (held for re-sending). */
  get unrecorded(): number {
    return this.unconfirmed.events;
  }

  /** `urgentOnly`: stop after the urgent events; the rest keep to the linger. */
  private async drain(urgentOnly = false): Promise<void> {
    // While Redis counts as down the spool waits for `probe`: nothing here waits on Redis.
    if (!this.down) await this.forwardSpool();
    const more = () => this.buffer.length > 0 && (!urgentOnly || this.urgentThrough > 0);
    while (more()) {
      // What is buffered goes in one round trip, up to BULK batches.
      const batches: SpooledBatch[] = [];
      while (batches.length < BULK && more()) batches.push(this.cutBatch());
      let spooled = 0;
      try {
        if (!this.down && !this.spooling) {
          try {
            await this.add(batches);
            for (const batch of batches) {
              this.metrics.queued += batch.events.length;
              if (batch.urgent) this.metrics.expedited += batch.events.length;
            }
            this.lastError = undefined;
            continue;
          } catch (error) {
            this.sendFailed(error);
          }
        }
        for (; spooled < batches.length; spooled++) this.toSpool(batches[spooled]!);
      } catch (error) {
        // Neither Redis nor the spool took them: they stay first in line, and flush() says so.
        const back = batches.slice(spooled);
        this.buffer.unshift(...back.flatMap((b) => b.events));
        this.urgentThrough += back.reduce((n, b) => n + (b.urgent ? b.events.length : 0), 0);
        throw error;
      }
    }
  }

  /** Forwards the spool, oldest first; false when Redis did not take all of it (it counts as down then). */
  private async forwardSpool(force = false): Promise<boolean> {
    if (!this.spool || this.spool.empty) return true;
    if (this.down && !force) return false;
    try {
      await this.spool.forward(async (batches) => {
        await this.add(batches);
        this.metrics.forwarded += batches.reduce((n, b) => n + b.events.length, 0);
      }, BULK);
      return true;
    } catch (error) {
      this.sendFailed(error);
      return false;
    }
  }

  /**
   * Flushes and closes, within `closeTimeoutMs`: sends Redis has not taken by then are cut
   * short and their batches, with everything else captured, are in the spool (fsynced) for the
   * next process (or this one, reopened) to forward. A batch cut short after Redis took it is
   * sent twice then, which is harmless (fixed job and event ids). The Redis client is closed,
   * or disconnected if it does not close in time.
   */
  close(): Promise<void> {
    this.closing ??= this.shutDown();
    return this.closing;
  }

  private async shutDown(): Promise<void> {
    this.closed = true;
    for (const timer of this.timers) clearInterval(timer);
    const { closeTimeoutMs } = this.options;
    const deadline = Date.now() + closeTimeoutMs;
    // The last part of the budget is for closing the client.
    const reserve = Math.min(1_000, closeTimeoutMs / 5);
    const cutAt = setTimeout(() => this.cut.abort(), closeTimeoutMs - reserve);
    try {
      await this.flush();
    } finally {
      clearTimeout(cutAt);
      // Whatever else holds the chain (a confirmation's re-send) gives up too.
      this.cut.abort();
      await this.chain.catch(() => undefined);
      await this.spool?.close();
      const left = () => Math.max(1, deadline - Date.now());
      await withTimeout(this.queue.close(), left(), "closing the queue").catch(() => undefined);
      if (this.down) this.client.disconnect();
      else await withTimeout(this.client.quit(), left(), "closing the Redis connection").catch(() => this.client.disconnect());
    }
  }
}
