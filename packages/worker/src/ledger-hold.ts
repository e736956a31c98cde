import type { Logger } from "pino";
import { backoffMs } from "@auditgraph/core";
import { ledgerUnavailable } from "@auditgraph/ledger";

/** Whether the ledger takes writes, as this worker last found it. */
export interface LedgerHealth {
  writable: boolean;
  /** Why not, e.g. `ENOSPC: no space left on the ledger's disk`. */
  reason?: string;
  /** Since when (ISO time), and the job held meanwhile. */
  since?: string;
  jobId?: string | null;
  /** Writes refused since then (each try of the held job): what happens instead of an append. */
  refused?: number;
}

/** The first wait after the ledger refused a write (ms); it doubles per try, up to the worker's `ledgerRetryMaxMs`. */
const FIRST_WAIT_MS = 100;

/**
 * Holds a job while the ledger cannot be written (a full or read-only disk, a database away): the
 * job stays unacknowledged and is tried again with a backoff; with every slot holding one, the
 * worker takes no other. Failing it instead would spend its retries, and every other job's, while
 * the disk stays full. Other errors fail the job as usual (BullMQ retries it).
 */
export class LedgerHold {
  private health: LedgerHealth = { writable: true };

  constructor(
    private readonly log: Logger,
    private readonly retryMaxMs: number,
    /** Aborted when the worker closes: the waits are cut short and the job fails (BullMQ retries it). */
    private readonly closing: AbortSignal,
  ) {}

  /** Whether the ledger takes writes, as last found. */
  state(): LedgerHealth {
    return { ...this.health };
  }

  /** Runs a job's work until it is recorded (see the class). */
  async untilRecorded<T>(jobId: string | null, work: () => Promise<T>): Promise<T> {
    let lastSaid = 0;
    for (let attempt = 1; ; attempt++) {
      try {
        const result = await work();
        if (!this.health.writable) {
          this.log.warn({ jobId, reason: this.health.reason, since: this.health.since }, "the ledger takes writes again: resuming");
          this.health = { writable: true };
        }
        return result;
      } catch (error) {
        const reason = ledgerUnavailable(error);
        if (!reason || this.closing.aborted) throw error;
        this.health = this.health.writable
          ? { writable: false, reason, since: new Date().toISOString(), jobId, refused: 1 }
          : { ...this.health, refused: (this.health.refused ?? 0) + 1 };
        if (Date.now() - lastSaid > 30_000) {
          lastSaid = Date.now();
          this.log.error(
            { jobId, reason, since: this.health.since, error: (error as Error).message },
            "the ledger cannot be written: holding this batch unacknowledged, taking no other, trying again",
          );
        }
        const wait = backoffMs(attempt, { minMs: FIRST_WAIT_MS, maxMs: this.retryMaxMs });
        await new Promise<void>((resolve) => {
          // The listener goes with the wait: a long outage must not pile one up per try on the worker's signal.
          const stop = () => (clearTimeout(timer), resolve());
          const timer = setTimeout(() => (this.closing.removeEventListener("abort", stop), resolve()), wait);
          this.closing.addEventListener("abort", stop, { once: true });
        });
      }
    }
  }
}
