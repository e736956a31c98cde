import { Worker, type ConnectionOptions, type Queue } from "bullmq";
import { pino, type Logger } from "pino";
import { DEFAULT_QUEUE_NAME, bullConnection, epochKey, newEventId, readEpoch, type RedisConnection, type Severity, type SubjectKeyStore } from "@auditgraph/core";
import { ledgerUnavailable, type Ledger } from "@auditgraph/ledger";
import type { PolicySet, PolicyState } from "@auditgraph/policy";
import { appendBatch, type AppendOutcome } from "./process.js";
import { PolicyEngine } from "./policies.js";
import { RedisPolicyState } from "./policy-state.js";
import { WorkerNotifications, type WorkerNotifierOptions } from "./notifications.js";
import { StreamProjector, type ProjectionGraph, type ProjectorSettings, type StreamLag } from "./projector.js";

export interface AuditWorkerOptions {
  /** ioredis options, with `clusterNodes` for a Redis Cluster (the queue name must then be a hash tag, `{...}`). */
  connection: RedisConnection;
  ledger: Ledger;
  /** Where the projection goes (a `Graph`); it may be down: jobs are acknowledged once in the ledger. */
  graph: ProjectionGraph;
  /** Seal each event for its data subject before it is appended, and open them to project them (see `appendBatch`). */
  keyStore?: SubjectKeyStore;
  queueName?: string;
  concurrency?: number;
  /**
   * How long a job stays locked to a worker that stopped renewing the lock: a killed
   * worker's batch goes back to the queue after about this long (BullMQ's lock and stall check).
   */
  lockDurationMs?: number;
  /**
   * How many times a batch may be taken back from a worker that died holding it (killed,
   * crashed, out of memory) before BullMQ fails it for good. Running a batch again is safe (the
   * ledger dedups by event id), and a stall is not counted as one of the job's `attempts`; BullMQ's
   * own default (1) fails, never to be retried, a batch whose worker died twice while holding it,
   * and its events never reach the ledger. Default 100.
   */
  maxStalls?: number;
  /** Batch size, retry backoff and memory bound of the projection (see `ProjectorSettingsSchema`). */
  projection?: ProjectorSettings;
  /**
   * Evaluated on every event of a job once it is in the ledger; findings are appended as
   * `policy.flag` events (and `escalation.opened` ones). Absent: no policies are evaluated (the
   * CLI's worker loads AUDITGRAPH_POLICIES, or the defaults).
   */
  policies?: PolicySet;
  /** Counters of the stateful policies (default: Redis, on `connection`, shared by every worker). */
  policyState?: PolicyState;
  /** Findings at or above it open an escalation whatever their action (default `high`). */
  escalationSeverity?: Severity;
  /**
   * Notifies each escalation this worker opens (a signed webhook, a callback in code, or both),
   * in the background: a job is acked without waiting for a receiver. Every attempt is appended
   * to the escalation's tenant stream as an `escalation.notification` event.
   */
  notifier?: WorkerNotifierOptions;
  /** On close, how long deliveries under way may still take before their retries are cut short (default 10 s). */
  notificationGraceMs?: number;
  /** While the ledger cannot be written (disk full, read-only, database away), the longest wait between tries (default 5 s). */
  ledgerRetryMaxMs?: number;
  /** How often Redis's epoch is read, to notice (and report) that Redis lost its data (default 5 s). */
  epochCheckMs?: number;
  logger?: Logger;
}

/** Whether the ledger takes writes, as this worker last found it. */
export interface LedgerHealth {
  writable: boolean;
  /** Why not, e.g. `ENOSPC: no space left on the ledger's disk`. */
  reason?: string;
  /** Since when (ISO time), and the job held meanwhile. */
  since?: string;
  jobId?: string | null;
}

/** The in-process workers of each queue, so that `waitUntilIdle` can wait for their projection too. */
const workersOf = new Map<string, Set<AuditWorker>>();

/**
 * The BullMQ worker: a job (a batch of events) is appended to the ledger and acknowledged; the
 * projection follows in the background, stream by stream from its stored cursor, so a slow or
 * unreachable Neo4j never holds up appends or acks (see `StreamProjector`). At start it catches
 * every stream up from its cursor: what a crashed worker appended but never projected included.
 */
export class AuditWorker {
  readonly worker: Worker<unknown, AppendOutcome>;
  readonly projector: StreamProjector;
  private readonly log: Logger;
  private readonly queueName: string;
  private readonly ownedState: RedisPolicyState | undefined;
  readonly policyEngine: PolicyEngine | undefined;
  readonly notifications: WorkerNotifications | undefined;
  private readonly notificationGraceMs: number;
  private readonly ledgerRetryMaxMs: number;
  private health: LedgerHealth = { writable: true };
  private epoch: string | undefined;
  private readonly epochTimer: NodeJS.Timeout;
  private readonly releaseConnection: () => Promise<void>;
  /** When this worker found Redis had lost its data (see `epochKey`). */
  readonly redisLosses: string[] = [];
  /** Cut short the waits for a writable ledger: the worker is closing. */
  private readonly closing = new AbortController();

