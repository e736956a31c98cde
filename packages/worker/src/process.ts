import {
  BatchJobSchema,
  ValidationError,
  issuesOf,
  isSealed,
  isSystemEvent,
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

export interface BatchOutcome extends AppendOutcome {
  projected: number;
}

export interface ProcessOptions {
  /**
   * When given, every event but a system one (`subject.erased`, `deployment`: no user asked
   * for them) is sealed for its data subject before it is appended: the ledger stores, hashes
   * and proves ciphertext, and erasing a subject is destroying its key here. The graph is
   * still given the events in the clear.
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
export async function unerased(
  records: LedgerRecord[],
  store: Pick<SubjectKeyStore, "byId">,
  keys?: Pick<SubjectKeyStore, "keyFor">,
): Promise<LedgerRecord[]> {
  const byId = new Map<string, Promise<unknown>>();
  const out: LedgerRecord[] = [];
  for (const r of records) {
    if (!isSealed(r.event)) {
      out.push(r);
      continue;
    }
    const { subject, sealed } = r.event;
    // The key a batch sealed with (asked for already, so no I/O), else one look in the store per key.
    if (keys && (await keys.keyFor(subject)).keyId === sealed.keyId) {
      out.push(r);
      continue;
    }
    const at = `${subject}/${sealed.keyId}`;
    if (!byId.has(at)) byId.set(at, store.byId(subject, sealed.keyId));
    if (await byId.get(at)) out.push(r);
  }
  return out;
}

/** What one job did to the ledger (and, through `processBatch`, to the graph). */
export interface AppendOutcome {
  appended: number;
  duplicates: number;
  deadLettered: number;
}

/** One stream's share of a job: its records as the ledger returned them, and the events in the clear. */
export interface AppendedStream {
  streamId: string;
  /** One per event of the job in this stream, in job order; an event already stored maps to its stored record. */
  records: LedgerRecord[];
  /** How many of `records` are new: they hold the stream's highest positions, as the ledger appended them last. */
  appended: number;
  /** The events as received, by id: the ledger may hand back ciphertext, the projection needs plaintext. */
  inHand: Map<string, AuditEvent>;
}

export interface AppendedBatch {
  outcome: AppendOutcome;
  streams: AppendedStream[];
  /** The subjects' keys this job sealed with (given a key store), asked for once each. */
  keys?: Pick<SubjectKeyStore, "keyFor">;
}

/**
 * One job into the ledger: validate each event, seal it (given a key store) and append the good
 * ones, durable before this resolves. Bad input is dead-lettered with its reason and never
 * throws; only the ledger failing throws, so BullMQ retries the job, and the ledger's dedup by
 * event id makes the retry safe.
 */
export async function appendBatch(
  ledger: Ledger,
  jobId: string | null,
  data: unknown,
  options: ProcessOptions = {},
): Promise<AppendedBatch> {
  const recordedAt = new Date().toISOString();
  const batch = BatchJobSchema.safeParse(data);
  if (!batch.success) {
    const reason = new ValidationError("batch job", issuesOf(batch.error)).message;
    await ledger.deadLetter({ id: `${jobId}`, recordedAt, jobId, reason, input: data });
    return { outcome: { appended: 0, duplicates: 0, deadLettered: 1 }, streams: [] };
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

  const streams: AppendedStream[] = [];
  let appended = 0;
  let total = 0;
  const keys = options.keyStore && batchKeys(options.keyStore);
  for (const [streamId, events] of byStream) {
    const inHand = new Map<string, AuditEvent>();
    for (const event of events) if (!inHand.has(event.eventId)) inHand.set(event.eventId, event);
    const stored: StoredEvent[] = keys ? await Promise.all(events.map((e) => (isSystemEvent(e) ? e : sealEvent(e, keys)))) : events;
    // Ledger.append is typed for events in the clear; it stores any StoredEvent alike (it reads
    // only eventId and traceId, which a sealed event keeps in its clear envelope).
    const result = await ledger.append(streamId, stored, recordedAt);
    streams.push({ streamId, records: result.records, appended: result.appended, inHand });
    appended += result.appended;
    total += result.records.length;
  }
  return { outcome: { appended, duplicates: total - appended, deadLettered }, streams, ...(keys ? { keys } : {}) };
}

/**
 * One job, appended and then projected at once, without the projection cursor: for tools and
 * tests that want the graph written when this resolves. The worker acknowledges a job once it is
 * in the ledger and projects from the cursor instead (see `StreamProjector`).
 */
export async function processBatch(
  ledger: Ledger,
  graph: Graph,
  jobId: string | null,
  data: unknown,
  options: ProcessOptions = {},
): Promise<BatchOutcome> {
  const { outcome, streams, keys } = await appendBatch(ledger, jobId, data, options);
  const records = streams.flatMap((s) => s.records);
  const inHand = new Map(streams.flatMap((s) => [...s.inHand]));
  // Records that were already in the ledger are projected again: a crash between append and
  // projection is healed by the redelivery, and MERGE makes the repeat harmless.
  // The graph always sees the current version; the ledger keeps each event in its producer's.
  const live = options.keyStore ? await unerased(records, options.keyStore, keys) : records;
  await graph.project(live.map((r) => ({ ...r, event: upcastEvent(inHand.get(r.event.eventId) ?? r.event) })));
  return { ...outcome, projected: live.length };
}
