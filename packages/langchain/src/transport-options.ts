import { z } from "zod";
import {
  BATCH_ATTEMPTS,
  BATCH_PRIORITY,
  HASH_TAG_MESSAGE,
  ONE_SHARD,
  QUEUE_NAME_PATTERN,
  SharedEnvSchema,
  ShardsOptionSchema,
  URGENT_BATCH_PRIORITY,
  ValidationError,
  isHashTag,
  parseWith,
  type SharedEnv,
  type Shards,
} from "@auditgraph/core";
import { redisConnectionOf, type RedisConnection } from "@auditgraph/policy";
import type { Logger } from "pino";

const SUBJECT = "QueueTransport options";

/**
 * Options of a `QueueTransport`. `connection`, `queueName` and `spoolDir` default to the
 * variables the worker reads (AUDITGRAPH_REDIS_URL and AUDITGRAPH_REDIS_CLUSTER_NODES,
 * AUDITGRAPH_QUEUE, AUDITGRAPH_SPOOL_DIR), so that one environment configures both sides; an
 * option given here wins over its variable. Unknown keys are refused, named.
 */
export const QueueTransportOptionsSchema = z
  .strictObject({
    /** ioredis options for the BullMQ queue (host, port, password, tls, ...), with `clusterNodes` for a Redis Cluster. */
    connection: z.custom<RedisConnection>((v) => typeof v === "object" && v !== null, "must be ioredis options (host, port, ...)").optional(),
    queueName: z.string().regex(QUEUE_NAME_PATTERN, "letters, digits, _ - and {} (hash tags) only").optional(),
    /** Where batches go while Redis cannot be reached; one process per directory. */
    spoolDir: z.string().min(1).optional(),
    /** Where the variables above are read from when an option is not given (default `process.env`). */
    env: z.custom<Record<string, string | undefined>>((v) => typeof v === "object" && v !== null, "must be an object of variables").optional(),
    /**
     * How many shards each tenant's events spread over, by trace id, as `AUDITGRAPH_SHARDS` says
     * it (`8`, or `acme:8,*:1`; default: that variable, else 1). A batch holds one shard's
     * events, so each job needs one stream's writer; the worker places them by this count.
     */
    shards: ShardsOptionSchema.optional(),
    /** Events per job. */
    batchSize: z.number().int().positive().default(100),
    /** Longest an event waits in memory before its batch is sent (linger). */
    lingerMs: z.number().int().positive().default(100),
    /** Events held in memory at most; past it `overflow` applies. */
    maxBuffered: z.number().int().positive().default(10_000),
    /** `spool`: write the overflow to the spool at once; `drop`: drop new events, counted and logged. */
    overflow: z.enum(["spool", "drop"]).default("spool"),
    /**
     * A send to Redis slower than this counts as failed: the batch goes to the spool, and Redis
     * counts as down (every later batch goes straight to the spool) until a probe finds it again.
     */
    sendTimeoutMs: z.number().int().positive().default(2_000),
    /** How often, while Redis counts as down, it is probed (and the spool offered to it once it answers). */
    retryMs: z.number().int().positive().default(1_000),
    /**
     * `close()` returns within this: what Redis has not taken by then stays in the spool (fsynced),
     * for the next process on the same `spoolDir`, and the Redis clients are disconnected.
     */
    closeTimeoutMs: z.number().int().positive().max(600_000).default(5_000),
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
    /** Attempts the worker gets at each job before it is failed for good (and dead-lettered). */
    attempts: z.number().int().positive().default(BATCH_ATTEMPTS),
    /**
     * BullMQ job priority of ordinary batches. BullMQ takes lower numbers first, and jobs with no
     * priority (0) before all prioritized ones: so ordinary batches carry one too, or urgent ones
     * could never overtake them. Anything else adding to this queue should set one as well.
     */
    priority: z.number().int().min(1).max(2_097_151).default(BATCH_PRIORITY),
    /** Job priority of a batch holding an urgent event (see `expedite`): lower, so taken first. */
    urgentPriority: z.number().int().min(1).max(2_097_151).default(URGENT_BATCH_PRIORITY),
    /** Where the transport says which Redis and queue it uses, and reports drops and Redis trouble (never event content or credentials). */
    logger: z.custom<Logger>((v) => typeof v === "object" && v !== null && "warn" in v).optional(),
  })
  .refine((o) => o.urgentPriority < o.priority, { message: "must be lower than priority (BullMQ takes lower numbers first)", path: ["urgentPriority"] });
export type QueueTransportOptions = z.input<typeof QueueTransportOptionsSchema>;

export type ResolvedTransportOptions = Omit<z.output<typeof QueueTransportOptionsSchema>, "connection" | "queueName" | "spoolDir" | "env" | "shards"> & {
  shards: Shards;
  connection: RedisConnection;
  queueName: string;
  spoolDir: string;
};

/**
 * The options, with what they do not give taken from the environment. Only the variables used
 * are read, so a variable an option overrides cannot refuse the transport.
 */
export function resolveTransportOptions(options: QueueTransportOptions): ResolvedTransportOptions {
  const { connection, queueName, spoolDir, shards, env = process.env, ...rest } = parseWith(QueueTransportOptionsSchema, options, SUBJECT);
  const wanted: { [K in keyof SharedEnv]?: true } = {};
  if (!shards) wanted.AUDITGRAPH_SHARDS = true;
  if (!connection) wanted.AUDITGRAPH_REDIS_URL = wanted.AUDITGRAPH_REDIS_CLUSTER_NODES = true;
  if (!queueName) wanted.AUDITGRAPH_QUEUE = true;
  if (!spoolDir) wanted.AUDITGRAPH_SPOOL_DIR = true;
  const fromEnv: Partial<SharedEnv> = Object.keys(wanted).length ? parseWith(SharedEnvSchema.pick(wanted), env, "environment") : {};
  const resolved = {
    ...rest,
    connection: connection ?? redisConnectionOf(fromEnv.AUDITGRAPH_REDIS_URL!, fromEnv.AUDITGRAPH_REDIS_CLUSTER_NODES),
    queueName: queueName ?? fromEnv.AUDITGRAPH_QUEUE!,
    spoolDir: spoolDir ?? fromEnv.AUDITGRAPH_SPOOL_DIR!,
    shards: shards ?? fromEnv.AUDITGRAPH_SHARDS ?? ONE_SHARD,
  };
  // On a cluster BullMQ's scripts touch several keys of a queue at once: they must share a slot.
  if (resolved.connection.clusterNodes?.length && !isHashTag(resolved.queueName)) {
    const message = connection ? HASH_TAG_MESSAGE.replace("AUDITGRAPH_REDIS_CLUSTER_NODES is set", "connection.clusterNodes is given") : HASH_TAG_MESSAGE;
    throw queueName
      ? new ValidationError(SUBJECT, [{ path: "queueName", message }])
      : new ValidationError("environment", [{ path: "AUDITGRAPH_QUEUE", message }]);
  }
  return resolved;
}

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
  /** Events a worker recorded (or, out of retries, dead-lettered), as this transport has confirmed. */
  confirmed: number;
  /** Events sent again because their job vanished from Redis before a worker recorded it. */
  resent: number;
  /** Events no longer held for re-sending (over `maxUnconfirmed`): a Redis that loses them now loses them for good. */
  unguarded: number;
}

export const newTransportMetrics = (): TransportMetrics => ({
  accepted: 0,
  queued: 0,
  spooled: 0,
  forwarded: 0,
  dropped: 0,
  sendFailures: 0,
  expedited: 0,
  confirmed: 0,
  resent: 0,
  unguarded: 0,
});
