import { Queue, type ConnectionOptions } from "bullmq";
import type { FastifyInstance } from "fastify";
import { BATCH_JOB_NAME, batchJobOptions, newEventId, shardCountOf, shardOf, streamIdFor, tenantIdOf, type Shards, type UserEvent } from "@auditgraph/core";
import { OTLP_TRACES_PATH, handleOtlpExport, parseOtlpTokens, type OtlpTokenEntry } from "@auditgraph/otel";
import type { AuditWorker } from "./worker.js";

// The OTLP/HTTP trace receiver on the worker's HTTP port: spans in (protobuf or JSON), mapped to
// auditgraph events by @auditgraph/otel, and put on the worker's own queue as batch jobs, exactly
// as the LangChain transport puts them (same job name, same job options), so they are recorded
// in the ledger first, then evaluated by the policies, then projected, like any other events.

/** Events per job at most: a large export becomes several jobs, each as big as a transport's batch at most. */
const EVENTS_PER_JOB = 100;
/** How long an export waits on Redis before it is answered 503 (the exporter retries it). */
const QUEUE_TIMEOUT_MS = 5_000;

export interface OtlpRouteOptions {
  /** AUDITGRAPH_OTLP_TOKENS' format: `<tenantId>:<sha256 hex of the token>`, comma-separated. */
  tokens: string | undefined;
  maxBodyBytes: number;
}

/** A queue on the worker's own Redis, queue name and prefix; one that fails fast while Redis is away (never queues commands in memory). */
function queueOf(worker: AuditWorker): Queue {
  const { connection, prefix } = worker.worker.opts;
  const fast = typeof (connection as { duplicate?: unknown }).duplicate === "function" ? connection : { ...connection, enableOfflineQueue: false };
  const queue = new Queue(worker.worker.name, { connection: fast as ConnectionOptions, ...(prefix ? { prefix } : {}) });
  // Reported by the worker's own health: an export while Redis is down is answered 503.
  queue.on("error", () => undefined);
  return queue;
}

/** The spans' events as jobs, each one stream's (tenant and shard), as the agents' transport cuts them: a job needs one stream's writer. */
async function enqueue(queue: Queue, events: UserEvent[], shards: Shards): Promise<void> {
  const byStream = new Map<string, { count: number; events: UserEvent[] }>();
  for (const event of events) {
    const tenantId = tenantIdOf(event);
    const count = shardCountOf(shards, tenantId);
    const streamId = streamIdFor(tenantId, shardOf(event.traceId, count));
    const group = byStream.get(streamId) ?? { count, events: [] };
    group.events.push(event);
    byStream.set(streamId, group);
  }
  const jobs = [];
  for (const { count, events: own } of byStream.values())
    for (let i = 0; i < own.length; i += EVENTS_PER_JOB)
      jobs.push({ name: BATCH_JOB_NAME, data: { events: own.slice(i, i + EVENTS_PER_JOB), shards: count }, opts: batchJobOptions({ jobId: newEventId() }) });
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      queue.addBulk(jobs),
      new Promise((_, reject) => (timer = setTimeout(() => reject(new Error("Redis did not answer in time")), QUEUE_TIMEOUT_MS))),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Registers `POST /v1/traces` in a scope of its own (its body parsers take every content type
 * as bytes: the receiver decides, and answers 415, itself). Returns the close of its queue.
 */
export async function registerOtlpRoute(app: FastifyInstance, worker: AuditWorker, options: OtlpRouteOptions): Promise<() => Promise<void>> {
  // Parsed once, at start: a malformed entry stops the worker's HTTP server, naming the entry's position.
  const tokens: OtlpTokenEntry[] = parseOtlpTokens(options.tokens);
  let queue: Queue | undefined;
  await app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser("*", { parseAs: "buffer", bodyLimit: options.maxBodyBytes }, (_request, body, done) => done(null, body));
    scope.post(OTLP_TRACES_PATH, async (request, reply) => {
      const header = (name: string) => {
        const v = request.headers[name];
        return Array.isArray(v) ? v[0] : v;
      };
      const outcome = handleOtlpExport(
        {
          contentType: header("content-type"),
          contentEncoding: header("content-encoding"),
          authorization: header("authorization"),
          body: Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0),
        },
        tokens,
        options.maxBodyBytes,
      );
      if (outcome.events.length > 0) {
        try {
          await enqueue((queue ??= queueOf(worker)), outcome.events, worker.shards);
        } catch (error) {
          // OTLP exporters retry a 503 (with backoff): nothing of the request was taken.
          return reply
            .code(503)
            .header("retry-after", "5")
            .type("text/plain")
            .send(`the worker's queue is unavailable: ${(error as Error).message}`);
        }
      }
      return reply
        .code(outcome.status)
        .type(outcome.contentType)
        .send(typeof outcome.body === "string" ? outcome.body : Buffer.from(outcome.body));
    });
  });
  return async () => {
    await queue?.close().catch(() => undefined);
  };
}
