import { Queue, Worker, type ConnectionOptions, type Job, type JobJson } from "bullmq";
import type { Cluster, Redis } from "ioredis";
import { pino, type Logger } from "pino";
import { AuditgraphError, DEFAULT_QUEUE_NAME, ONE_SHARD, SharedEnvSchema, epochKey, logLevelOf, newEventId, parseWith, type Shards } from "@auditgraph/core";
import { bullConnection, describeRedis, readEpoch, redisClient, type RedisConnection } from "@auditgraph/policy";
import { UnparsedJobData, type AppendOutcome } from "./process.js";
import { PolicyEngine } from "./policies.js";
import { RedisPolicyState } from "./policy-state.js";
import { WorkerNotifications } from "./notifications.js";
import { StreamProjector, type ProjectionGraph, type StreamLag } from "./projector.js";
import { AuditWorkerOptionsSchema, type AuditWorkerOptions } from "./options.js";
import { RedisHealth, type RedisState } from "./redis-health.js";
import { SchemaGate, type GraphState } from "./schema-gate.js";
import { QUEUE_STATES, WorkerMetrics } from "./metrics.js";
import { announceEscalations } from "./escalation-changes.js";
import { EventRecorder } from "./recorder.js";
import { recordJob } from "./pipeline.js";
import { LedgerHold, type LedgerHealth } from "./ledger-hold.js";
import { WorkerOtlpExport } from "./otlp-export.js";
import { ShardCounts } from "./shard-counts.js";
import { BusyStreams } from "./busy-streams.js";
import { setTimeout as sleep } from "node:timers/promises";

export { AuditWorkerOptionsSchema, type AuditWorkerOptions } from "./options.js";

export type { LedgerHealth } from "./ledger-hold.js";

/** What `/readyz` answers: ready when Redis and the ledger are usable; Neo4j's state is told, not required. */
export interface Readiness {
  ready: boolean;
  redis: RedisState;
  ledger: LedgerHealth;
  neo4j: GraphState & {
    state: "up" | "down" | "starting";
    /** `setAside`: records this worker set aside as projection dead letters (the graph refused them for good). */
    projection: { lagEvents: number; failingStreams: number; setAside: number; lastError?: string };
  };
}

/**
 * BullMQ's worker, but a job whose data is not JSON is handed over as `UnparsedJobData` rather
 * than thrown on: BullMQ parses the data after moving the job to active, and a parse error there
 * leaves the job active, unprocessed, until it stalls and is taken again, for ever, one worker
 * slot lost each time. Handed over, it is dead-lettered like any other bad job.
 */
class PoisonTolerantWorker extends Worker<unknown, AppendOutcome> {
  protected override createJob(json: JobJson, jobId: string): Job<unknown, AppendOutcome> {
    try {
      return super.createJob(json, jobId);
    } catch (error) {
      if (!(error instanceof SyntaxError) || typeof json.data !== "string" || parsesAsJson(json.data)) throw error;
      const job = super.createJob({ ...json, data: "null" }, jobId);
      job.data = new UnparsedJobData(json.data);
      return job;
    }
  }
}

