import {
  isSystemEvent,
  sealEventWithKey,
  subjectRef,
  type AuditEvent,
  type DataKey,
  type LedgerRecord,
  type StoredEvent,
  type SubjectKeyStore,
  type UserEvent,
} from "@auditgraph/core";
import type { AppendResult, Ledger } from "@auditgraph/ledger";
import type { StageTimers } from "./stage-timers.js";

/** One stream's share of an append: its records as the ledger returned them, and the events in the clear. */
export interface AppendedStream {
  streamId: string;
  /** One per event appended, in order; an event already stored maps to its stored record. */
  records: LedgerRecord[];
  /** How many of `records` are new: they hold the stream's highest positions, as the ledger appended them last. */
  appended: number;
  /** The events as received, by id: the ledger may hand back ciphertext, the projection needs plaintext. */
  inHand: Map<string, AuditEvent>;
}

export interface EventRecorderOptions {
  ledger: Pick<Ledger, "append">;
  /**
   * When given, every event but a system one (`subject.erased`, `deployment`: no user asked for
   * them) is sealed for its data subject before it is appended: the ledger stores, hashes and
   * proves ciphertext, and erasing a subject is destroying its key here.
   */
  keyStore?: SubjectKeyStore;
  /** Told of every append (the worker's projector and metrics): the records are projected from memory when their turn comes. */
  onAppended?: (appended: AppendedStream) => void;
}

export interface RecordOptions {
  /** The keys to seal with, when a caller asked for them already (a job's, see `batchKeys`); else the key store's. */
  keys?: Pick<SubjectKeyStore, "keyFor">;
  /** The records' `recordedAt` (one for a whole job); the ledger's clock otherwise. */
  recordedAt?: string;
  /** Where the sealing and append CPU is counted (a job's, see `appendBatch`); untimed without it (the flags: the policies' CPU). */
  stages?: StageTimers;
}

/**
 * The one way the worker writes events to the ledger: seal (given a key store), append, and offer
 * the appended records to the projection. Whoever appends (a job, the policies' flags, the
 * notifier's attempts) cannot forget a step: a forgotten seal would put plaintext in the ledger
 * for good, a forgotten offer would leave the graph behind until the next start.
 */
export class EventRecorder {
  constructor(private readonly options: EventRecorderOptions) {}

  get keyStore(): SubjectKeyStore | undefined {
    return this.options.keyStore;
  }

  /** The key store's `keyFor`, asked once per subject however many events of a job it seals; undefined without a key store. */
  batchKeys(): Pick<SubjectKeyStore, "keyFor"> | undefined {
    const store = this.options.keyStore;
    if (!store) return undefined;
    const keys = new Map<string, ReturnType<SubjectKeyStore["keyFor"]>>();
    return {
      keyFor(subject) {
        let key = keys.get(subject);
        if (!key) keys.set(subject, (key = store.keyFor(subject)));
        return key;
      },
    };
  }

  /** The events as the ledger is to store them: sealed for their subject, but system events. */
  async seal(events: AuditEvent[], keys?: Pick<SubjectKeyStore, "keyFor">): Promise<StoredEvent[]> {
    const sealer = keys ?? this.options.keyStore;
    if (!sealer) return events;
    // Each subject's key is asked for once, all side by side, and then every event is sealed
    // without waiting: a promise per event cost more than a job's few subjects' lookups.
    const subjects: (string | undefined)[] = [];
    const refs = new Map<string, string>();
    const pending = new Map<string, Promise<DataKey>>();
    for (const event of events) {
      if (isSystemEvent(event)) {
        subjects.push(undefined);
        continue;
      }
      const { tenantId, id } = (event as UserEvent).identity.user;
      // A job's events have few users: each user's pseudonym (a SHA-256) is taken once.
      const pair = JSON.stringify([tenantId, id]);
      let subject = refs.get(pair);
      if (subject === undefined) refs.set(pair, (subject = subjectRef(tenantId, id)));
      if (!pending.has(subject)) pending.set(subject, sealer.keyFor(subject));
      subjects.push(subject);
    }
    const found = await Promise.all(pending.values());
    const bySubject = new Map<string, DataKey>();
    let i = 0;
    for (const subject of pending.keys()) bySubject.set(subject, found[i++]!);
    return events.map((event, at) => {
      const subject = subjects[at];
      return subject === undefined ? event : sealEventWithKey(event as UserEvent, bySubject.get(subject)!, subject);
    });
  }

  /**
   * Seals, appends (durable before this resolves) and offers the appended records. `inHand` maps
   * each event id to its first event in `events`: the content the ledger stored when it was new.
   */
  async record(streamId: string, events: AuditEvent[], { keys, recordedAt, stages }: RecordOptions = {}): Promise<AppendedStream> {
    // No sealing section without a key store: its series stays absent, as nothing was sealed.
    const sealing = stages && (keys ?? this.options.keyStore) ? stages.start("sealing") : undefined;
    let stored: StoredEvent[];
    try {
      stored = await this.seal(events, keys);
    } finally {
      if (sealing !== undefined) stages!.stop(sealing, events.length);
    }
    // Ledger.append is typed for events in the clear; it stores any StoredEvent alike (it reads
    // only eventId and traceId, which a sealed event keeps in its clear envelope).
    const appending = stages?.start("append");
    let result: AppendResult;
    try {
      result = await this.options.ledger.append(streamId, stored, recordedAt);
    } finally {
      if (appending !== undefined) stages!.stop(appending, events.length);
    }
    const inHand = new Map<string, AuditEvent>();
    for (const event of events) if (!inHand.has(event.eventId)) inHand.set(event.eventId, event);
    const appended: AppendedStream = { streamId, records: result.records, appended: result.appended, inHand };
    this.options.onAppended?.(appended);
    return appended;
  }
}
