import { dirname, join } from "node:path";
import { z } from "zod";
import { DEFAULT_QUEUE_NAME, SEVERITIES, parseWith, type RedisConnection, type Severity } from "@auditgraph/core";

/** Settings come from the environment; each field is named by its variable, so errors name it too. */
export const EnvSchema = z.object({
  AUDITGRAPH_REDIS_URL: z.url({ protocol: /^rediss?$/ }).default("redis://127.0.0.1:6379"),
  /**
   * Seed nodes of a Redis Cluster (`host:port,host:port`): set, every client is a cluster client,
   * with the credentials and TLS of AUDITGRAPH_REDIS_URL (whose host is then not used).
   */
  AUDITGRAPH_REDIS_CLUSTER_NODES: z
    .string()
    .regex(/^[^\s,:]+:\d{1,5}(,[^\s,:]+:\d{1,5})*$/, "must be host:port seed nodes, comma-separated")
    .transform((v) => v.split(",").map((node) => ({ host: node.slice(0, node.lastIndexOf(":")), port: Number(node.slice(node.lastIndexOf(":") + 1)) })))
    .optional(),
  AUDITGRAPH_QUEUE: z
    .string()
    .regex(/^[A-Za-z0-9_{}-]+$/, "letters, digits, _ - and {} (hash tags) only")
    .default(DEFAULT_QUEUE_NAME),
  AUDITGRAPH_LEDGER_DIR: z.string().min(1).default(".auditgraph/ledger"),
  /** A postgres:// URL puts the ledger in PostgreSQL instead of segment files under AUDITGRAPH_LEDGER_DIR. */
  AUDITGRAPH_LEDGER_URL: z.string().regex(/^postgres(ql)?:\/\//, "must be a postgres:// URL").optional(),
  AUDITGRAPH_LEDGER_SCHEMA: z.string().regex(/^[a-z_][a-z0-9_]{0,62}$/, "must be a lower-case SQL identifier").default("auditgraph"),
  AUDITGRAPH_SPOOL_DIR: z.string().min(1).default(".auditgraph/spool"),
  /** The data keys of data subjects (one file each); unset, `keystore` beside the ledger directory. */
  AUDITGRAPH_KEYSTORE_DIR: z.string().min(1).optional(),
  /** Ed25519 private key (PEM file) that signs ledger checkpoints; `auditgraph keygen` makes one. */
  AUDITGRAPH_SIGNING_KEY: z.string().min(1).optional(),
  /** The matching public key (PEM file) `verify` checks checkpoint signatures with. */
  AUDITGRAPH_PUBLIC_KEY: z.string().min(1).optional(),
  /** Every signed checkpoint is also appended to this file (keep it out of the ledger's reach). */
  AUDITGRAPH_CHECKPOINT_FILE: z.string().min(1).optional(),
  /** ... and POSTed to this URL. */
  AUDITGRAPH_CHECKPOINT_WEBHOOK: z.url({ protocol: /^https?$/ }).optional(),
  /** The worker's policy file (JSON or YAML, see docs/policies.md); unset, the worker's built-in defaults. */
  AUDITGRAPH_POLICIES: z.string().min(1).optional(),
  /** Findings at or above this severity open an escalation whatever their action. */
  AUDITGRAPH_ESCALATION_SEVERITY: z.enum(SEVERITIES).default("high"),
  /** The worker POSTs each escalation it opens here, signed with AUDITGRAPH_ESCALATION_WEBHOOK_SECRET (see docs/policies.md). */
  AUDITGRAPH_ESCALATION_WEBHOOK: z.url({ protocol: /^https?$/ }).optional(),
  /** The webhook's HMAC key. Never logged, never echoed in an error. */
  AUDITGRAPH_ESCALATION_WEBHOOK_SECRET: z.string().min(16, "must be at least 16 characters").optional(),
  NEO4J_URI: z.string().regex(/^(bolt|neo4j)(\+s|\+ssc)?:\/\//, "must be a bolt:// or neo4j:// URI").default("bolt://127.0.0.1:7687"),
  NEO4J_USER: z.string().min(1).default("neo4j"),
  // The password of the local development server that scripts/neo4j-start.sh runs.
  NEO4J_PASSWORD: z.string().min(1).default("auditgraph-dev"),
  NEO4J_DATABASE: z.string().min(1).default("neo4j"),
});

// A signed webhook needs its key: refused here rather than sent unsigned or failing at the first escalation.
const CheckedEnvSchema = EnvSchema.refine((e) => !e.AUDITGRAPH_ESCALATION_WEBHOOK || e.AUDITGRAPH_ESCALATION_WEBHOOK_SECRET, {
  message: "is required when AUDITGRAPH_ESCALATION_WEBHOOK is set (the HMAC key the receiver verifies with)",
  path: ["AUDITGRAPH_ESCALATION_WEBHOOK_SECRET"],
}).refine((e) => !e.AUDITGRAPH_REDIS_CLUSTER_NODES || /^\{[^{}]+\}$/.test(e.AUDITGRAPH_QUEUE), {
  // BullMQ's scripts touch several keys of a queue at once: on a cluster they must share a slot.
  message: "must be a hash tag such as {auditgraph} when AUDITGRAPH_REDIS_CLUSTER_NODES is set (a queue's keys must share one cluster slot)",
  path: ["AUDITGRAPH_QUEUE"],
});

export interface Config {
  /** One node's ioredis options, with `clusterNodes` for a Redis Cluster. */
  redis: RedisConnection;
  queueName: string;
  ledgerDir: string;
  ledgerUrl: string | undefined;
  ledgerSchema: string;
  /** The agent side's spool, for batches that could not reach Redis. */
  spoolDir: string;
  /** Where the data subjects' keys live; undefined: `keystore` beside `ledgerDir` (see `keyStoreDirOf`). */
  keyStoreDir: string | undefined;
  signingKeyPath: string | undefined;
  publicKeyPath: string | undefined;
  checkpointExport: { file?: string; webhookUrl?: string };
  neo4j: { uri: string; user: string; password: string; database: string };
  /** The worker's policy file; undefined: its defaults (`DEFAULT_WORKER_POLICIES`). */
  policiesPath?: string | undefined;
  escalationSeverity?: Severity;
  /** Where the worker sends escalation notifications, and the HMAC key (a secret: never logged). */
  escalationWebhook?: { url: string; secret: string } | undefined;
}

export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const e = parseWith(CheckedEnvSchema, env, "configuration");
  const url = new URL(e.AUDITGRAPH_REDIS_URL);
  return {
    redis: {
      host: url.hostname,
      port: Number(url.port || 6379),
      ...(url.username ? { username: decodeURIComponent(url.username) } : {}),
      ...(url.password ? { password: decodeURIComponent(url.password) } : {}),
      ...(url.pathname.length > 1 ? { db: Number(url.pathname.slice(1)) } : {}),
      ...(url.protocol === "rediss:" ? { tls: {} } : {}),
      ...(e.AUDITGRAPH_REDIS_CLUSTER_NODES ? { clusterNodes: e.AUDITGRAPH_REDIS_CLUSTER_NODES } : {}),
    },
    queueName: e.AUDITGRAPH_QUEUE,
    ledgerDir: e.AUDITGRAPH_LEDGER_DIR,
    ledgerUrl: e.AUDITGRAPH_LEDGER_URL,
    ledgerSchema: e.AUDITGRAPH_LEDGER_SCHEMA,
    spoolDir: e.AUDITGRAPH_SPOOL_DIR,
    keyStoreDir: e.AUDITGRAPH_KEYSTORE_DIR,
    signingKeyPath: e.AUDITGRAPH_SIGNING_KEY,
    publicKeyPath: e.AUDITGRAPH_PUBLIC_KEY,
    checkpointExport: {
      ...(e.AUDITGRAPH_CHECKPOINT_FILE ? { file: e.AUDITGRAPH_CHECKPOINT_FILE } : {}),
      ...(e.AUDITGRAPH_CHECKPOINT_WEBHOOK ? { webhookUrl: e.AUDITGRAPH_CHECKPOINT_WEBHOOK } : {}),
    },
    neo4j: { uri: e.NEO4J_URI, user: e.NEO4J_USER, password: e.NEO4J_PASSWORD, database: e.NEO4J_DATABASE },
    policiesPath: e.AUDITGRAPH_POLICIES,
    escalationSeverity: e.AUDITGRAPH_ESCALATION_SEVERITY,
    ...(e.AUDITGRAPH_ESCALATION_WEBHOOK && e.AUDITGRAPH_ESCALATION_WEBHOOK_SECRET
      ? { escalationWebhook: { url: e.AUDITGRAPH_ESCALATION_WEBHOOK, secret: e.AUDITGRAPH_ESCALATION_WEBHOOK_SECRET } }
      : {}),
  };
}

/**
 * The key store directory of a config. Resolved when used, not when loaded, so that a config
 * with its ledger directory moved (a test's, the demo's) keeps its keys beside that ledger.
 */
export function keyStoreDirOf(config: Pick<Config, "keyStoreDir" | "ledgerDir">): string {
  return config.keyStoreDir ?? join(dirname(config.ledgerDir), "keystore");
}
