import { Worker, type ConnectionOptions, type Queue } from "bullmq";
import { pino, type Logger } from "pino";
import { DEFAULT_QUEUE_NAME, type SubjectKeyStore } from "@auditgraph/core";
import type { Ledger } from "@auditgraph/ledger";
import type { Graph } from "@auditgraph/graph";
import { processBatch, type BatchOutcome } from "./process.js";

export interface AuditWorkerOptions {
  connection: ConnectionOptions;
  ledger: Ledger;
  graph: Graph;
  /** Seal each event for its data subject before it is appended (see `processBatch`). */
  keyStore?: SubjectKeyStore;
  queueName?: string;
  concurrency?: number;
  /**
   * How long a job stays locked to a worker that stopped renewing the lock: a killed
   * worker's batch goes back to the queue after about this long (BullMQ's lock and stall check).
   */
  lockDurationMs?: number;
  logger?: Logger;
}

/** The BullMQ worker: ledger append -> projection, one job (a batch of events) at a time. */
export class AuditWorker {
  readonly worker: Worker<unknown, BatchOutcome>;
  private readonly log: Logger;

  constructor(options: AuditWorkerOptions) {
    this.log = options.logger ?? pino({ name: "auditgraph-worker" }, pino.destination(2));
    this.worker = new Worker<unknown, BatchOutcome>(
      options.queueName ?? DEFAULT_QUEUE_NAME,
      (job) => processBatch(options.ledger, options.graph, job.id ?? null, job.data, { keyStore: options.keyStore }),
      {
        connection: options.connection,
        concurrency: options.concurrency ?? 1,
        lockDuration: options.lockDurationMs ?? 30_000,
        stalledInterval: options.lockDurationMs ?? 30_000,
      },
    );
    // Counts and ids only: payloads may hold PII and never reach a log line.
    this.worker.on("completed", (job, outcome) => this.log.debug({ jobId: job.id, ...outcome }, "batch recorded"));
    this.worker.on("failed", (job, error) =>
      this.log.warn({ jobId: job?.id, attempt: job?.attemptsMade, error: error.message }, "batch failed; BullMQ retries it"),
    );
    this.worker.on("error", (error) => this.log.error({ error: error.message }, "worker error"));
  }

  waitUntilReady(): Promise<unknown> {
    return this.worker.waitUntilReady();
  }

  /** Graceful: the job in hand finishes (ledger and graph) before this resolves. */
  close(): Promise<void> {
    return this.worker.close();
  }
}

/** Resolves when the queue has nothing waiting, delayed or active; rejects after `timeoutMs`. */
export async function waitUntilIdle(queue: Queue, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const counts = await queue.getJobCounts("waiting", "active", "delayed", "prioritized", "waiting-children");
    const busy = Object.values(counts).reduce((a, b) => a + b, 0);
    if (busy === 0) return;
    if (Date.now() > deadline) throw new Error(`queue ${queue.name} still has ${busy} jobs after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
