import {
  BatchJobSchema,
  EventSchema,
  ValidationError,
  issuesOf,
  streamIdFor,
  type AuditEvent,
  type LedgerRecord,
} from "@auditgraph/core";
import type { Ledger } from "@auditgraph/ledger";
import type { Graph } from "@auditgraph/graph";

export interface BatchOutcome {
  appended: number;
  duplicates: number;
  deadLettered: number;
  projected: number;
}

/**
 * One job: validate each event, append the good ones to the ledger (durable before anything
 * else happens), then project them. Bad input is dead-lettered with its reason and never
 * throws; only the ledger or the graph failing throws, so BullMQ retries the job, and the
 * ledger's dedup by event id makes the retry safe.
 */
export async function processBatch(ledger: Ledger, graph: Graph, jobId: string | null, data: unknown): Promise<BatchOutcome> {
  const recordedAt = new Date().toISOString();
  const batch = BatchJobSchema.safeParse(data);
  if (!batch.success) {
    const reason = new ValidationError("batch job", issuesOf(batch.error)).message;
    await ledger.deadLetter({ id: `${jobId}`, recordedAt, jobId, reason, input: data });
    return { appended: 0, duplicates: 0, deadLettered: 1, projected: 0 };
  }

  const byStream = new Map<string, AuditEvent[]>();
  let deadLettered = 0;
  for (const [index, input] of batch.data.events.entries()) {
    const parsed = EventSchema.safeParse(input);
    if (!parsed.success) {
      const reason = new ValidationError(`event ${index}`, issuesOf(parsed.error)).message;
      await ledger.deadLetter({ id: `${jobId}#${index}`, recordedAt, jobId, reason, input });
      deadLettered += 1;
      continue;
    }
    const streamId = streamIdFor(parsed.data.identity.user.tenantId);
    const list = byStream.get(streamId) ?? [];
    // The ledger keeps the event as it was received, not as parsed: fields this schema does not
    // know (a newer producer's, or an older one's) are kept, never silently dropped.
    list.push(input as AuditEvent);
    byStream.set(streamId, list);
  }

  const records: LedgerRecord[] = [];
  let appended = 0;
  for (const [streamId, events] of byStream) {
    const result = await ledger.append(streamId, events, recordedAt);
    records.push(...result.records);
    appended += result.appended;
  }
  // Records that were already in the ledger are projected again: a crash between append and
  // projection is healed by the redelivery, and MERGE makes the repeat harmless.
  await graph.project(records);
  return { appended, duplicates: records.length - appended, deadLettered, projected: records.length };
}
