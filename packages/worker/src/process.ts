import {
  BatchJobSchema,
  ValidationError,
  canonicalJson,
  issuesOf,
  isSealed,
  openEvent,
  parseEvent,
  ONE_SHARD,
  shardCountOf,
  shardOf,
  streamIdFor,
  tenantIdOf,
  upcastEvent,
  type AuditEvent,
  type LedgerRecord,
  type Shards,
  type SubjectKeyStore,
} from "@auditgraph/core";
import type { DeadLetter, Ledger } from "@auditgraph/ledger";
import type { Graph } from "@auditgraph/graph";
import { EventRecorder, type AppendedStream } from "./recorder.js";
import type { StageTimers } from "./stage-timers.js";
import type { ShardCounts } from "./shard-counts.js";

export type { AppendedStream } from "./recorder.js";

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
  /**
   * Appends through it (the worker's: it offers what it appends to the projection). Its key store
   * seals and `keyStore` is not looked at; without it, a recorder of `keyStore` that offers nothing.
   */
  recorder?: EventRecorder;
  /** Where the validation, sealing and append CPU of the job is counted (the worker's `WorkerMetrics.stages`); untimed without it. */
  stages?: StageTimers;
  /** Each tenant's shard count, for jobs that do not say theirs (older producers, OTLP ingest); default one shard. */
  shards?: Shards;
  /** Records a tenant's count changing before the first event it places (the worker's); unrecorded without it. */
  shardCounts?: ShardCounts;
}

/**
 * The records whose subject can still be read. A redelivered job may hold events whose subject
 * was erased since they were first appended: the ledger hands back the record sealed under the
 * destroyed key, and the plaintext in hand must not go back into the graph.
 */
