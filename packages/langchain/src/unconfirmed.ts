import type { SpooledBatch } from "./spool.js";

/**
 * Batches sent and not yet known to be recorded by a worker, oldest first, with the Redis epoch
 * each was sent in (a batch Redis no longer knows was lost only if Redis's epoch changed since).
 * Bounded by events: past `maxEvents` the oldest are let go, unguarded.
 */
export class UnconfirmedBatches {
  private readonly held = new Map<string, { batch: SpooledBatch; epoch: string | undefined }>();
  /** Events in the held batches. */
  events = 0;
  /** Redis's epoch as last read: a batch is held with the epoch it was sent in. */
  epoch: string | undefined;

  constructor(private readonly maxEvents: number) {}

  get size(): number {
    return this.held.size;
  }

  /** Takes Redis's epoch as just read; true when it differs from the one before (Redis lost its data). */
  changedEpoch(epoch: string): boolean {
    const changed = this.epoch !== undefined && epoch !== this.epoch;
    this.epoch = epoch;
    return changed;
  }

  /** Holds a batch just sent; returns how many events of older batches were let go to stay in bounds. */
  hold(batch: SpooledBatch): number {
    if (this.held.has(batch.jobId)) return 0;
    this.held.set(batch.jobId, { batch, epoch: this.epoch });
    this.events += batch.events.length;
    let dropped = 0;
    for (const { batch: oldest } of this.held.values()) {
      if (this.events <= this.maxEvents) break;
      this.release(oldest);
      dropped += oldest.events.length;
    }
    return dropped;
  }

  release(batch: SpooledBatch): void {
    if (this.held.delete(batch.jobId)) this.events -= batch.events.length;
  }

  /** The `n` oldest held batches. */
  oldest(n: number): { batch: SpooledBatch; epoch: string | undefined }[] {
    return [...this.held.values()].slice(0, n);
  }
}
