import { DelayedError, type Job } from "bullmq";

/** How long a job whose stream another worker writes waits before it is offered again (ms). */
const BUSY_DELAY_MS = 20;
/** Jobs remembered at most (those returned here and recorded by another worker are forgotten by age). */
const REMEMBERED = 10_000;

/** Whether `error` says a stream's writer lock is held by another process (AUDITGRAPH_E_DIR_LOCKED, or a cause of it). */
export function streamBusy(error: unknown): boolean {
  for (let e = error, depth = 0; e instanceof Error && depth < 8; e = e.cause, depth += 1)
    if ((e as { code?: unknown }).code === "AUDITGRAPH_E_DIR_LOCKED") return true;
  return false;
}

/**
 * Jobs whose stream another worker is writing go back to the queue for a moment instead of
 * waiting for its lock: this worker takes another job (another shard's), and the writer keeps its
 * lease while batches of its shard keep coming, so N workers on one tenant settle on different
 * shards instead of handing each shard's lock back and forth batch by batch (every hand-over costs
 * the new writer a read of what the other appended). A job is returned for at most `returnForMs`;
 * then it fails like any other and BullMQ's retries (and, at the end, the dead letters) take over, so a
 * writer that never lets go is reported, not waited for in silence. No attempt is spent by a return.
 * With `returnForMs` 0 nothing is returned: a busy stream fails the job as any error does.
 */
export class BusyStreams {
  private readonly firstReturn = new Map<string, number>();

  constructor(
    /** How long a job may keep going back to the queue, from its first return here (ms). */
    private readonly returnForMs: number,
  ) {}
  /** Jobs returned so far (benches and tests read it). */
  returned = 0;

  async run<T>(job: Job, token: string | undefined, work: () => Promise<T>): Promise<T> {
    try {
      const result = await work();
      if (job.id !== undefined) this.firstReturn.delete(job.id);
      return result;
    } catch (error) {
      if (this.returnForMs === 0 || !streamBusy(error) || token === undefined || job.id === undefined) throw error;
      const now = Date.now();
      const first = this.firstReturn.get(job.id) ?? now;
      if (now - first > this.returnForMs) {
        this.firstReturn.delete(job.id);
        throw error;
      }
      if (this.firstReturn.size >= REMEMBERED) for (const [id, at] of this.firstReturn) if (now - at > this.returnForMs) this.firstReturn.delete(id);
      this.firstReturn.set(job.id, first);
      this.returned += 1;
      await job.moveToDelayed(now + BUSY_DELAY_MS, token);
      throw new DelayedError();
    }
  }
}
