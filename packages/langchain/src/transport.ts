import { Queue, type ConnectionOptions } from "bullmq";
import { z } from "zod";
import { BATCH_JOB_NAME, DEFAULT_QUEUE_NAME, bullConnection, epochKey, newEventId, readEpoch, type RedisConnection, parseWith, type AuditEvent } from "@auditgraph/core";
import { pino, type Logger } from "pino";
import { Spool, type SpooledBatch } from "./spool.js";

/** Where the handler hands events. `send` must return at once: it runs on the agent's path. */
export interface Transport {
  send(event: AuditEvent): void;
  /**
   * Escalation-first: `event`, already sent, turned out to need a human (see the handler's
   * `escalateAt`): send it now, ahead of ordinary events, instead of after the linger. Must
   * return at once, like `send`. Optional: a transport without it sends the event as usual.
   */
  expedite?(event: AuditEvent): void;
  /** Resolves when every event sent so far is in Redis or in the spool on disk. */
  flush(): Promise<void>;
  close(): Promise<void>;
}

/**
 * `inner`, with `onSend` told of each event before it: a way to count, sample or record what a
 * real transport is given (benchmarks and fault tests do), without a second transport.
 */
export function tapTransport(inner: Transport, onSend: (event: AuditEvent) => void): Transport {
  return {
    send(event) {
      onSend(event);
      inner.send(event);
    },
    expedite: (event) => inner.expedite?.(event),
    flush: () => inner.flush(),
    close: () => inner.close(),
  };
}

export const QueueTransportOptionsSchema = z.object({
  /** ioredis options for the BullMQ queue (host, port, password, tls, ...), with `clusterNodes` for a Redis Cluster. */
  connection: z.custom<RedisConnection>((v) => typeof v === "object" && v !== null, "must be ioredis options (host, port, ...)"),
  queueName: z.string().regex(/^[A-Za-z0-9_{}-]+$/).default(DEFAULT_QUEUE_NAME),
  /** Events per job. */
  batchSize: z.number().int().positive().default(100),
  /** Longest an event waits in memory before its batch is sent (linger). */
  lingerMs: z.number().int().positive().default(100),
  /** Events held in memory at most; past it `overflow` applies. */
  maxBuffered: z.number().int().positive().default(10_000),
  /** `spool`: write the overflow to the spool at once; `drop`: drop new events, counted and logged. */
  overflow: z.enum(["spool", "drop"]).default("spool"),
  /** Where batches go while Redis cannot be reached; one process per directory. */
  spoolDir: z.string().min(1).default(".auditgraph/spool"),
  /** A send to Redis slower than this counts as failed: the batch goes to the spool. */
  sendTimeoutMs: z.number().int().positive().default(2_000),
  /** How often the spool is offered to Redis again while it holds batches. */
  retryMs: z.number().int().positive().default(1_000),
  /**
   * How often the batches sent and not yet recorded are looked up in the queue. One that is
   * gone before a worker completed it was lost by Redis (a restart without persistence, a
   * flush): it is sent again, and the loss is logged and counted (`metrics.resent`).
   */
  confirmMs: z.number().int().positive().default(1_000),
  /**
   * Events held for re-sending at most (about 1 KB each, in the agent's memory); past it the
   * oldest are no longer held (`metrics.unguarded`). Normally a second or two of events is held:
   * this bounds it while the workers are behind or down.
   */
  maxUnconfirmed: z.number().int().positive().default(20_000),
  /** Attempts the worker gets at each job before it is failed for good. */
  attempts: z.number().int().positive().default(20),
  /**
   * BullMQ job priority of ordinary batches. BullMQ takes lower numbers first, and jobs with no
   * priority (0) before all prioritized ones: so ordinary batches carry one too, or urgent ones
   * could never overtake them. Anything else adding to this queue should set one as well.
   */
  priority: z.number().int().min(1).max(2_097_151).default(1_000),
  /** Job priority of a batch holding an urgent event (see `expedite`): lower, so taken first. */
  urgentPriority: z.number().int().min(1).max(2_097_151).default(1),
  /** Where the transport reports drops and Redis trouble (counts only, never event content). */
  logger: z.custom<Logger>((v) => typeof v === "object" && v !== null && "warn" in v).optional(),
}).refine((o) => o.urgentPriority < o.priority, { message: "must be lower than priority (BullMQ takes lower numbers first)", path: ["urgentPriority"] });
export type QueueTransportOptions = z.input<typeof QueueTransportOptionsSchema>;

