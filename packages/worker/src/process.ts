import {
  BatchJobSchema,
  ValidationError,
  issuesOf,
  isErasure,
  isSealed,
  parseEvent,
  sealEvent,
  streamIdFor,
  tenantIdOf,
  upcastEvent,
  type AuditEvent,
  type LedgerRecord,
  type StoredEvent,
  type SubjectKeyStore,
} from "@auditgraph/core";
import type { Ledger } from "@auditgraph/ledger";
import type { Graph } from "@auditgraph/graph";

export interface BatchOutcome {
  appended: number;
  duplicates: number;
  deadLettered: number;
  projected: number;
}

export interface ProcessOptions {
  /**
   * When given, every event but a `subject.erased` is sealed for its data subject before it is
   * appended: the ledger stores, hashes and proves ciphertext, and erasing a subject is
   * destroying its key here. The graph is still given the events in the clear.
   */
  keyStore?: SubjectKeyStore;
}

/** The store's `keyFor`, asked once per subject in a batch however many of its events the batch holds. */
function batchKeys(store: SubjectKeyStore): Pick<SubjectKeyStore, "keyFor"> {
  const keys = new Map<string, ReturnType<SubjectKeyStore["keyFor"]>>();
  return {
    keyFor(subject) {
      let key = keys.get(subject);
      if (!key) keys.set(subject, (key = store.keyFor(subject)));
      return key;
    },
  };
}

/**
 * The records whose subject can still be read. A redelivered job may hold events whose subject
 * was erased since they were first appended: the ledger hands back the record sealed under the
 * destroyed key, and the plaintext in hand must not go back into the graph.
 */
async function unerased(records: LedgerRecord[], store: SubjectKeyStore, keys: Pick<SubjectKeyStore, "keyFor">): Promise<LedgerRecord[]> {
  const out: LedgerRecord[] = [];
  for (const r of records) {
    if (!isSealed(r.event)) {
      out.push(r);
      continue;
    }
    const { subject, sealed } = r.event;
    // The key this batch sealed with (asked for already, so no I/O), else a look in the store.
    if ((await keys.keyFor(subject)).keyId === sealed.keyId || (await store.byId(subject, sealed.keyId))) out.push(r);
  }
  return out;
}

/**
 * One job: validate each event, append the good ones to the ledger (durable before anything
 * else happens), then project them. Bad input is dead-lettered with its reason and never
 * throws; only the ledger or the graph failing throws, so BullMQ retries the job, and the
 * ledger's dedup by event id makes the retry safe.
 */
export async function processBatch(
  ledger: Ledger,
  graph: Graph,
  jobId: string | null,
  data: unknown,
  options: ProcessOptions = {},
): Promise<BatchOutcome> {
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
    const parsed = parseEvent(input);
    if (!parsed.success) {
      const reason = new ValidationError(`event ${index}`, issuesOf(parsed.error)).message;
      await ledger.deadLetter({ id: `${jobId}#${index}`, recordedAt, jobId, reason, input });
      deadLettered += 1;
      continue;
    }
    const streamId = streamIdFor(tenantIdOf(parsed.data));
    const list = byStream.get(streamId) ?? [];
    // The ledger keeps the event as it was received, not as parsed: fields this schema does not
    // know (a newer producer's, or an older one's) are kept, never silently dropped.
    list.push(input as AuditEvent);
    byStream.set(streamId, list);
  }

  const records: LedgerRecord[] = [];
  let appended = 0;
  const keys = options.keyStore && batchKeys(options.keyStore);
  // The events in the clear, by id, for the projection: the ledger may hand back ciphertext.
  const inHand = new Map<string, AuditEvent>();
  for (const [streamId, events] of byStream) {
    for (const event of events) if (!inHand.has(event.eventId)) inHand.set(event.eventId, event);
    const stored: StoredEvent[] = keys ? await Promise.all(events.map((e) => (isErasure(e) ? e : sealEvent(e, keys)))) : events;
    // Ledger.append is typed for events in the clear; it stores any StoredEvent alike (it reads
    // only eventId and traceId, which a sealed event keeps in its clear envelope).
    const result = await ledger.append(streamId, stored, recordedAt);
    records.push(...result.records);
    appended += result.appended;
  }
  // Records that were already in the ledger are projected again: a crash between append and
  // projection is healed by the redelivery, and MERGE makes the repeat harmless.
  // The graph always sees the current version; the ledger keeps each event in its producer's.
  const live = keys && options.keyStore ? await unerased(records, options.keyStore, keys) : records;
  await graph.project(live.map((r) => ({ ...r, event: upcastEvent(inHand.get(r.event.eventId) ?? r.event) })));
  return { appended, duplicates: records.length - appended, deadLettered, projected: live.length };
}
