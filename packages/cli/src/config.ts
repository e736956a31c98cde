import { dirname, join } from "node:path";
import { z } from "zod";
import { SEVERITIES, SharedEnvSchema, parseWith, withSharedEnvRules, type LogLevel, type Severity, type Shards } from "@auditgraph/core";
import { redisConnectionOf, type RedisConnection } from "@auditgraph/policy";
import { DEFAULT_LOG_ORIGIN, LOG_ORIGIN_PATTERN } from "@auditgraph/ledger";

/**
 * Settings come from the environment; each field is named by its variable, so errors name it too.
 * Redis, the queue and the spool are the variables agents read as well (`SharedEnvSchema`).
 */
export const EnvSchema = SharedEnvSchema.extend({
  AUDITGRAPH_LEDGER_DIR: z.string().min(1).default(".auditgraph/ledger"),
  /** A postgres:// URL puts the ledger in PostgreSQL instead of segment files under AUDITGRAPH_LEDGER_DIR. */
  AUDITGRAPH_LEDGER_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\//, "must be a postgres:// URL")
    .optional(),
  AUDITGRAPH_LEDGER_SCHEMA: z
    .string()
    .regex(/^[a-z_][a-z0-9_]{0,62}$/, "must be a lower-case SQL identifier")
    .default("auditgraph"),
  /** The data keys of data subjects (one file each); unset, `keystore` beside the ledger directory. */
  AUDITGRAPH_KEYSTORE_DIR: z.string().min(1).optional(),
  /** Ed25519 private key (PEM file) that signs ledger checkpoints; `auditgraph keygen` makes one. */
  AUDITGRAPH_SIGNING_KEY: z.string().min(1).optional(),
  /** The matching public key (PEM file) `verify` checks checkpoint signatures with. */
  AUDITGRAPH_PUBLIC_KEY: z.string().min(1).optional(),
  /**
   * The log's name in its signed checkpoint notes (C2SP): the note key's name, and `<origin>/<streamId>`
   * each stream's origin line. Printable ASCII, no space and no '+' (a note key name holds neither).
   */
  AUDITGRAPH_LOG_ORIGIN: z.string().regex(LOG_ORIGIN_PATTERN, "must be printable ASCII with no space and no '+'").default(DEFAULT_LOG_ORIGIN),
  /** Every signed checkpoint is also appended to this file (keep it out of the ledger's reach). */
  AUDITGRAPH_CHECKPOINT_FILE: z.string().min(1).optional(),
  /** ... and POSTed to this URL. */
  AUDITGRAPH_CHECKPOINT_WEBHOOK: z.url({ protocol: /^https?$/ }).optional(),
  /** The worker's policy file (JSON or YAML, see docs/policies.md); unset, the worker's built-in defaults. */
  AUDITGRAPH_POLICIES: z.string().min(1).optional(),
  /** Findings at or above this severity open an escalation whatever their action. */
  AUDITGRAPH_ESCALATION_SEVERITY: z.enum(SEVERITIES).default("high"),
  /**
   * Tools whose start must be on record before they run, comma-separated: the same names as the
   * handlers' `highImpactTools`. The worker raises a critical flag on a run of one with no start.
   */
  AUDITGRAPH_HIGH_IMPACT_TOOLS: z
    .string()
    .transform((s) =>
      s
        .split(",")
        .map((x) => x.trim())
        .filter(Boolean),
    )
    .optional(),
  /** The worker POSTs each escalation it opens here, signed with AUDITGRAPH_ESCALATION_WEBHOOK_SECRET (see docs/policies.md). */
  AUDITGRAPH_ESCALATION_WEBHOOK: z.url({ protocol: /^https?$/ }).optional(),
  /** The webhook's HMAC key. Never logged, never echoed in an error. */
  AUDITGRAPH_ESCALATION_WEBHOOK_SECRET: z.string().min(16, "must be at least 16 characters").optional(),
  NEO4J_URI: z
    .string()
    .regex(/^(bolt|neo4j)(\+s|\+ssc)?:\/\//, "must be a bolt:// or neo4j:// URI")
    .default("bolt://127.0.0.1:7687"),
  NEO4J_USER: z.string().min(1).default("neo4j"),
  // The password of the local development server that scripts/neo4j-start.sh runs.
  NEO4J_PASSWORD: z.string().min(1).default("auditgraph-dev"),
  NEO4J_DATABASE: z.string().min(1).default("neo4j"),
  /** The worker serves /healthz, /readyz and /metrics on this port (unset: no HTTP server); `--http-port` wins. */
  AUDITGRAPH_WORKER_HTTP_PORT: z
    .string()
    .regex(/^\d{1,5}$/, "must be a port number (0-65535)")
    .transform(Number)
    .pipe(z.int().max(65_535, "must be a port number (0-65535)"))
    .optional(),
  /** The worker forwards every recorded event as GenAI spans to this OTLP/HTTP traces endpoint (see docs/otel-export.md). */
  AUDITGRAPH_OTLP_EXPORT_URL: z
    .url({ protocol: /^https?$/, error: "must be an http(s) URL (the OTLP traces endpoint, e.g. http://collector:4318/v1/traces)" })
    .optional(),
  /** Headers of every export request, `k=v` comma-separated and URL-encoded as OTEL_EXPORTER_OTLP_HEADERS. Secrets: never logged, never echoed. */
  AUDITGRAPH_OTLP_EXPORT_HEADERS: z.string().transform(otlpHeadersOf).optional(),
  AUDITGRAPH_OTLP_EXPORT_PROTOCOL: z.enum(["http/protobuf", "http/json"]).optional(),
  /** `full` (default): content as recorded; `metadata`: no messages, arguments, results or documents. */
  AUDITGRAPH_OTLP_EXPORT_CONTENT: z.enum(["full", "metadata"]).optional(),
});

/** OTEL_EXPORTER_OTLP_HEADERS' format: `k=v` pairs, comma-separated, values URL-encoded. The error never quotes a value. */
function otlpHeadersOf(text: string, ctx: z.core.$RefinementCtx<string>): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [i, pair] of text.split(",").entries()) {
    if (pair.trim() === "") continue;
    const at = pair.indexOf("=");
    const key = pair.slice(0, at).trim();
    let value: string | undefined;
    try {
      value = at > 0 ? decodeURIComponent(pair.slice(at + 1).trim()) : undefined;
    } catch {
      value = undefined;
    }
    if (!key || value === undefined || !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(key)) {
      ctx.addIssue({ code: "custom", message: `must be comma-separated key=value pairs (URL-encoded values); pair ${i + 1} is not` });
      return z.NEVER;
    }
    headers[key] = value;
  }
  return headers;
}

