import type { Cluster, Redis } from "ioredis";
import type { Logger } from "pino";
import { AuditgraphError } from "@auditgraph/core";
import { redisClient, type RedisConnection } from "@auditgraph/policy";

// What a dead or unreachable Redis looks like from ioredis and BullMQ, as opposed to an error of a command.
const CONNECTION_ERROR =
  /ECONNREFUSED|ECONNRESET|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|ENOTFOUND|EAI_AGAIN|EPIPE|Connection is closed|Stream isn't writeable|MaxRetriesPerRequest|CLUSTERDOWN|All nodes failed|Failed to refresh slots|LOADING|connection.* closed/i;

export function isConnectionError(error: unknown): boolean {
  const e = error as { code?: unknown; message?: unknown } | undefined;
  return CONNECTION_ERROR.test(`${String(e?.code ?? "")} ${String(e?.message ?? error)}`);
}

export interface RedisState {
  up: boolean;
  /** Since when Redis has been unreachable (ISO time), and the last error meanwhile. */
  downSince?: string;
  lastError?: string;
  /** Connection errors the worker's clients reported during this outage (each retry of each client). */
  errors?: number;
}

/**
 * Whether Redis answers, from a small client of its own that fails fast (no offline queue) rather
 * than waiting out a reconnect. Every client of the worker reports its errors here: connection
 * errors, however many the retries of ioredis and BullMQ raise, make one line when the outage
 * starts (once a ping confirms it) and one when a ping succeeds again; other errors are logged as
 * they come.
 */
export class RedisHealth {
  readonly client: Redis | Cluster;
  private downSince: number | undefined;
  private lastError: string | undefined;
  private errors = 0;
  private probing: Promise<boolean> | undefined;
  private readonly timer: NodeJS.Timeout;
  private closed = false;

  constructor(
    connection: RedisConnection,
    private readonly log: Logger,
    private readonly probeMs = 1_000,
  ) {
    this.client = redisClient(connection, { enableOfflineQueue: false, maxRetriesPerRequest: 1, connectTimeout: 5_000 });
    this.client.on("error", (error: Error) => {
      if (!this.report(error)) this.log.error({ error: error.message }, "Redis error (health client)");
    });
    this.timer = setInterval(() => {
      if (this.downSince !== undefined) void this.probe();
    }, probeMs);
    this.timer.unref();
  }

  /**
   * An error from any of the worker's Redis clients (or BullMQ's Worker): true when it is a
   * connection error (taken care of here), false for the caller to report.
   */
  report(error: unknown): boolean {
    if (this.closed) return true;
    if (!isConnectionError(error)) return false;
    this.lastError = (error as Error)?.message ?? String(error);
    this.errors += 1;
    // A stray error while Redis answers (a command cut by a reconnect) is not an outage.
    if (this.downSince === undefined) void this.probe();
    return true;
  }

  /** Pings Redis (at most one ping at a time); starts or ends an outage by the answer. */
  probe(): Promise<boolean> {
    this.probing ??= this.ping().then((up) => {
      this.probing = undefined;
      if (this.closed) return up;
      if (up && this.downSince !== undefined) {
        this.log.warn({ downMs: Date.now() - this.downSince, errors: this.errors }, "Redis is reachable again: taking jobs");
        this.downSince = undefined;
        this.lastError = undefined;
        this.errors = 0;
      } else if (!up && this.downSince === undefined) {
        this.downSince = Date.now();
        this.log.error(
          { error: this.lastError },
          "Redis is unreachable: no jobs are taken until it returns (producers spool meanwhile); retrying quietly, one line when it is back",
        );
      }
      return up;
    });
    return this.probing;
  }

  private async ping(): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    let onReady: (() => void) | undefined;
    // A client still connecting (at start, or reconnecting) is given the probe's time to get there.
    const ready = this.client.status === "ready" ? Promise.resolve() : new Promise<void>((resolve) => this.client.once("ready", (onReady = resolve)));
    try {
      const answer = await Promise.race([
        ready.then(() => this.client.ping()),
        new Promise<never>(
          (_, reject) =>
            (timer = setTimeout(() => reject(new AuditgraphError("AUDITGRAPH_E_REDIS_NO_ANSWER", `no answer within ${this.probeMs} ms`)), this.probeMs)),
        ),
      ]);
      return answer === "PONG";
    } catch (error) {
      this.lastError = (error as Error).message;
      return false;
    } finally {
      clearTimeout(timer);
      if (onReady) this.client.off("ready", onReady);
    }
  }

  state(): RedisState {
    if (this.downSince === undefined) return { up: true };
    return { up: false, downSince: new Date(this.downSince).toISOString(), errors: this.errors, ...(this.lastError ? { lastError: this.lastError } : {}) };
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    await this.client.quit().catch(() => this.client.disconnect());
  }
}