export interface TransportMetrics {
  /** Events captured. */
  accepted: number;
  /** Events put on the queue directly. */
  queued: number;
  /** Events written to the spool. */
  spooled: number;
  /** Events forwarded from the spool to the queue. */
  forwarded: number;
  /** Events dropped under the `drop` overflow policy. */
  dropped: number;
  /** Failed sends to Redis (each moved a batch to the spool or left it there). */
  sendFailures: number;
  /** Events that left in urgent batches (the urgent ones and those captured before them). */
  expedited: number;
  /** Events a worker recorded (their job completed), as this transport has confirmed. */
  confirmed: number;
  /** Events sent again because their job vanished from Redis before a worker recorded it. */
  resent: number;
  /** Events no longer held for re-sending (over `maxUnconfirmed`): a Redis that loses them now loses them for good. */
  unguarded: number;
}

const withTimeout = <T>(promise: Promise<T>, ms: number, what: string): Promise<T> =>
  new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms} ms`)), ms);
    promise.then(
      (v) => (clearTimeout(timer), resolve(v)),
      (e: unknown) => (clearTimeout(timer), reject(e as Error)),
    );
  });

/**
 * Batches events in memory and adds one BullMQ job per batch, with a job id fixed when the
 * batch is cut, so a retried send is never a second job. When Redis does not answer in time
 * the batch goes to an fsynced spool file instead, and everything after it too, so order is
 * kept; the spool is forwarded, oldest first, when Redis answers again, also by the next
 * process that opens the same spool directory.
 */
export class QueueTransport implements Transport {
  readonly queue: Queue;
  readonly metrics: TransportMetrics = { accepted: 0, queued: 0, spooled: 0, forwarded: 0, dropped: 0, sendFailures: 0, expedited: 0, confirmed: 0, resent: 0, unguarded: 0 };
  private readonly options: z.output<typeof QueueTransportOptionsSchema>;
  private buffer: AuditEvent[] = [];
  /** Every drain and forward runs on this chain, one at a time, so batches keep their order. */
  private chain: Promise<void>;
  private spool: Spool | undefined;
  private readonly timer: NodeJS.Timeout;
  private readonly confirmTimer: NodeJS.Timeout;
  /** Batches in Redis that no worker has recorded yet, oldest first: re-sent if Redis loses them. */
  private readonly unconfirmed = new Map<string, { batch: SpooledBatch; epoch: string | undefined }>();
  /** Redis's epoch (see `epochKey`) as last read. */
  private epoch: string | undefined;
  private unconfirmedEvents = 0;
  private confirming = false;

  private closed = false;
  private dropping = false;
  /** The first this-many buffered events go in urgent batches: up to and including the last expedited event. */
  private urgentThrough = 0;
  private readonly log: Logger;
  private readonly releaseConnection: () => Promise<void>;
  lastError: Error | undefined;

  constructor(options: QueueTransportOptions) {
    this.options = parseWith(QueueTransportOptionsSchema, options, "QueueTransport options");
    this.log = this.options.logger ?? pino({ name: "auditgraph-transport", level: "warn" }, pino.destination(2));
    // Fail fast while Redis is away instead of queueing commands in ioredis' memory.
    const { connection, release } = bullConnection(this.options.connection, { enableOfflineQueue: false });
    this.releaseConnection = release;
    // ioredis's own options type and BullMQ's differ in detail only.
    this.queue = new Queue(this.options.queueName, { connection: connection as ConnectionOptions });
    this.queue.on("error", (error) => (this.lastError = error));
    // What an earlier process left in the spool goes first.
    this.chain = Spool.open(this.options.spoolDir).then(
      (spool) => {
        this.spool = spool;
        return this.forwardSpool();
      },
      (error: unknown) => {
        this.lastError = error as Error;
      },
    );
    this.timer = setInterval(() => void this.flush().catch(() => undefined), Math.min(this.options.lingerMs, this.options.retryMs));
    this.timer.unref();
    this.confirmTimer = setInterval(() => void this.confirm(), this.options.confirmMs);
    this.confirmTimer.unref();
  }

  send(event: AuditEvent): void {
    if (this.closed) throw new Error("audit transport is closed: the event was not accepted");
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

  private cut(): SpooledBatch {
    const events = this.buffer.slice(0, this.urgentThrough > 0 ? Math.min(this.urgentThrough, this.options.batchSize) : this.options.batchSize);
    this.buffer = this.buffer.slice(events.length);
    const urgent = this.urgentThrough > 0;
    this.urgentThrough = Math.max(0, this.urgentThrough - events.length);
    if (this.dropping && this.buffer.length < this.options.maxBuffered / 2) {
      this.dropping = false;
      this.log.warn({ dropped: this.metrics.dropped }, "audit buffer has room again: no longer dropping");
    }
    return urgent ? { jobId: newEventId(), events, urgent } : { jobId: newEventId(), events };
  }

  private spillBuffer(): void {
    if (!this.spool) throw new Error(`audit buffer full (${this.buffer.length} events) and the spool is not open: ${this.lastError?.message ?? "still opening"}`);
    while (this.buffer.length > 0) this.toSpool(this.cut());
  }

  private toSpool(batch: SpooledBatch): void {
    if (!this.spool) throw new Error(`spool unavailable: ${this.lastError?.message ?? "not open"}`);
    this.spool.append(batch);
    this.metrics.spooled += batch.events.length;
  }

  private async add(batch: SpooledBatch): Promise<void> {
    // The epoch a batch is sent in tells, later, whether a vanished job was lost (see `confirm`).
    if (this.epoch === undefined) await withTimeout(this.readEpoch(), this.options.sendTimeoutMs, "reading Redis's epoch");
    await withTimeout(
      this.queue.add(BATCH_JOB_NAME, { events: batch.events }, {
        jobId: batch.jobId,
        priority: batch.urgent ? this.options.urgentPriority : this.options.priority,
        attempts: this.options.attempts,
        backoff: { type: "exponential", delay: 500 },
        removeOnComplete: 1000,
        removeOnFail: false,
      }),
      this.options.sendTimeoutMs,
      "adding a batch to the queue",
    );
    this.hold(batch);
  }

  private hold(batch: SpooledBatch): void {
    if (this.unconfirmed.has(batch.jobId)) return;
    this.unconfirmed.set(batch.jobId, { batch, epoch: this.epoch });
    this.unconfirmedEvents += batch.events.length;
    for (const [jobId, { batch: oldest }] of this.unconfirmed) {
      if (this.unconfirmedEvents <= this.options.maxUnconfirmed) break;
      this.unconfirmed.delete(jobId);
      this.unconfirmedEvents -= oldest.events.length;
      this.metrics.unguarded += oldest.events.length;
    }
  }

  /**
   * Looks the oldest unconfirmed batches up in the queue: completed ones (and ones failed for
   * good, which stay in Redis to be inspected) are let go. One the queue no longer knows was
   * either completed and removed (`removeOnComplete`) or lost with Redis's data: the epoch
   * tells them apart. A lost one is sent again: safe, as job ids and event ids are fixed and
   * the worker keeps each event once.
   */
  private async confirm(): Promise<void> {
    if (this.confirming || this.unconfirmed.size === 0) return;
    this.confirming = true;
    try {
      const held = [...this.unconfirmed.values()].slice(0, 500);
      // The job's own hash, read in O(1) (`getJobState` searches the waiting list): `name` is
      // there while the job exists, `finishedOn` once it completed or failed for good.
      const client = await this.queue.getBackend().client;
      const [epoch, fields] = await withTimeout(
        Promise.all([this.readEpoch(), Promise.all(held.map(({ batch }) => client.hmget(this.queue.toKey(batch.jobId), "name", "finishedOn")))]),
        this.options.sendTimeoutMs,
        "looking batches up",
      );
      const lost: SpooledBatch[] = [];
      held.forEach(({ batch, epoch: sentIn }, i) => {
        const [name, finishedOn] = fields[i]!;
        const gone = name === null;
        if (gone && sentIn !== epoch) lost.push(batch);
        else if (!gone && finishedOn === null) return;
        else this.metrics.confirmed += batch.events.length;
        this.unconfirmed.delete(batch.jobId);
        this.unconfirmedEvents -= batch.events.length;
      });
      if (lost.length === 0) return;
      const events = lost.reduce((n, b) => n + b.events.length, 0);
      this.log.error({ batches: lost.length, events }, "Redis lost batches no worker had recorded (restarted without persistence, or flushed): sending them again");
      this.metrics.resent += events;
      // On the chain, as any send: they keep their place before what is captured next.
      this.chain = this.chain.catch(() => undefined).then(async () => {
        for (const batch of lost) {
          try {
            await this.add(batch);
          } catch (error) {
            this.metrics.sendFailures += 1;
            this.lastError = error as Error;
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
    this.epoch ??= epoch;
    if (epoch !== this.epoch) {
      this.log.warn({ queue: this.options.queueName }, "Redis lost its data (restarted without persistence, or flushed): looking for batches of this transport it lost");
      this.epoch = epoch;
    }
    return epoch;
  }

  /** Events sent and not yet known to be recorded by a worker (held for re-sending). */
  get unrecorded(): number {
    return this.unconfirmedEvents;
  }

  /** `urgentOnly`: stop after the urgent events; the rest keep to the linger. */
  private async drain(urgentOnly = false): Promise<void> {
    await this.forwardSpool();
    while (this.buffer.length > 0 && (!urgentOnly || this.urgentThrough > 0)) {
      const batch = this.cut();
      try {
        if (this.spooling) {
          this.toSpool(batch);
          continue;
        }
        try {
          await this.add(batch);
          this.metrics.queued += batch.events.length;
          if (batch.urgent) this.metrics.expedited += batch.events.length;
          this.lastError = undefined;
        } catch (error) {
          this.metrics.sendFailures += 1;
          this.lastError = error as Error;
          this.toSpool(batch);
        }
      } catch (error) {
        // Neither Redis nor the spool took it: it stays first in line, and flush() says so.
        this.buffer.unshift(...batch.events);
        if (batch.urgent) this.urgentThrough += batch.events.length;
        throw error;
      }
    }
  }

  private lastForwardTry = 0;

  private async forwardSpool(): Promise<void> {
    if (!this.spool || this.spool.empty) return;
    if (Date.now() - this.lastForwardTry < this.options.retryMs && this.lastError) return;
    this.lastForwardTry = Date.now();
    try {
      await this.spool.forward(async (batch) => {
        await this.add(batch);
        this.metrics.forwarded += batch.events.length;
      });
      this.lastError = undefined;
    } catch (error) {
      this.metrics.sendFailures += 1;
      this.lastError = error as Error;
    }
  }

  /**
   * Flushes and closes. With Redis away, what is left stays in the spool for the next process
   * (or this one, reopened) to forward.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    clearInterval(this.confirmTimer);
    try {
      await this.flush();
    } finally {
      await this.spool?.close();
      await this.queue.close().catch(() => undefined);
      await this.releaseConnection();
    }
  }
}