// A signed webhook needs its key: refused here rather than sent unsigned or failing at the first escalation.
const CheckedEnvSchema = withSharedEnvRules(EnvSchema).refine((e) => !e.AUDITGRAPH_ESCALATION_WEBHOOK || e.AUDITGRAPH_ESCALATION_WEBHOOK_SECRET, {
  message: "is required when AUDITGRAPH_ESCALATION_WEBHOOK is set (the HMAC key the receiver verifies with)",
  path: ["AUDITGRAPH_ESCALATION_WEBHOOK_SECRET"],
});

// An export setting without the endpoint would be dropped in silence.
const OTLP_EXPORT_COMPANIONS = ["AUDITGRAPH_OTLP_EXPORT_HEADERS", "AUDITGRAPH_OTLP_EXPORT_PROTOCOL", "AUDITGRAPH_OTLP_EXPORT_CONTENT"] as const;
const ExportCheckedEnvSchema = CheckedEnvSchema.superRefine((e, ctx) => {
  for (const name of OTLP_EXPORT_COMPANIONS)
    if (e[name] !== undefined && !e.AUDITGRAPH_OTLP_EXPORT_URL)
      ctx.addIssue({ code: "custom", path: [name], message: "is set but AUDITGRAPH_OTLP_EXPORT_URL is not" });
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
  /** AUDITGRAPH_LOG_ORIGIN: the name checkpoint notes are signed under; undefined: "auditgraph". */
  logOrigin?: string | undefined;
  checkpointExport: { file?: string; webhookUrl?: string };
  neo4j: { uri: string; user: string; password: string; database: string };
  /** The worker's policy file; undefined: its defaults (`DEFAULT_WORKER_POLICIES`). */
  policiesPath?: string | undefined;
  escalationSeverity?: Severity;
  /** AUDITGRAPH_HIGH_IMPACT_TOOLS: the worker's approval-integrity check flags a run of one of them with no start event. */
  highImpactTools?: string[] | undefined;
  /** Where the worker sends escalation notifications, and the HMAC key (a secret: never logged). */
  escalationWebhook?: { url: string; secret: string } | undefined;
  /** Where the worker serves its health and metrics (AUDITGRAPH_WORKER_HTTP_PORT); undefined: nowhere. */
  workerHttpPort?: number | undefined;
  /** AUDITGRAPH_LOG_LEVEL. */
  logLevel?: LogLevel;
  /** AUDITGRAPH_SHARDS: each tenant's shard count; undefined: one shard each. */
  shards?: Shards | undefined;
  /** AUDITGRAPH_OTLP_EXPORT_*: where the worker forwards recorded events as GenAI spans (headers are secrets: never logged). */
  otlpExport?: { url: string; headers: Record<string, string>; protocol: "http/protobuf" | "http/json"; content: "full" | "metadata" } | undefined;
}

export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const e = parseWith(ExportCheckedEnvSchema, env, "configuration");
  return {
    redis: redisConnectionOf(e.AUDITGRAPH_REDIS_URL, e.AUDITGRAPH_REDIS_CLUSTER_NODES),
    queueName: e.AUDITGRAPH_QUEUE,
    ledgerDir: e.AUDITGRAPH_LEDGER_DIR,
    ledgerUrl: e.AUDITGRAPH_LEDGER_URL,
    ledgerSchema: e.AUDITGRAPH_LEDGER_SCHEMA,
    spoolDir: e.AUDITGRAPH_SPOOL_DIR,
    keyStoreDir: e.AUDITGRAPH_KEYSTORE_DIR,
    signingKeyPath: e.AUDITGRAPH_SIGNING_KEY,
    publicKeyPath: e.AUDITGRAPH_PUBLIC_KEY,
    logOrigin: e.AUDITGRAPH_LOG_ORIGIN,
    checkpointExport: {
      ...(e.AUDITGRAPH_CHECKPOINT_FILE ? { file: e.AUDITGRAPH_CHECKPOINT_FILE } : {}),
      ...(e.AUDITGRAPH_CHECKPOINT_WEBHOOK ? { webhookUrl: e.AUDITGRAPH_CHECKPOINT_WEBHOOK } : {}),
    },
    neo4j: { uri: e.NEO4J_URI, user: e.NEO4J_USER, password: e.NEO4J_PASSWORD, database: e.NEO4J_DATABASE },
    workerHttpPort: e.AUDITGRAPH_WORKER_HTTP_PORT,
    logLevel: e.AUDITGRAPH_LOG_LEVEL,
    shards: e.AUDITGRAPH_SHARDS,
    policiesPath: e.AUDITGRAPH_POLICIES,
    escalationSeverity: e.AUDITGRAPH_ESCALATION_SEVERITY,
    highImpactTools: e.AUDITGRAPH_HIGH_IMPACT_TOOLS,
    ...(e.AUDITGRAPH_ESCALATION_WEBHOOK && e.AUDITGRAPH_ESCALATION_WEBHOOK_SECRET
      ? { escalationWebhook: { url: e.AUDITGRAPH_ESCALATION_WEBHOOK, secret: e.AUDITGRAPH_ESCALATION_WEBHOOK_SECRET } }
      : {}),
    ...(e.AUDITGRAPH_OTLP_EXPORT_URL
      ? {
          otlpExport: {
            url: e.AUDITGRAPH_OTLP_EXPORT_URL,
            headers: e.AUDITGRAPH_OTLP_EXPORT_HEADERS ?? {},
            protocol: e.AUDITGRAPH_OTLP_EXPORT_PROTOCOL ?? "http/protobuf",
            content: e.AUDITGRAPH_OTLP_EXPORT_CONTENT ?? "full",
          },
        }
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
