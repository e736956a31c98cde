import { z } from "zod";
import { MAX_SHARDS } from "./streams.js";

/** The BullMQ queue events travel on, and the shape of one job: a batch of events. */
export const DEFAULT_QUEUE_NAME = "auditgraph-events";
export const BATCH_JOB_NAME = "events";

/** Events stay `unknown` here: the worker validates each on its own, so one bad event cannot sink its batch. */
export const BatchJobSchema = z.object({
  events: z.array(z.unknown()).min(1),
  /**
   * The shard count the producer grouped this batch by (its `AUDITGRAPH_SHARDS` for the tenant):
   * the worker places the events by it, so a trace stays in one shard for as long as the process
   * that runs it does, even while a changed count rolls out. Absent (older producers, replays):
   * the worker's own count.
   */
  shards: z.int().min(1).max(MAX_SHARDS).optional(),
});

/**
 * A key set once (if absent) to a random value in the queue's Redis, by whoever looks first: a
 * value that changes or disappears says Redis lost its data (a restart without persistence, a
 * flush), and with it whatever jobs it held. `prefix` is BullMQ's (`bull` by default).
 */
export const epochKey = (queueName: string, prefix = "bull") => `${prefix}:${queueName}:auditgraph-epoch`;
export type BatchJob = z.infer<typeof BatchJobSchema>;

/** BullMQ takes lower priorities first; see `batchJobOptions`. */
export const BATCH_PRIORITY = 1_000;
export const URGENT_BATCH_PRIORITY = 1;
export const BATCH_ATTEMPTS = 20;

/**
 * The options of every batch job, whoever adds it (the transport, a dead-letter replay): one
 * place, so that none keeps plaintext in Redis longer than another.
 * - `removeOnComplete`: once a worker has recorded a batch (it is in the ledger), the job and
 *   the events in it leave Redis at once; BullMQ would keep the last 1,000.
 * - `removeOnFail: false`: a batch out of retries stays until the worker has dead-lettered it
 *   (then the worker removes it), so that it is never gone from both places.
 * - `priority`: ordinary batches carry one too, or urgent ones could never overtake them
 *   (BullMQ takes jobs without a priority before all prioritized ones).
 */
export function batchJobOptions({
  jobId,
  priority = BATCH_PRIORITY,
  attempts = BATCH_ATTEMPTS,
}: {
  jobId?: string;
  priority?: number;
  attempts?: number;
} = {}) {
  return {
    ...(jobId ? { jobId } : {}),
    priority,
    attempts,
    backoff: { type: "exponential" as const, delay: 500 },
    removeOnComplete: true,
    removeOnFail: false,
  };
}
