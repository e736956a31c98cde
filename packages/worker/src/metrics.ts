import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import { STAGES, StageTimers } from "./stage-timers.js";

/** Queue states reported by `auditgraph_queue_jobs` (BullMQ's names). */
export const QUEUE_STATES = ["waiting", "active", "delayed", "prioritized", "waiting-children", "failed", "completed"] as const;

export interface WorkerMetricsSources {
  /** Ledger positions this worker knows of that the graph does not have yet, summed over streams. */
  projectionLag: () => number;
  /** Jobs by state; undefined when Redis does not answer (the series are then left out). */
  queueCounts: () => Promise<Record<string, number> | undefined>;
  redisUp: () => boolean;
  ledgerWritable: () => boolean;
  graphMigrated: () => boolean;
  /** Jobs returned to the queue because another worker held their stream (see `BusyStreams`); no series without it. */
  busyReturns?: () => number;
}

// Latency buckets (seconds) from a fsync on a fast disk to a projection held up by a busy graph.
const BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/**
 * The worker's Prometheus metrics, in a registry of its own (several workers in one process do not
 * collide). Counters count what this process did since it started; gauges are read at each scrape.
 */
export class WorkerMetrics {
  readonly registry = new Registry();
  readonly eventsAppended: Counter;
  readonly eventsDuplicate: Counter;
  readonly deadLetters: Counter;
  readonly projectionDeadLetters: Counter;
  readonly escalationsOpened: Counter;
  readonly appendSeconds: Histogram;
  readonly projectionSeconds: Histogram;
  /** Spans the OTLP export sent, dropped (queue full, run map full, closing) and failed to send (see `WorkerOtlpExport`). */
  readonly otlpSpansExported: Counter;
  readonly otlpSpansDropped: Counter;
  readonly otlpSpansFailed: Counter;
  /** The CPU each stage of the worker spends, and the events through it (see `StageTimers`); read at each scrape. */
  readonly stages = new StageTimers();
  private processMetrics = false;

  constructor(sources: WorkerMetricsSources) {
    const registers = [this.registry];
    this.eventsAppended = new Counter({
      name: "auditgraph_events_appended_total",
      help: "Events appended to the ledger (new ones, not redelivered duplicates)",
      registers,
    });
    this.eventsDuplicate = new Counter({
      name: "auditgraph_events_duplicate_total",
      help: "Events received again that the ledger already held (redeliveries)",
      registers,
    });
    this.deadLetters = new Counter({
      name: "auditgraph_dead_letters_total",
      help: "Inputs set aside as dead letters (invalid, or failed for good)",
      registers,
    });
    this.projectionDeadLetters = new Counter({
      name: "auditgraph_projection_dead_letters_total",
      help: "Ledger records the graph refused for good, set aside (listed by `auditgraph dead-letters`) so the stream goes on",
      registers,
    });
    this.escalationsOpened = new Counter({ name: "auditgraph_escalations_opened_total", help: "Escalations opened by policy findings", registers });
    this.appendSeconds = new Histogram({
      name: "auditgraph_append_seconds",
      help: "Time to append one job (batch) to the ledger, durable",
      buckets: BUCKETS,
      registers,
    });
    this.projectionSeconds = new Histogram({
      name: "auditgraph_projection_seconds",
      help: "Time of one projection write transaction (a range of one stream) into Neo4j",
      buckets: BUCKETS,
      registers,
    });
    this.otlpSpansExported = new Counter({
      name: "auditgraph_otlp_spans_exported_total",
      help: "Spans made of recorded events that the OTLP endpoint (AUDITGRAPH_OTLP_EXPORT_URL) accepted",
      registers,
    });
    this.otlpSpansDropped = new Counter({
      name: "auditgraph_otlp_spans_dropped_total",
      help: "Spans (or events, or open runs) the OTLP export let go unsent: its bounded queue or run map full, or still queued at close",
      registers,
    });
    this.otlpSpansFailed = new Counter({
      name: "auditgraph_otlp_spans_failed_total",
      help: "Spans the OTLP export sent and gave up on (the endpoint down or refusing past the exporter's retries)",
      registers,
    });
    // Counters whose value is read from `stages` at each scrape: the hot path adds to plain numbers,
    // never to a labelled prom-client child. A stage that never ran has no series.
    const stages = this.stages;
    new Counter({
      name: "auditgraph_worker_stage_cpu_seconds_total",
      help: "Process CPU (user + system) spent in each stage of the worker (validation, sealing, append, policies, projection); per event: rate of this / rate of auditgraph_worker_stage_events_total",
      labelNames: ["stage"],
      registers,
      collect() {
        this.reset();
        for (const stage of STAGES) if (stages.events(stage) > 0 || stages.cpuSeconds(stage) > 0) this.inc({ stage }, stages.cpuSeconds(stage));
      },
    });
    new Counter({
      name: "auditgraph_worker_stage_events_total",
      help: "Events that went through each stage of the worker (validation, sealing, append, policies: a job's events; projection: records projected)",
      labelNames: ["stage"],
      registers,
      collect() {
        this.reset();
        for (const stage of STAGES) if (stages.events(stage) > 0 || stages.cpuSeconds(stage) > 0) this.inc({ stage }, stages.events(stage));
      },
    });
    const busyReturns = sources.busyReturns;
    if (busyReturns)
      new Counter({
        name: "auditgraph_jobs_returned_busy_total",
        help: "Jobs put back in the queue for a moment because another worker was writing their ledger stream (no attempt spent); a steady rate means workers keep meeting on the same streams",
        registers,
        collect() {
          this.reset();
          this.inc(busyReturns());
        },
      });
    new Gauge({
      name: "auditgraph_projection_lag_events",
      help: "Ledger records this worker appended or must catch up that the graph does not have yet",
      registers,
      collect() {
        this.set(sources.projectionLag());
      },
    });
    new Gauge({
      name: "auditgraph_queue_jobs",
      help: "Jobs in the queue by state",
      labelNames: ["state"],
      registers,
      async collect() {
        const counts = await sources.queueCounts();
        this.reset();
        for (const state of QUEUE_STATES) if (counts?.[state] !== undefined) this.set({ state }, counts[state]);
      },
    });
    const flag = (name: string, help: string, read: () => boolean) =>
      new Gauge({
        name,
        help,
        registers,
        collect() {
          this.set(read() ? 1 : 0);
        },
      });
    flag("auditgraph_redis_up", "1 while Redis answers this worker", sources.redisUp);
    flag("auditgraph_ledger_writable", "1 while the ledger takes writes", sources.ledgerWritable);
    flag("auditgraph_graph_migrated", "1 once the graph's migrations are applied", sources.graphMigrated);
  }

  /** Adds the process metrics (memory, CPU, event loop): for the one worker a process serves over HTTP. */
  withProcessMetrics(): this {
    if (!this.processMetrics) collectDefaultMetrics({ register: this.registry });
    this.processMetrics = true;
    return this;
  }
}
