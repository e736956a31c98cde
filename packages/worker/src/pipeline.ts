import type { Logger } from "pino";
import type { Shards } from "@auditgraph/core";
import type { ShardCounts } from "./shard-counts.js";
import type { Ledger } from "@auditgraph/ledger";
import { appendBatch, type AppendOutcome } from "./process.js";
import { recordRaised, type PolicyEngine } from "./policies.js";
import type { EventRecorder } from "./recorder.js";
import type { WorkerNotifications } from "./notifications.js";
import type { WorkerMetrics } from "./metrics.js";

/** What one job goes through; the worker builds each part once (see `AuditWorker`). */
export interface PipelineParts {
  /** Where bad input is dead-lettered; events go through `recorder`. */
  ledger: Ledger;
  /** Seals, appends, and offers to the projection (which follows in the background); it counts `eventsAppended`. */
  recorder: EventRecorder;
  policyEngine?: PolicyEngine;
  notifications?: WorkerNotifications;
  metrics: WorkerMetrics;
  log: Logger;
  /** Each tenant's shard count for jobs that do not carry the producer's (see `appendBatch`). */
  shards?: Shards;
  /** Records a tenant's shard count changing (see `ShardCounts`). */
  shardCounts?: ShardCounts;
  /** Leaves `metrics.stages` alone: only for the overhead bench's baseline (bench/worker-stages.ts); the worker always times. */
  untimed?: boolean;
}

/**
 * One job (a batch of events), in the order it is recorded:
 * 1. its events are appended to the ledger, durable, and offered to the projection;
 * 2. each stream's events are evaluated by the policies, and what they raise (flags, escalations)
 *    is appended after them: a flag is evidence about recorded events;
 * 3. the escalations this job opened are handed to the notifier, in the background.
 * The job is acked when this resolves: its flags are in the ledger too. A failure anywhere fails
 * the job and BullMQ retries it; the ledger's dedup by event id (and derived ids for flags) makes
 * the retry safe.
 */
export async function recordJob(parts: PipelineParts, jobId: string | null, data: unknown): Promise<AppendOutcome> {
  const { ledger, recorder, policyEngine, notifications, metrics, log } = parts;
  const stages = parts.untimed ? undefined : metrics.stages;

  const started = performance.now();
  const { outcome, streams, keys } = await appendBatch(ledger, jobId, data, {
    recorder,
    ...(stages ? { stages } : {}),
    ...(parts.shards ? { shards: parts.shards } : {}),
    ...(parts.shardCounts ? { shardCounts: parts.shardCounts } : {}),
  });
  metrics.appendSeconds.observe((performance.now() - started) / 1_000);
  metrics.eventsDuplicate.inc(outcome.duplicates);
  metrics.deadLetters.inc(outcome.deadLettered);

  for (const stream of policyEngine ? streams : []) {
    // The flags' sealing and append (untimed in the recorder: no `stages` passed) are the policies' CPU.
    const section = stages?.start("policies");
    let raised: Awaited<ReturnType<typeof recordRaised>>;
    try {
      raised = await recordRaised(recorder, await policyEngine!.evaluate(stream), keys);
    } finally {
      if (section !== undefined) stages!.stop(section, stream.inHand.size);
    }
    if (!raised) continue;
    metrics.escalationsOpened.inc(raised.opened.length);
    // Escalation-first: the receivers hear of it now; the delivery never holds the ack.
    for (const opened of raised.opened) notifications?.notify(opened);
    log.info(
      { jobId, streamId: stream.streamId, flags: raised.flags, escalations: raised.escalations, newlyAppended: raised.appended.appended },
      "policy findings recorded",
    );
  }
  return outcome;
}
