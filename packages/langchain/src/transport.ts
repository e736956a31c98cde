import { Queue, type ConnectionOptions } from "bullmq";
import { BATCH_JOB_NAME, DEFAULT_QUEUE_NAME, newEventId, type AuditEvent } from "@auditgraph/core";

/** Where the handler hands events. `send` must return at once: it runs on the agent's path. */
export interface Transport {
  send(event: AuditEvent): void;
  /** Resolves when every event sent so far is on the queue. */
  flush(): Promise<void>;
  close(): Promise<void>;
}

export interface QueueTransportOptions {
  connection: ConnectionOptions;
  queueName?: string;
  /** Events per job. */
  batchSize?: number;
  /** Longest an event waits in memory before its batch is sent. */
  flushIntervalMs?: number;
  /** Attempts the worker gets at each job before it is failed for good. */
  attempts?: number;
}

/**
 * Batches events in memory and adds one BullMQ job per batch. `send` only pushes to an array;
 * Redis is spoken to on a timer or when a batch fills, never awaited by the agent. A batch
 * that cannot be added stays in memory, in order, and is tried again.
 */
export class QueueTransport implements Transport {
  readonly queue: Queue;
  private buffer: AuditEvent[] = [];
  private sending: Promise<void> = Promise.resolve();
  private readonly timer: NodeJS.Timeout;
  private readonly batchSize: number;
  private readonly attempts: number;
  private closed = false;
  lastError: Error | undefined;

  constructor(options: QueueTransportOptions) {
    this.queue = new Queue(options.queueName ?? DEFAULT_QUEUE_NAME, { connection: options.connection });
    this.batchSize = options.batchSize ?? 100;
    this.attempts = options.attempts ?? 20;
    this.timer = setInterval(() => void this.flush().catch(() => undefined), options.flushIntervalMs ?? 100);
    this.timer.unref();
  }

  send(event: AuditEvent): void {
    if (this.closed) throw new Error("audit transport is closed: the event was not accepted");
    this.buffer.push(event);
    if (this.buffer.length >= this.batchSize) void this.flush().catch(() => undefined);
  }

  flush(): Promise<void> {
    // One send at a time keeps batches in the order their events were captured.
    this.sending = this.sending.catch(() => undefined).then(() => this.drain());
    return this.sending;
  }

  private async drain(): Promise<void> {
    while (this.buffer.length > 0) {
      const batch = this.buffer.slice(0, this.batchSize);
      try {
        await this.queue.add(
          BATCH_JOB_NAME,
          { events: batch },
          {
            jobId: newEventId(),
            attempts: this.attempts,
            backoff: { type: "exponential", delay: 500 },
            removeOnComplete: 1000,
            removeOnFail: false,
          },
        );
      } catch (error) {
        this.lastError = error as Error;
        throw new Error(`audit events not yet queued (${this.buffer.length} kept in memory): ${(error as Error).message}`);
      }
      this.buffer = this.buffer.slice(batch.length);
      this.lastError = undefined;
    }
  }

  /** Events captured but not yet on the queue. */
  get pending(): number {
    return this.buffer.length;
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    try {
      await this.flush();
    } finally {
      await this.queue.close();
    }
  }
}
