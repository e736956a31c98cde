import Fastify from "fastify";
import { z } from "zod";
import { parseWith } from "@auditgraph/core";
import { DEFAULT_MAX_BODY_BYTES, OTLP_TOKENS_ENV } from "@auditgraph/otel";
import { registerOtlpRoute } from "./otlp.js";
import type { AuditWorker } from "./worker.js";

export const WorkerHttpOptionsSchema = z
  .object({
    /** 0 takes a free port (see `WorkerHttp.port`). */
    port: z.int().min(0).max(65_535),
    /** All interfaces by default: a container's health check and a Prometheus scraper reach it from outside. */
    host: z.string().min(1).default("0.0.0.0"),
    /** Also serve the process's own metrics (memory, CPU, event loop, GC): once per process, for the worker it runs. */
    processMetrics: z.boolean().default(true),
    /**
     * The OTLP ingest tokens of `POST /v1/traces`: `<tenantId>:<sha256 hex of the token>`, comma-separated
     * (default: AUDITGRAPH_OTLP_TOKENS). None: every export is answered 401.
     */
    otlpTokens: z.string().optional(),
    /** The largest OTLP export body taken, compressed or decompressed (default 16 MiB). */
    otlpMaxBodyBytes: z.int().positive().default(DEFAULT_MAX_BODY_BYTES),
  })
  .strict();
export type WorkerHttpOptions = z.input<typeof WorkerHttpOptionsSchema>;

export interface WorkerHttp {
  /** The port listened on (the one taken, when 0 was asked). */
  port: number;
  url: string;
  close(): Promise<void>;
}

/**
 * The worker's HTTP endpoints: `/healthz` (the process is alive: 200), `/readyz` (200 when Redis
 * and the ledger are usable, 503 otherwise; Neo4j's state in the body either way) and `/metrics`
 * (Prometheus text, from the worker's own registry); and `POST /v1/traces`, the OTLP/HTTP trace
 * receiver (see @auditgraph/otel and docs/otel.md).
 */
export async function startWorkerHttp(worker: AuditWorker, input: WorkerHttpOptions): Promise<WorkerHttp> {
  const options = parseWith(WorkerHttpOptionsSchema, input, "worker HTTP options");
  if (options.processMetrics) worker.metrics.withProcessMetrics();
  // No request log: a scraper and a health check call every few seconds.
  const app = Fastify({ logger: false });
  app.get("/healthz", async () => ({ status: "alive" }));
  app.get("/readyz", async (_request, reply) => {
    const readiness = await worker.readiness();
    return reply.code(readiness.ready ? 200 : 503).send(readiness);
  });
  app.get("/metrics", async (_request, reply) => {
    const registry = worker.metrics.registry;
    return reply.type(registry.contentType).send(await registry.metrics());
  });
  const closeOtlp = await registerOtlpRoute(app, worker, {
    tokens: options.otlpTokens ?? process.env[OTLP_TOKENS_ENV],
    maxBodyBytes: options.otlpMaxBodyBytes,
  });
  await app.listen({ port: options.port, host: options.host });
  const address = app.server.address();
  const port = typeof address === "object" && address ? address.port : options.port;
  const host = options.host === "0.0.0.0" || options.host === "::" ? "127.0.0.1" : options.host;
  return { port, url: `http://${host.includes(":") ? `[${host}]` : host}:${port}`, close: () => app.close().then(closeOtlp) };
}
