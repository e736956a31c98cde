import type { Logger } from "pino";
import { z } from "zod";
import { SEVERITIES, ShardsOptionSchema, type SubjectKeyStore } from "@auditgraph/core";
import type { Ledger } from "@auditgraph/ledger";
import type { PolicySet, PolicyState, RedisConnection } from "@auditgraph/policy";
import { OtlpExportOptionsSchema } from "@auditgraph/otel";
import type { WorkerNotifierOptions } from "./notifications.js";
import { ProjectorSettingsSchema, type ProjectionGraph } from "./projector.js";

const isObject = (v: unknown) => typeof v === "object" && v !== null;
const hasMethods =
  (...names: string[]) =>
  (v: unknown) =>
    isObject(v) && names.every((n) => typeof (v as Record<string, unknown>)[n] === "function");

/** The worker's options; unknown keys are refused, named (a misspelt option is never dropped in silence). */
export const AuditWorkerOptionsSchema = z
  .object({
    /** ioredis options, with `clusterNodes` for a Redis Cluster (the queue name must then be a hash tag, `{...}`). */
    connection: z.custom<RedisConnection>(isObject, "must be Redis connection options (an object)"),
    ledger: z.custom<Ledger>(hasMethods("append", "readStream", "streams"), "must be a Ledger"),
    /** Where the projection goes (a `Graph`); it may be down: jobs are acknowledged once in the ledger. */
    graph: z.custom<ProjectionGraph>(hasMethods("projectRange"), "must be a Graph (with projectRange)"),
    /**
     * Apply the graph's migrations (`Graph.migrate`) before projecting, in the background with
     * retries while Neo4j is away: the worker takes jobs at once either way. Default true when the
     * graph has `migrate`.
     */
    migrate: z.boolean().optional(),
    /** The longest wait between two migration attempts while Neo4j is away (ms, default 10 s). */
    migrationRetryMaxMs: z.int().positive().optional(),
    /** Seal each event for its data subject before it is appended, and open them to project them (see `appendBatch`). */
    keyStore: z.custom<SubjectKeyStore>(hasMethods("keyFor", "byId"), "must be a SubjectKeyStore").optional(),
    queueName: z.string().min(1).optional(),
    concurrency: z.int().positive().optional(),
    /**
     * How long a job stays locked to a worker that stopped renewing the lock: a killed
     * worker's batch goes back to the queue after about this long (BullMQ's lock and stall check).
     */
    lockDurationMs: z.int().positive().optional(),
    /**
     * How many times a batch may be taken back from a worker that died holding it (killed,
     * crashed, out of memory) before BullMQ fails it for good. Running a batch again is safe (the
     * ledger dedups by event id), and a stall is not counted as one of the job's `attempts`; BullMQ's
     * own default (1) fails, never to be retried, a batch whose worker died twice while holding it,
     * and its events never reach the ledger. Default 100.
     */
    maxStalls: z.int().nonnegative().optional(),
    /** Batch size, retry backoff and memory bound of the projection (see `ProjectorSettingsSchema`). */
    projection: ProjectorSettingsSchema.strict().optional(),
    /**
     * Evaluated on every event of a job once it is in the ledger; findings are appended as
     * `policy.flag` events (and `escalation.opened` ones). Absent: no policies are evaluated (the
     * CLI's worker loads AUDITGRAPH_POLICIES, or the defaults).
     */
    policies: z.custom<PolicySet>(isObject, "must be a PolicySet").optional(),
    /** Counters of the stateful policies (default: Redis, on `connection`, shared by every worker). */
    policyState: z.custom<PolicyState>(hasMethods("add", "get"), "must be a PolicyState").optional(),
    /** Findings at or above it open an escalation whatever their action (default `high`). */
    escalationSeverity: z.enum(SEVERITIES).optional(),
    /**
     * Tools whose start must be recorded before they run: give the same names as the handlers'
     * `highImpactTools`. A run of one of them whose `tool.start` is not in the ledger raises a
     * critical `approval-integrity.no-start` flag (see `ApprovalIntegrity`); held runs are checked whatever this says.
     */
    highImpactTools: z.array(z.string().min(1)).optional(),
    /**
     * Notifies each escalation this worker opens (a signed webhook, a callback in code, or both),
     * in the background: a job is acked without waiting for a receiver. Every attempt is appended
     * to the escalation's tenant stream as an `escalation.notification` event.
     */
    notifier: z.custom<WorkerNotifierOptions>(isObject, "must be notifier options (an object)").optional(),
    /** On close, how long deliveries under way may still take before their retries are cut short (default 10 s). */
    notificationGraceMs: z.int().nonnegative().optional(),
    /** While the ledger cannot be written (disk full, read-only, database away), the longest wait between tries (default 5 s). */
    ledgerRetryMaxMs: z.int().positive().optional(),
    /** How often Redis's epoch is read, to notice (and report) that Redis lost its data (default 5 s). */
    epochCheckMs: z.int().positive().optional(),
    /**
     * Forward every event this worker records, once it is in the ledger, as OpenTelemetry GenAI
     * spans to an OTLP/HTTP endpoint, in the background (see `WorkerOtlpExport`, docs/otel-export.md).
     */
    otlpExport: OtlpExportOptionsSchema.optional(),
    /**
     * How long a job whose ledger stream another process is writing (its writer lock taken, a
     * segment ledger with `lockWaitMs: 0` failing at once) goes back to the queue for a moment,
     * spending no attempt, while this worker takes other jobs (see `BusyStreams`); then it fails
     * like any error. Default 0: never returned. `auditgraph worker` sets 30 s.
     */
    busyStreamReturnMs: z.int().nonnegative().optional(),
    /**
     * Each tenant's shard count (`AUDITGRAPH_SHARDS`'s text, or one count), for the jobs that do
     * not carry their producer's (OTLP ingest, older agents, replays); default that variable, else 1.
     */
    shards: ShardsOptionSchema.optional(),
    logger: z.custom<Logger>(hasMethods("info", "warn", "error", "debug"), "must be a pino Logger").optional(),
  })
  .strict();
export type AuditWorkerOptions = z.input<typeof AuditWorkerOptionsSchema>;