export async function unerased(records: LedgerRecord[], store: Pick<SubjectKeyStore, "byId">, keys?: Pick<SubjectKeyStore, "keyFor">): Promise<LedgerRecord[]> {
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

/**
 * A job's data as Redis held it, when it is not JSON (written to Redis by something other than
 * BullMQ, or damaged there). BullMQ cannot parse it, so it would never hand the job over: the
 * job would be taken, found unreadable, stall and be taken again for ever. The worker hands it
 * over as this instead, and it is dead-lettered whole, its text kept exactly as received.
 */
export class UnparsedJobData {
  constructor(
    /** The job's `data` field, as received. */
    readonly text: string,
  ) {}

  /** Names the problem, never the content: a parser's message quotes the text, which may be personal data. */
  reason(): string {
    return `invalid batch job: data is not valid JSON (${this.text.length} characters, kept as received)`;
  }
}

/** What one job did to the ledger (and, through `processBatch`, to the graph). */
export interface AppendOutcome {
  appended: number;
  duplicates: number;
  deadLettered: number;
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
export async function appendBatch(ledger: Ledger, jobId: string | null, data: unknown, options: ProcessOptions = {}): Promise<AppendedBatch> {
  const recordedAt = new Date().toISOString();
  if (data instanceof UnparsedJobData) {
    await ledger.deadLetter({ id: `${jobId}`, recordedAt, jobId, reason: data.reason(), input: data.text });
    return { outcome: { appended: 0, duplicates: 0, deadLettered: 1 }, streams: [] };
  }
  const { stages } = options;
  // One section for the job's validation; the dead letters' writes in it wait on I/O, which adds no CPU (see `StageTimers`).
  const validating = stages?.start("validation");
  const batch = BatchJobSchema.safeParse(data);
  if (!batch.success) {
    if (validating !== undefined) stages!.stop(validating, 0);
    const reason = new ValidationError("batch job", issuesOf(batch.error)).message;
    await deadLetterWhole(ledger, { id: `${jobId}`, recordedAt, jobId, reason, input: data });
    return { outcome: { appended: 0, duplicates: 0, deadLettered: 1 }, streams: [] };
  }

  const byStream = new Map<string, { index: number; event: AuditEvent }[]>();
  // The shard count each tenant's events were placed by: the producer's, which grouped the batch by it, else this worker's.
  const counts = new Map<string, number>();
  const { shards = ONE_SHARD } = options;
  let deadLettered = 0;
  try {
    for (const [index, input] of batch.data.events.entries()) {
      const reason = invalidReason(index, input);
      if (reason) {
        await deadLetterWhole(ledger, { id: `${jobId}#${index}`, recordedAt, jobId, reason, input });
        deadLettered += 1;
        continue;
      }
      const event = input as AuditEvent;
      const tenantId = tenantIdOf(event);
      const count = batch.data.shards ?? shardCountOf(shards, tenantId);
      counts.set(tenantId, count);
      const streamId = streamIdFor(tenantId, shardOf(event.traceId, count));
      const list = byStream.get(streamId) ?? [];
      // The ledger keeps the event as it was received, not as parsed: fields this schema does not
      // know (a newer producer's, or an older one's) are kept, never silently dropped.
      list.push({ index, event });
      byStream.set(streamId, list);
    }
  } finally {
    if (validating !== undefined) stages!.stop(validating, batch.data.events.length);
  }

  const recorder = options.recorder ?? new EventRecorder({ ledger, ...(options.keyStore ? { keyStore: options.keyStore } : {}) });
  const keyStore = recorder.keyStore;
  // A count the tenant's records do not say yet is recorded first, on its base stream.
  const changes = options.shardCounts
    ? [...counts].map(([tenantId, count]) => options.shardCounts!.ensure(tenantId, count)).filter((p) => p !== undefined)
    : [];
  let appendedAt = recordedAt;
  if (changes.length > 0) {
    await Promise.all(changes);
    // The events' timestamps follow the change's, as their appends do.
    appendedAt = new Date().toISOString();
  }
  const keys = recorder.batchKeys();
  // The streams of a job are appended side by side: each is its own file with its own fsync (and
  // the ledger keeps one stream's appends in order), so a job spanning many tenants waits for
  // about one fsync rather than one per tenant. A failure in any still fails the job; the retry
  // finds the others' events stored, as duplicates.
  const results = await Promise.all(
    [...byStream].map(async ([streamId, entries]) => {
      const result = await recorder.record(
        streamId,
        entries.map((e) => e.event),
        { ...(keys ? { keys } : {}), ...(stages ? { stages } : {}), recordedAt: appendedAt },
      );
      const conflicts = await conflictsOf(entries, result.records, result.appended, keyStore);
      const inHand = new Map<string, AuditEvent>();
      const rejected: DeadLetter[] = [];
      for (const [i, { index, event }] of entries.entries()) {
        const record = result.records[i]!;
        if (!conflicts.has(i)) {
          if (!inHand.has(event.eventId)) inHand.set(event.eventId, event);
          continue;
        }
        // The ledger dedups by event id, so this content was not stored: it is dead-lettered, never
        // dropped in silence, and kept out of the projection and the policies (they see the stored one).
        const reason = `invalid event ${index}: eventId: event id already recorded with different content (stream ${streamId}, position ${record.position}); this one is not stored`;
        rejected.push({ id: `${jobId}#${index}`, recordedAt, jobId, reason, input: event });
      }
      const stream: AppendedStream = { streamId, records: result.records, appended: result.appended, inHand };
      return { stream, rejected, kept: result.records.length - conflicts.size };
    }),
  );
  let appended = 0;
  let total = 0;
  for (const r of results) {
    appended += r.stream.appended;
    total += r.kept;
    // One after another, as the other dead letters: the ledger's dead-letter file is one for all streams.
    for (const entry of r.rejected) await deadLetterWhole(ledger, entry);
    deadLettered += r.rejected.length;
  }
  return { outcome: { appended, duplicates: total - appended, deadLettered }, streams: results.map((r) => r.stream), ...(keys ? { keys } : {}) };
}

/** Why event `index` of a job cannot be appended (its fields named), or undefined when it can. */
function invalidReason(index: number, input: unknown): string | undefined {
  try {
    const parsed = parseEvent(input);
    return parsed.success ? undefined : new ValidationError(`event ${index}`, issuesOf(parsed.error)).message;
  } catch (error) {
    // A validator that throws (rather than reporting) must not fail the job on every retry.
    return `invalid event ${index}: could not be validated: ${(error as Error).message}`;
  }
}

/**
 * The job's entries (by their place in it) whose event id the ledger already held with other
 * content, or that a earlier entry of the same job took with other content. Content is compared
 * as canonical JSON; only repeated ids are compared, so a batch of new events costs nothing here.
 * A stored event whose subject was erased cannot be compared, and is taken as a plain repeat:
 * its plaintext must not come back, not even into the dead letters.
 */
async function conflictsOf(
  entries: { event: AuditEvent }[],
  records: LedgerRecord[],
  appendedCount: number,
  keyStore: Pick<SubjectKeyStore, "byId"> | undefined,
): Promise<Set<number>> {
  const last = records.reduce((max, r) => Math.max(max, r.position), -1);
  const seen = new Map<string, number>();
  const reference = new Map<string, string | null>();
  const conflicts = new Set<number>();
  for (const [i, { event }] of entries.entries()) {
    const record = records[i]!;
    const fresh = record.position > last - appendedCount;
    const first = seen.get(event.eventId);
    if (first === undefined) seen.set(event.eventId, i);
    if (fresh && first === undefined) continue;
    if (!reference.has(event.eventId)) {
      if (fresh) reference.set(event.eventId, canonicalJson(entries[first!]!.event));
      else {
        const opened = keyStore ? await openEvent(record.event, keyStore) : { erased: false as const, event: record.event as AuditEvent };
        reference.set(event.eventId, opened.erased ? null : canonicalJson(opened.event));
      }
    }
    const ref = reference.get(event.eventId);
    if (ref !== null && ref !== canonicalJson(event)) conflicts.add(i);
  }
  return conflicts;
}

/**
 * A dead letter, whatever its input: one too deeply nested for JSON.stringify (thousands of
 * levels overflow its stack) is kept as its JSON text, written without recursion, so nothing
 * is lost and the job is not failed on every retry.
 */
async function deadLetterWhole(ledger: Ledger, entry: DeadLetter): Promise<void> {
  let serialisable = true;
  try {
    JSON.stringify(entry.input);
  } catch (error) {
    if (!(error instanceof RangeError)) throw error;
    serialisable = false;
  }
  if (serialisable) return ledger.deadLetter(entry);
  return ledger.deadLetter({ ...entry, input: jsonTextOf(entry.input), inputAs: "json-text" });
}

/** JSON.stringify's text for a JSON value, with an explicit stack instead of recursion. */
export function jsonTextOf(value: unknown): string {
  const out: string[] = [];
  const stack: { close: string; items: [string | null, unknown][]; at: number }[] = [];
  const open = (v: unknown) => {
    if (typeof v !== "object" || v === null || typeof (v as { toJSON?: unknown }).toJSON === "function") out.push(JSON.stringify(v) ?? "null");
    else if (Array.isArray(v)) {
      out.push("[");
      stack.push({ close: "]", items: v.map((x): [null, unknown] => [null, x]), at: 0 });
    } else {
      out.push("{");
      stack.push({ close: "}", items: Object.entries(v).filter(([, x]) => x !== undefined && typeof x !== "function"), at: 0 });
    }
  };
  open(value);
  while (stack.length > 0) {
    const top = stack.at(-1)!;
    if (top.at === top.items.length) {
      out.push(top.close);
      stack.pop();
      continue;
    }
    const [key, child] = top.items[top.at++]!;
    if (top.at > 1) out.push(",");
    if (key !== null) out.push(JSON.stringify(key), ":");
    open(child);
  }
  return out.join("");
}

/**
 * One job, appended and then projected at once, without the projection cursor: for tools and
 * tests that want the graph written when this resolves. The worker acknowledges a job once it is
 * in the ledger and projects from the cursor instead (see `StreamProjector`).
 */
export async function processBatch(ledger: Ledger, graph: Graph, jobId: string | null, data: unknown, options: ProcessOptions = {}): Promise<BatchOutcome> {
  const { outcome, streams, keys } = await appendBatch(ledger, jobId, data, options);
  const keyStore = options.recorder ? options.recorder.keyStore : options.keyStore;
  const records = streams.flatMap((s) => s.records);
  const inHand = new Map(streams.flatMap((s) => [...s.inHand]));
  // Records that were already in the ledger are projected again: a crash between append and
  // projection is healed by the redelivery, and MERGE makes the repeat harmless.
  // The graph always sees the current version; the ledger keeps each event in its producer's.
  const live = keyStore ? await unerased(records, keyStore, keys) : records;
  await graph.project(live.map((r) => ({ ...r, event: upcastEvent(inHand.get(r.event.eventId) ?? r.event) })));
  return { ...outcome, projected: live.length };
}