  constructor(options: AuditWorkerOptions) {
    this.log = options.logger ?? pino({ name: "auditgraph-worker" }, pino.destination(2));
    this.queueName = options.queueName ?? DEFAULT_QUEUE_NAME;
    this.projector = new StreamProjector({
      ...options.projection,
      ledger: options.ledger,
      graph: options.graph,
      logger: this.log,
      ...(options.keyStore ? { keyStore: options.keyStore } : {}),
    });
    this.notificationGraceMs = options.notificationGraceMs ?? 10_000;
    this.ledgerRetryMaxMs = options.ledgerRetryMaxMs ?? 5_000;
    if (options.notifier) this.notifications = new WorkerNotifications(options.notifier, options.ledger, (appended) => this.projector.offer(appended), this.log);
    if (options.policies) {
      const state =
        options.policyState ??
        (this.ownedState = new RedisPolicyState({ redis: options.connection }));
      this.policyEngine = new PolicyEngine({
        policies: options.policies,
        state,
        ledger: options.ledger,
        logger: this.log,
        ...(options.escalationSeverity ? { escalationSeverity: options.escalationSeverity } : {}),
        ...(options.keyStore ? { keyStore: options.keyStore } : {}),
      });
    }
    // A Worker's own connection blocks: commands must wait out a reconnect, never give up.
    const blocking = bullConnection(options.connection, { maxRetriesPerRequest: null });
    this.releaseConnection = blocking.release;
    this.worker = new Worker<unknown, AppendOutcome>(
      this.queueName,
      (job) => this.untilRecorded(job.id ?? null, async () => {
        const { outcome, streams, keys } = await appendBatch(options.ledger, job.id ?? null, job.data, { keyStore: options.keyStore });
        for (const stream of streams) this.projector.offer(stream);
        // After the append: a flag is evidence about recorded events, and the job is acked only
        // once its flags are in the ledger too (a failure here retries the job; ids dedup).
        for (const stream of this.policyEngine ? streams : []) {
          const raised = await this.policyEngine!.raise(stream, keys);
          if (!raised) continue;
          this.projector.offer(raised.appended);
          // Escalation-first: the receivers hear of it now; the delivery never holds the ack.
          for (const opened of raised.opened) this.notifications?.notify(opened);
          this.log.info({ jobId: job.id, streamId: stream.streamId, flags: raised.flags, escalations: raised.escalations, newlyAppended: raised.appended.appended }, "policy findings recorded");
        }
        return outcome;
      }),
      {
        connection: blocking.connection as ConnectionOptions,
        concurrency: options.concurrency ?? 1,
        lockDuration: options.lockDurationMs ?? 30_000,
        stalledInterval: options.lockDurationMs ?? 30_000,
        maxStalledCount: options.maxStalls ?? 100,
      },
    );
    // Counts and ids only: payloads may hold PII and never reach a log line.
    this.worker.on("completed", (job, outcome) => this.log.debug({ jobId: job.id, ...outcome }, "batch recorded"));
    this.worker.on("failed", (job, error) => {
      const final = job && (job.attemptsMade >= (job.opts.attempts ?? 1) || /stalled more than allowable limit/.test(error.message));
      if (!final) return this.log.warn({ jobId: job?.id, attempt: job?.attemptsMade, error: error.message }, "batch failed; BullMQ retries it");
      // Out of retries: kept as a dead letter with the whole batch, so that it is seen
      // (`auditgraph dead-letters`) and can be replayed, not left in BullMQ's failed set alone.
      const letter = { id: `${job.id}`, recordedAt: new Date().toISOString(), jobId: job.id ?? null, reason: `failed for good after ${job.attemptsMade} attempts: ${error.message}`, input: job.data };
      options.ledger.deadLetter(letter).then(
        () => this.log.error({ jobId: job.id, attempts: job.attemptsMade, error: error.message }, "batch failed for good: dead-lettered, replay it with `auditgraph dead-letters replay`"),
        (failure: Error) => this.log.error({ jobId: job.id, error: error.message, deadLetterError: failure.message }, "batch failed for good, and could not be dead-lettered: it stays in BullMQ's failed set"),
      );
    });
    this.worker.on("error", (error) => this.log.error({ error: error.message }, "worker error"));
    this.epochTimer = setInterval(() => void this.checkEpoch(), options.epochCheckMs ?? 5_000);
    this.epochTimer.unref();
    void this.checkEpoch();
    const peers = workersOf.get(this.queueName) ?? new Set();
    workersOf.set(this.queueName, peers.add(this));
    this.projector.resume().catch((error: Error) => this.log.error({ error: error.message }, "could not list the ledger's streams to resume their projection"));
  }

