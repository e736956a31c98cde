/**
 * The stages of the worker whose CPU is kept apart (`auditgraph_worker_stage_cpu_seconds_total{stage}`):
 * - `validation`: the job's schema and each event's (`parseEvent`), before anything is written;
 * - `sealing`: each event sealed for its data subject (only with a key store);
 * - `append`: the ledger's append, durable: the record hashing, hash chain and Merkle leaves are
 *   done inside it (packages/ledger), so they are part of this stage, not one of their own;
 * - `policies`: a stream's share of a job evaluated (upcast included), and the flags and
 *   escalations it raised sealed and appended;
 * - `projection`: a batch of records made ready (from memory, or read back and opened) and written
 *   to the graph with its cursor (rows built by @auditgraph/graph inside the call).
 */
export const STAGES = ["validation", "sealing", "append", "policies", "projection"] as const;
export type Stage = (typeof STAGES)[number];

const INDEX: Readonly<Record<Stage, number>> = { validation: 0, sealing: 1, append: 2, policies: 3, projection: 4 };

/** The process's CPU time so far (user + system, all threads), in µs. */
function cpuMicros(): number {
  const { user, system } = process.cpuUsage();
  return user + system;
}

/**
 * The worker's CPU per stage, kept as plain numbers: a section costs two `process.cpuUsage()`
 * calls (about 1 µs each) and no allocation but their result, and sections are per job, per
 * stream or per projected batch, never per event; nothing is awaited. Exposed by `WorkerMetrics`.
 *
 * Why CPU and not wall time: the clock is `process.cpuUsage()`, which moves only while the
 * process runs. A stage that waits (the fsync of an append, a Redis round trip of the policies,
 * Neo4j's answer) adds nothing while it waits; what runs in it after the wait (the ledger's
 * hashing once its lease is taken, a policy once its state is read) is counted, which a
 * `performance.now()` around the synchronous part alone would miss.
 *
 * Sections nest, and each moment's CPU goes to one stage only: the innermost section open (the
 * one opened last), so a section opened inside another (a sync step inside an awaited one) is
 * taken out of the outer, and nothing is counted twice. The sum over stages is the process CPU
 * spent while some section was open; the rest (BullMQ and Redis, bookkeeping between stages, the
 * OTLP export) is in no stage. The split is exact while one thing runs at a time (the overhead
 * bench: jobs one after another, no graph). Where sections of separate tasks overlap (a job's
 * streams appended side by side, the background projection beside a job), the CPU of the moments
 * they overlap goes to the one opened last: the split between those stages is approximate, the sum is not.
 */
export class StageTimers {
  private readonly micros = new Float64Array(STAGES.length);
  private readonly counts = new Float64Array(STAGES.length);
  /** The sections open now, oldest first: their ids and stages side by side (numbers only). */
  private readonly openIds: number[] = [];
  private readonly openStages: number[] = [];
  private lastId = 0;
  private closed = 0;
  /** The clock at the last section opened or closed. */
  private last = 0;

  /** `clock`: µs of CPU so far (the process's; a test's own clock in unit tests). */
  constructor(private readonly clock: () => number = cpuMicros) {}

  /** Opens a section of `stage`; its id, for `stop`. */
  start(stage: Stage): number {
    this.tick();
    this.openIds.push(++this.lastId);
    this.openStages.push(INDEX[stage]);
    return this.lastId;
  }

  /** Closes section `id` (opened by `start`); `events` went through it. Call it in a `finally`: an open section takes the CPU after it. */
  stop(id: number, events: number): void {
    this.tick();
    const at = this.openIds.lastIndexOf(id);
    if (at < 0) return;
    this.counts[this.openStages[at]!]! += events;
    this.closed += 1;
    this.openIds.splice(at, 1);
    this.openStages.splice(at, 1);
  }

  /** The CPU since the last tick goes to the innermost open section (to none when none is open). */
  private tick(): void {
    const now = this.clock();
    const top = this.openStages.length - 1;
    if (top >= 0) this.micros[this.openStages[top]!]! += now - this.last;
    this.last = now;
  }

  /** CPU seconds spent in `stage` so far (sections still open count up to their last tick). */
  cpuSeconds(stage: Stage): number {
    return this.micros[INDEX[stage]]! / 1e6;
  }

  /** Sections closed so far, all stages (what the timers cost is about this many pairs of clock reads). */
  get sections(): number {
    return this.closed;
  }

  /** Events that went through `stage` so far (counted when their section closes). */
  events(stage: Stage): number {
    return this.counts[INDEX[stage]]!;
  }
}