function parsesAsJson(text: string): boolean {
  try {
    JSON.parse(text || "{}");
    return true;
  } catch {
    return false;
  }
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
  /** Every recorded event out as GenAI spans, when `otlpExport` is given. */
  readonly otlpExport: WorkerOtlpExport | undefined;
  /** Jobs returned to the queue while another worker writes their stream (see `BusyStreams`). */
  readonly busyStreams: BusyStreams;
  /** Each tenant's shard count, for jobs that do not carry their producer's (its `shards` option, else `AUDITGRAPH_SHARDS`). */
  readonly shards: Shards;
  private readonly notificationGraceMs: number;
  /** Holds a job while the ledger cannot be written (see `LedgerHold`). */
  private readonly ledgerHold: LedgerHold;
  private epoch: string | undefined;
  private readonly epochTimer: NodeJS.Timeout;
  private readonly releaseConnection: () => Promise<void>;
  /** When this worker found Redis had lost its data (see `epochKey`). */
  readonly redisLosses: string[] = [];
  /** Cut short the waits for a writable ledger: the worker is closing. */
  private readonly closing = new AbortController();
  /** This worker's Prometheus metrics (a registry of its own; see `startWorkerHttp`). */
  readonly metrics: WorkerMetrics;
  /** Whether Redis answers; every Redis client of the worker reports its errors to it. */
  private readonly redis: RedisHealth;
  /** The graph's migrations, applied in the background; the projection waits for them. */
  private readonly schema: SchemaGate;
  private readonly stateClient: Redis | Cluster | undefined;
  private counts: { queue: Queue; release: () => Promise<void> } | undefined;
  private readonly connectionOptions: RedisConnection;

  constructor(input: AuditWorkerOptions) {
    const options = parseWith(AuditWorkerOptionsSchema, input, "worker options");
    this.log = options.logger ?? pino({ name: "auditgraph-worker", level: logLevelOf() }, pino.destination(2));
    this.queueName = options.queueName ?? DEFAULT_QUEUE_NAME;
    this.connectionOptions = options.connection;
    // Hosts and ports only: the connection's credentials never reach a log line.
    this.log.info({ redis: describeRedis(options.connection), queue: this.queueName }, "audit worker starting");
    this.redis = new RedisHealth(options.connection, this.log);
    this.metrics = new WorkerMetrics({
      projectionLag: () => this.projector.lag().reduce((sum, l) => sum + Math.max(0, l.target - (l.projected ?? -1)), 0),
      queueCounts: () => this.queueCounts(),
      redisUp: () => this.redis.state().up,
      ledgerWritable: () => this.ledgerHold.state().writable,
      graphMigrated: () => this.schema.state().migrated,
      busyReturns: () => this.busyStreams.returned,
    });
    const graph = options.graph as ProjectionGraph & { migrate?: (options: { signal: AbortSignal }) => Promise<unknown> };
    const retryMaxMs = options.projection?.retryMaxMs ?? 30_000;
    this.schema = new SchemaGate({
      graph,
      migrate: options.migrate !== false && typeof graph.migrate === "function" ? (signal) => graph.migrate!({ signal }) : undefined,
      logger: this.log,
      retryMinMs: options.projection?.retryMinMs ?? 250,
      retryMaxMs: options.migrationRetryMaxMs ?? Math.min(retryMaxMs, 10_000),
      observeProjection: (seconds) => this.metrics.projectionSeconds.observe(seconds),
    });
    this.projector = new StreamProjector({
      ...options.projection,
      ledger: options.ledger,
      graph: this.schema.graph,
      logger: this.log,
      onSetAside: () => this.metrics.projectionDeadLetters.inc(),
      stages: this.metrics.stages,
      // Escalations now in the graph are announced (ids only) on BullMQ's own client: the console's inbox refreshes.
      onProjected: (records) => void (this.closing.signal.aborted || announceEscalations(() => this.worker.getBackend().client, records)),
      ...(options.keyStore ? { keyStore: options.keyStore } : {}),
    });
    this.notificationGraceMs = options.notificationGraceMs ?? 10_000;
    this.ledgerHold = new LedgerHold(this.log, options.ledgerRetryMaxMs ?? 5_000, this.closing.signal);
    if (options.otlpExport) this.otlpExport = new WorkerOtlpExport(options.otlpExport, options.keyStore, this.metrics, this.log);
    // Every append of the worker (a job's events, the policies' flags, the notifier's attempts) is counted and projected (and exported).
    const recorder = new EventRecorder({
      ledger: options.ledger,
      ...(options.keyStore ? { keyStore: options.keyStore } : {}),
      onAppended: (appended) => {
        this.metrics.eventsAppended.inc(appended.appended);
        this.projector.offer(appended);
        this.otlpExport?.offer(appended);
      },
    });
    if (options.notifier) this.notifications = new WorkerNotifications(options.notifier, recorder, this.log, options.ledger);
    if (options.policies) {
      let state = options.policyState;
      if (!state) {
        // A client of the worker's, so that its reconnect errors go to the outage log, not to the console.
        const client = (this.stateClient = redisClient(options.connection, { maxRetriesPerRequest: null }));
        client.on("error", (error: Error) => {
          if (!this.redis.report(error)) this.log.error({ error: error.message }, "policy state: Redis error");
        });
        state = this.ownedState = new RedisPolicyState({ redis: client });
      }
      this.policyEngine = new PolicyEngine({
        policies: options.policies,
        state,
        ledger: options.ledger,
        logger: this.log,
        ...(options.escalationSeverity ? { escalationSeverity: options.escalationSeverity } : {}),
        ...(options.keyStore ? { keyStore: options.keyStore } : {}),
        ...(options.highImpactTools ? { highImpactTools: options.highImpactTools } : {}),
      });
    }
    this.busyStreams = new BusyStreams(options.busyStreamReturnMs ?? 0);
    this.shards = options.shards ?? parseWith(SharedEnvSchema.pick({ AUDITGRAPH_SHARDS: true }), process.env, "environment").AUDITGRAPH_SHARDS ?? ONE_SHARD;
    // What a job goes through (see `recordJob`), held while the ledger cannot be written.
    const parts = {
      ledger: options.ledger,
      recorder,
      shards: this.shards,
      shardCounts: new ShardCounts(options.ledger, recorder),
      policyEngine: this.policyEngine,
      notifications: this.notifications,
      metrics: this.metrics,
      log: this.log,
    };
    // A Worker's own connection blocks: commands must wait out a reconnect, never give up.
    const blocking = bullConnection(options.connection, { maxRetriesPerRequest: null });
    this.releaseConnection = blocking.release;
    this.worker = new PoisonTolerantWorker(
      this.queueName,
      (job, token) => this.busyStreams.run(job, token, () => this.ledgerHold.untilRecorded(job.id ?? null, () => recordJob(parts, job.id ?? null, job.data))),
      {
        connection: blocking.connection as ConnectionOptions,
        concurrency: options.concurrency ?? 1,
        lockDuration: options.lockDurationMs ?? 30_000,
        stalledInterval: options.lockDurationMs ?? 30_000,
        maxStalledCount: options.maxStalls ?? 100,
        // A recorded batch leaves Redis at once, whoever added it (BullMQ would keep 1,000 with
        // their plaintext). Failed jobs keep BullMQ's default (kept): one out of retries is removed
        // by the "failed" handler below once it is dead-lettered, never before.
        removeOnComplete: { count: 0 },
      },
    );
    // Counts and ids only: payloads may hold PII and never reach a log line.
    this.worker.on("completed", (job, outcome) => this.log.debug({ jobId: job.id, ...outcome }, "batch recorded"));
    this.worker.on("failed", (job, error) => {
      const final = job && (job.attemptsMade >= (job.opts.attempts ?? 1) || /stalled more than allowable limit/.test(error.message));
      if (!final) return this.log.warn({ jobId: job?.id, attempt: job?.attemptsMade, error: error.message }, "batch failed; BullMQ retries it");
      // Out of retries: kept as a dead letter with the whole batch, so that it is seen
      // (`auditgraph dead-letters`) and can be replayed, not left in BullMQ's failed set alone.
      const letter = {
        id: `${job.id}`,
        recordedAt: new Date().toISOString(),
        jobId: job.id ?? null,
        reason: `failed for good after ${job.attemptsMade} attempts: ${error.message}`,
        input: job.data instanceof UnparsedJobData ? job.data.text : job.data,
      };
      options.ledger.deadLetter(letter).then(
        () => {
          this.metrics.deadLetters.inc();
          this.log.error(
            { jobId: job.id, attempts: job.attemptsMade, error: error.message },
            "batch failed for good: dead-lettered, replay it with `auditgraph dead-letters replay`",
          );
          // Only now, with the batch in the dead letters, do the job and its plaintext leave Redis
          // (failed jobs are kept until then: see `batchJobOptions`).
          job
            .remove()
            .catch((failure: Error) =>
              this.log.warn({ jobId: job.id, error: failure.message }, "dead-lettered batch could not be removed from BullMQ's failed set"),
            );
        },
        (failure: Error) =>
          this.log.error(
            { jobId: job.id, error: error.message, deadLetterError: failure.message },
            "batch failed for good, and could not be dead-lettered: it stays in BullMQ's failed set",
          ),
      );
    });
    // Connection errors come by the dozen per outage (every retry of every client): the outage logs them once.
    this.worker.on("error", (error) => {
      if (this.closing.signal.aborted || this.redis.report(error)) return;
      this.log.error({ error: error.message }, "worker error");
    });
    this.epochTimer = setInterval(() => void this.checkEpoch(), options.epochCheckMs ?? 5_000);
    this.epochTimer.unref();
    void this.checkEpoch();
    const peers = workersOf.get(this.queueName) ?? new Set();
    workersOf.set(this.queueName, peers.add(this));
    this.projector.resume().catch((error: Error) => this.log.error({ error: error.message }, "could not list the ledger's streams to resume their projection"));
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

  /** Whether the ledger takes writes, as this worker last found it (see `LedgerHold`). */
  ledgerHealth(): LedgerHealth {
    return this.ledgerHold.state();
  }

  /**
   * Whether this worker can do its work: Redis answers (asked now) and the ledger takes writes.
   * The graph is reported, not required: appends and acks go on without it.
   */
  async readiness(): Promise<Readiness> {
    const redisUp = await this.redis.probe();
    const ledger = this.ledgerHealth();
    const lag = this.projectionLag();
    const failing = lag.filter((l) => l.failures > 0);
    const schema = this.schema.state();
    const neo4j: Readiness["neo4j"] = {
      state: (!schema.migrated && schema.failures > 0) || failing.length > 0 ? "down" : schema.migrated ? "up" : "starting",
      ...schema,
      projection: {
        lagEvents: lag.reduce((sum, l) => sum + Math.max(0, l.target - (l.projected ?? -1)), 0),
        failingStreams: failing.length,
        setAside: lag.reduce((sum, l) => sum + l.setAside, 0),
        ...(failing[0]?.lastError ? { lastError: failing[0].lastError } : {}),
      },
    };
    return { ready: redisUp && ledger.writable, redis: { ...this.redis.state(), up: redisUp }, ledger, neo4j };
  }

  /** Resolves once the graph's migrations are applied (they are retried in the background until then). */
  migrated(): Promise<void> {
    return this.schema.migrated();
  }

  /** Jobs by state, or undefined while Redis does not answer (within 2 s). */
  private async queueCounts(): Promise<Record<string, number> | undefined> {
    if (!this.redis.state().up || this.closing.signal.aborted) return undefined;
    if (!this.counts) {
      const { connection, release } = bullConnection(this.connectionOptions, { enableOfflineQueue: false });
      const queue = new Queue(this.queueName, { connection: connection as ConnectionOptions, prefix: this.worker.opts.prefix });
      queue.on("error", (error) => void this.redis.report(error));
      this.counts = { queue, release };
    }
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        this.counts.queue.getJobCounts(...QUEUE_STATES),
        new Promise<undefined>((resolve) => (timer = setTimeout(resolve, 2_000, undefined))),
      ]);
    } catch {
      return undefined;
    } finally {
      clearTimeout(timer);
    }
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
    // Before the projection closes, after the last append: the export flushes beside it, within its own deadline.
    const exported = this.otlpExport?.close();
    const projected = this.projector.close();
    // After the projection is told it is closing (so the calls refused now are not retried): one
    // waiting on a migration attempt stops; the next start resumes from the cursor. A migration
    // under way finishes and frees its lock before this resolves, so the caller may close the graph.
    const unmigrated = this.schema.close();
    await projected;
    await unmigrated;
    await exported;
    await this.ownedState?.close();
    await this.stateClient?.quit().catch(() => this.stateClient?.disconnect());
    if (this.counts) {
      await this.counts.queue.close().catch(() => undefined);
      await this.counts.release();
    }
    await this.redis.close();
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
    if (Date.now() > deadline) throw new AuditgraphError("AUDITGRAPH_E_QUEUE_NOT_IDLE", `queue ${queue.name} still has ${busy} jobs after ${timeoutMs} ms`);
    await sleep(50);
  }
  if (!projection) return;
  for (const worker of workersOf.get(queue.name) ?? []) await worker.projected(Math.max(1, deadline - Date.now()));
}
