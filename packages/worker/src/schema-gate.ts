import type { Logger } from "pino";
import { setTimeout as sleep } from "node:timers/promises";
import { AuditgraphError, backoffMs } from "@auditgraph/core";
import type { ProjectionGraph } from "./projector.js";

export interface GraphState {
  /** Whether this worker applied (or found applied) the graph's schema migrations. */
  migrated: boolean;
  /** Failed migration attempts in a row, the last error, and since when they fail (ISO time). */
  failures: number;
  lastError?: string;
  failingSince?: string;
}

export interface SchemaGateOptions {
  graph: ProjectionGraph;
  /**
   * Applies the migrations (idempotent); absent, the graph is taken as migrated. `signal` aborts
   * when the gate closes: a wait for another migrator's lease stops, a migration under way finishes.
   */
  migrate?: ((signal: AbortSignal) => Promise<unknown>) | undefined;
  logger: Logger;
  retryMinMs: number;
  retryMaxMs: number;
  /** Seconds each `projectRange` took, successful or not. */
  observeProjection?: (seconds: number) => void;
}

/** How long `close` waits for a migration under way to finish and release its lock. */
export const CLOSE_GRACE_MS = 30_000;

/**
 * Applies the graph's migrations in the background, retrying with a capped backoff while Neo4j is
 * away, and hands the projection a graph that refuses every call until they are applied: a call
 * waits for the migration attempt under way, and fails with its error (code
 * `AUDITGRAPH_GRAPH_NOT_MIGRATED`) unless it succeeded, so the projection backs off and retries as
 * for any outage of the graph, and nothing is projected into a graph without its constraints.
 * Appends and acks never wait on it. The first failure and the success are logged; the retries
 * between are not.
 */
export class SchemaGate {
  readonly graph: ProjectionGraph;
  private readonly ready: Promise<void>;
  /** The migration attempt under way: true when it applied them. */
  private attempt: Promise<boolean> | undefined;
  /** Aborted by `close`: the migration attempt's signal, and what rejects `aborted`. */
  private readonly stop = new AbortController();
  private readonly aborted: Promise<never>;
  private closing = false;
  private current: GraphState;
  private retry: { timer: NodeJS.Timeout; resolve: () => void } | undefined;

  constructor(private readonly options: SchemaGateOptions) {
    this.current = { migrated: !options.migrate, failures: 0 };
    this.aborted = new Promise<never>((_, reject) => this.stop.signal.addEventListener("abort", () => reject(this.stop.signal.reason), { once: true }));
    this.aborted.catch(() => undefined);
    this.ready = options.migrate ? this.migrateUntilDone(options.migrate) : Promise.resolve();
    this.ready.catch(() => undefined);
    const gate = () => this.pass();
    const { graph, observeProjection } = options;
    // Every method of the graph (whatever the projection comes to use) goes through the gate.
    this.graph = new Proxy(graph, {
      get(target, property) {
        const value: unknown = Reflect.get(target, property, target);
        if (typeof value !== "function") return value;
        return async (...args: unknown[]) => {
          await gate();
          const started = performance.now();
          try {
            return await (value as (...a: unknown[]) => unknown).apply(target, args);
          } finally {
            if (property === "projectRange") observeProjection?.((performance.now() - started) / 1_000);
          }
        };
      },
    });
  }

  /** Resolves when the graph is migrated (waiting for the attempt under way), else throws why not. */
  private async pass(): Promise<void> {
    if (this.current.migrated) return;
    if (!this.closing && this.attempt && (await Promise.race([this.attempt, this.aborted]))) return;
    if (this.closing) await this.aborted;
    throw new AuditgraphError(
      "AUDITGRAPH_GRAPH_NOT_MIGRATED",
      `the graph's migrations are not applied yet: ${this.current.lastError ?? "first attempt under way"}`,
    );
  }

  state(): GraphState {
    return { ...this.current };
  }

  /** Resolves once migrated; rejects if the gate closes first. */
  migrated(): Promise<void> {
    return Promise.race([this.ready, this.aborted]);
  }

  /**
   * Stops retrying; calls waiting for the migrations fail (the projection stops, to resume from its
   * cursor next start). Resolves once the attempt under way has settled, for at most
   * CLOSE_GRACE_MS: a wait for another migrator's lock stops at once, and a migration that holds
   * the lock finishes and releases it, so the graph can be closed after this without keeping the
   * lock from other migrators until its lease runs out. An attempt still hanging after the grace
   * (a connection that never answers) is left: its lease frees the lock.
   */
  async close(): Promise<void> {
    this.closing = true;
    this.stop.abort(new AuditgraphError("AUDITGRAPH_WORKER_CLOSING", "the worker is closing before the graph's migrations were applied"));
    if (this.retry) {
      clearTimeout(this.retry.timer);
      this.retry.resolve();
    }
    await Promise.race([this.ready.catch(() => undefined), sleep(CLOSE_GRACE_MS, undefined, { ref: false })]);
  }

  private async migrateUntilDone(migrate: (signal: AbortSignal) => Promise<unknown>): Promise<void> {
    const { logger: log, retryMinMs, retryMaxMs } = this.options;
    for (;;) {
      if (this.closing) throw new AuditgraphError("AUDITGRAPH_E_MIGRATION_CLOSING", "closing");
      let done!: (ok: boolean) => void;
      this.attempt = new Promise<boolean>((resolve) => (done = resolve));
      try {
        const result = await migrate(this.stop.signal);
        if (this.current.failures > 0) log.warn({ failures: this.current.failures, result }, "graph migrations applied: projecting what the ledger holds");
        else log.info({ result }, "graph migrations applied");
        this.current = { migrated: true, failures: 0 };
        done(true);
        return;
      } catch (error) {
        const message = (error as Error).message ?? String(error);
        const failures = this.current.failures + 1;
        const wait = backoffMs(failures, { minMs: retryMinMs, maxMs: retryMaxMs });
        if (failures === 1)
          log.error(
            { error: message, retryInMs: wait },
            "graph migrations could not be applied (Neo4j away?): the ledger keeps accepting, the projection waits; retrying quietly, one line when done",
          );
        else log.debug({ error: message, failures, retryInMs: wait }, "graph migrations: still failing");
        this.current = { migrated: false, failures, lastError: message, failingSince: this.current.failingSince ?? new Date().toISOString() };
        this.attempt = undefined;
        done(false);
        if (this.closing) throw error;
        await new Promise<void>((resolve) => {
          this.retry = { timer: setTimeout(resolve, wait), resolve };
          this.retry.timer.unref();
        });
        this.retry = undefined;
      }
    }
  }
}
