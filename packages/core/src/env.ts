import { z } from "zod";
import { ShardsSchema } from "./streams.js";
import { parseWith } from "./validation.js";
import { DEFAULT_QUEUE_NAME } from "./transport.js";

export const DEFAULT_REDIS_URL = "redis://127.0.0.1:6379";
export const DEFAULT_SPOOL_DIR = ".auditgraph/spool";
/** BullMQ builds its keys from the queue name: `{...}` is a Redis Cluster hash tag. */
export const QUEUE_NAME_PATTERN = /^[A-Za-z0-9_{}-]+$/;

/** A queue name all of whose keys land in one Redis Cluster slot (BullMQ's scripts touch several at once). */
export const isHashTag = (queueName: string): boolean => /^\{[^{}]+\}$/.test(queueName);

export const HASH_TAG_MESSAGE =
  "must be a hash tag such as {auditgraph} when AUDITGRAPH_REDIS_CLUSTER_NODES is set (a queue's keys must share one cluster slot)";

/** pino's levels, for AUDITGRAPH_LOG_LEVEL. */
export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/**
 * The variables agents (their transport) and workers (the CLI) both read, so that one
 * environment points both at the same Redis and queue. Each field is named by its variable, so
 * errors name it too.
 */
export const SharedEnvSchema = z.object({
  AUDITGRAPH_REDIS_URL: z
    .url({ protocol: /^rediss?$/ })
    // zod runs a refine even after the URL check failed: an unparsable URL is left to that check.
    .refine((u) => !URL.canParse(u) || /^\/?\d*$/.test(new URL(u).pathname), "its path, if any, must be a database number, e.g. redis://host:6379/0")
    .default(DEFAULT_REDIS_URL),
  /**
   * Seed nodes of a Redis Cluster (`host:port,host:port`): set, every client is a cluster client,
   * with the credentials and TLS of AUDITGRAPH_REDIS_URL (whose host is then not used).
   */
  AUDITGRAPH_REDIS_CLUSTER_NODES: z
    .string()
    .regex(/^[^\s,:]+:\d{1,5}(,[^\s,:]+:\d{1,5})*$/, "must be host:port seed nodes, comma-separated")
    .transform((v) => v.split(",").map((node) => ({ host: node.slice(0, node.lastIndexOf(":")), port: Number(node.slice(node.lastIndexOf(":") + 1)) })))
    .optional(),
  AUDITGRAPH_QUEUE: z.string().regex(QUEUE_NAME_PATTERN, "letters, digits, _ - and {} (hash tags) only").default(DEFAULT_QUEUE_NAME),
  /** The agent side's spool, for batches that could not reach Redis. */
  AUDITGRAPH_SPOOL_DIR: z.string().min(1).default(DEFAULT_SPOOL_DIR),
  /**
   * How many shards (ledger streams) a tenant's events spread over, by trace id: `8`, or
   * `acme:8,globex:2,*:1` (see `ShardsSchema`). Agents group each batch by shard and workers
   * append it to that shard's stream, so N workers write one tenant at once.
   */
  AUDITGRAPH_SHARDS: ShardsSchema.optional(),
  /** The level of every auditgraph log line, in agents and workers alike. */
  AUDITGRAPH_LOG_LEVEL: z.enum(LOG_LEVELS).default("info"),
});
export type SharedEnv = z.output<typeof SharedEnvSchema>;

/** AUDITGRAPH_LOG_LEVEL of `env` (default info); a bad value is refused naming the variable. */
export function logLevelOf(env: Record<string, string | undefined> = process.env): LogLevel {
  return parseWith(SharedEnvSchema.pick({ AUDITGRAPH_LOG_LEVEL: true }), env, "environment").AUDITGRAPH_LOG_LEVEL;
}

/** `schema` (the shared variables, or a schema extending them) with the rules across them. */
export function withSharedEnvRules<S extends z.ZodType<Pick<SharedEnv, "AUDITGRAPH_REDIS_CLUSTER_NODES" | "AUDITGRAPH_QUEUE">>>(schema: S): S {
  return schema.refine((e) => !e.AUDITGRAPH_REDIS_CLUSTER_NODES || isHashTag(e.AUDITGRAPH_QUEUE), {
    message: HASH_TAG_MESSAGE,
    path: ["AUDITGRAPH_QUEUE"],
  });
}