  /**
   * Runs a job's work until it is recorded. While the ledger cannot be written (a full or
   * read-only disk, a database away) the job is held, unacknowledged, and tried again with a
   * backoff; with every slot holding one, the worker takes no other. Failing it instead would
   * spend its retries, and every other job's, while the disk stays full. Other errors fail the
   * job as usual (BullMQ retries it).
   */
  private async untilRecorded<T>(jobId: string | null, work: () => Promise<T>): Promise<T> {
    let lastSaid = 0;
    for (let wait = 100; ; wait = Math.min(wait * 2, this.ledgerRetryMaxMs)) {
      try {
        const result = await work();
        if (!this.health.writable) {
          this.log.warn({ jobId, reason: this.health.reason, since: this.health.since }, "the ledger takes writes again: resuming");
          this.health = { writable: true };
        }
        return result;
      } catch (error) {
        const reason = ledgerUnavailable(error);
        if (!reason || this.closing.signal.aborted) throw error;
        if (this.health.writable) this.health = { writable: false, reason, since: new Date().toISOString(), jobId };
        if (Date.now() - lastSaid > 30_000) {
          lastSaid = Date.now();
          this.log.error(
            { jobId, reason, since: this.health.since, error: (error as Error).message },
            "the ledger cannot be written: holding this batch unacknowledged, taking no other, trying again",
          );
        }
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, wait);
          this.closing.signal.addEventListener("abort", () => (clearTimeout(timer), resolve()), { once: true });
        });
      }
    }
  }

  /**
   * Redis restarted without persistence (or flushed) loses the jobs it held: the producers
   * re-send the batches they still hold (see `QueueTransport.confirm`); anything else is gone,
   * and this says so, loudly, rather than let it pass.
   */
  private async checkEpoch(): Promise<void> {
    try {
      const epoch = await readEpoch(await this.worker.getBackend().client, epochKey(this.queueName, this.worker.opts.prefix), newEventId());
      if (this.epoch !== undefined && epoch !== this.epoch) {
        this.redisLosses.push(new Date().toISOString());
        this.log.error(
          { queue: this.queueName },
          "Redis lost its data (restarted without persistence, or flushed): the jobs it held and no worker had recorded are gone, but for those their producers still hold and send again; run Redis with AOF (appendonly yes) to keep them",
        );
      }
      this.epoch = epoch;
    } catch {
      // Redis away: looked at again next time.
    }
  }

  /** Whether the ledger takes writes, as this worker last found it (see `untilRecorded`). */
  ledgerHealth(): LedgerHealth {
    return { ...this.health };
  }

  /** Resolves once the projection has caught up with everything this worker appended (and, from start, the ledger's end). */
  projected(timeoutMs = 60_000): Promise<void> {
    return this.projector.settled(timeoutMs);
  }

  /** Where each stream's projection stands in this worker. */
  projectionLag(): StreamLag[] {
    return this.projector.lag();
  }

  waitUntilReady(): Promise<unknown> {
    return this.worker.waitUntilReady();
  }

  /**
   * Graceful: the job in hand finishes, then what this worker appended is projected while the
   * graph takes it (the next worker resumes from the cursor otherwise) before this resolves.
   */
  async close(): Promise<void> {
    this.closing.abort();
    clearInterval(this.epochTimer);
    await this.worker.close();
    // Before the projection closes: the attempts recorded meanwhile are projected too.
    await this.notifications?.close(this.notificationGraceMs);
    await this.projector.close();
    await this.ownedState?.close();
    await this.releaseConnection();
    workersOf.get(this.queueName)?.delete(this);
  }
}

/**
 * Resolves when the queue has nothing waiting, delayed or active and, unless `projection` is
 * false, the workers of this process on that queue have projected what they appended; rejects
 * after `timeoutMs`. Workers in other processes are not waited for: see `projectionLag`.
 */
export async function waitUntilIdle(queue: Queue, timeoutMs = 60_000, { projection = true }: { projection?: boolean } = {}): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const counts = await queue.getJobCounts("waiting", "active", "delayed", "prioritized", "waiting-children");
    const busy = Object.values(counts).reduce((a, b) => a + b, 0);
    if (busy === 0) break;
    if (Date.now() > deadline) throw new Error(`queue ${queue.name} still has ${busy} jobs after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
  if (!projection) return;
  for (const worker of workersOf.get(queue.name) ?? []) await worker.projected(Math.max(1, deadline - Date.now()));
}
