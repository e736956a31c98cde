import { z } from "zod";
import { pino, type Logger } from "pino";
import {
  ValidationError,
  isSealed,
  logLevelOf,
  openRecords,
  parseWith,
  upcastEvent,
  type AuditEvent,
  type LedgerRecord,
  type PlainRecord,
  type SubjectKeyStore,
} from "@auditgraph/core";
import type { DeadLetter, Ledger } from "@auditgraph/ledger";
import { ForeignProjectionError, type Graph, type ProjectionCursor, type ProjectionRange, type RangeOutcome } from "@auditgraph/graph";
import { unerased, type AppendedStream } from "./process.js";
import { projectSettingAside } from "./projection-dead-letter.js";

/** What the projection needs of a graph: ranges with their cursor, and the cursors. */
export type ProjectionGraph = Pick<Graph, "projectRange" | "cursors">;

export const ProjectorSettingsSchema = z.object({
  /** Records projected in one write transaction. */
  batchSize: z.int().positive().default(500),
  /** The first wait after a failed projection (ms); it doubles with each failure in a row, up to `retryMaxMs`. */
  retryMinMs: z.int().positive().default(250),
  retryMaxMs: z.int().positive().default(30_000),
  /**
   * Appended records kept in memory, per stream, to be projected without reading them back. Past
   * this (the graph is slow or down) they are dropped and read from the ledger when their turn
   * comes: the plaintext of a backlog is never held, only its positions.
   */
  maxInHand: z.int().positive().default(10_000),
  /**
   * How long (ms) a stream's projection waits for more appended records when it has caught up
   * and fewer than `batchSize` are in hand: a transaction of a hundred records costs the graph
   * far less per record than ten of ten (the statements per batch are the same), so under load
   * this trades a little lag for throughput. 0: project each job's records as soon as they come.
   */
  lingerMs: z.int().nonnegative().default(200),
});
export type ProjectorSettings = z.input<typeof ProjectorSettingsSchema>;

export interface ProjectorOptions extends ProjectorSettings {
  ledger: Ledger;
  graph: ProjectionGraph;
  /** Opens sealed records read back from the ledger; an erased subject's are left out. */
  keyStore?: SubjectKeyStore;
  logger?: Logger;
  /** Told of each record the graph refused for good and set aside (its dead letter already recorded). */
  onSetAside?: (letter: DeadLetter) => void;
  /** Told of each batch's records once they are in the graph (the worker announces escalation changes from them). */
  onProjected?: (records: PlainRecord[]) => void;
}

/** One batch ready for `Graph.projectRange`: the range it covers (but the ledger's id) and its readable records. */
export interface OpenedRange {
  range: Omit<ProjectionRange, "ledgerId">;
  records: PlainRecord[];
  /** Records of the range left out because their subject was erased. */
  erased: number;
}

/** A stored event in the current schema version, or an error naming its place in the ledger. */
function current(record: LedgerRecord, event: unknown): AuditEvent {
  try {
    return upcastEvent(event);
  } catch (error) {
    const message = error instanceof ValidationError || error instanceof Error ? error.message : String(error);
    throw new Error(`stream ${record.streamId} position ${record.position}: ${message}`);
  }
}

/**
 * Ledger records of one stream, consecutive, as one projection range: opened with the key store
 * (an erased subject's left out: their plaintext never comes back) and upcast to the current
 * schema. Throws on records that are not consecutive, and on a sealed one with no key store.
 */
export async function openRange(batch: LedgerRecord[], keyStore?: Pick<SubjectKeyStore, "byId">): Promise<OpenedRange> {
  const first = batch[0];
  if (!first) throw new RangeError("openRange: no records");
  batch.forEach((r, i) => {
    if (r.streamId !== first.streamId || r.position !== first.position + i)
      throw new Error(`stream ${first.streamId}: position ${first.position + i} expected, the ledger gave ${r.streamId} position ${r.position}`);
  });
  let opened;
  if (keyStore) opened = await openRecords(batch, keyStore);
  else {
    const sealed = batch.find((r) => isSealed(r.event));
    if (sealed)
      throw new Error(`stream ${sealed.streamId} position ${sealed.position} is sealed for its data subject: the projection needs the key store to open it`);
    opened = batch.map((record) => ({ erased: false as const, record: record as PlainRecord }));
  }
  const records: PlainRecord[] = [];
  for (const o of opened) if (!o.erased) records.push({ ...o.record, event: current(o.record, o.record.event) });
  return { range: rangeOf(batch), records, erased: batch.length - records.length };
}

const rangeOf = (batch: LedgerRecord[]): OpenedRange["range"] => ({
  streamId: batch[0]!.streamId,
  from: batch[0]!.position,
  prevHash: batch[0]!.prevHash,
  hashes: batch.map((r) => r.hash),
});

/** A stream's records with positions in [from, to), at most `limit` of them. */
export async function readBatch(ledger: Ledger, streamId: string, from: number, to: number, limit: number): Promise<LedgerRecord[]> {
  const out: LedgerRecord[] = [];
  for await (const record of ledger.readStream(streamId, from, to)) {
    out.push(record);
    if (out.length >= limit) break;
  }
  return out;
}

interface StreamState {
  streamId: string;
  /** The cursor as this process last saw it; undefined until read from the graph. */
  projected?: number;
  /** The highest position this process appended (or was asked to project) and must see projected. */
  target: number;
  /** Also catch up to the ledger's end (at start: what other processes appended, or left behind). */
  toEnd: boolean;
  /** The cursor is not this ledger's: project the stream from its start and take the cursor over. */
  restart: boolean;
  /** Appended records in the clear, by position, while they are the next ones to project. */
  inHand: Map<number, { record: LedgerRecord; event: AuditEvent }>;
  running?: Promise<void>;
  /** When the oldest record in hand not yet taken by a batch was offered (see `lingerMs`). */
  since?: number;
  /** Ends a linger early: a full batch came into hand, or the projector is closing. */
  wake?: () => void;
  retry?: NodeJS.Timeout;
  failures: number;
  lastError?: string;
  /** Another ledger projects this stream's graph: said once, then tried now and then quietly. */
  foreign?: boolean;
  /** Records this process set aside (projection dead letters) rather than stop the stream. */
  setAside: number;
}

/** Where one stream's projection stands in this process. */
export interface StreamLag {
  streamId: string;
  /** The cursor as this process last saw it (-1: nothing projected; undefined: not read yet). */
  projected: number | undefined;
  /** The highest position this process has to see projected. */
  target: number;
  /** Failed attempts in a row (retried with backoff), and the last one's error. */
  failures: number;
  lastError?: string;
  /** Records set aside by this process: the graph refused them for good (see `dead-letters`). */
  setAside: number;
}

/**
 * Projects ledger streams into the graph from each stream's stored cursor, in position order, in
 * the background: appends (and job acks) never wait on it, and while the graph is down it retries
 * with backoff and then catches up. Records just appended by this process are projected from
 * memory when they are the next ones; anything else is read back from the ledger and opened. Any
 * number of processes may project one stream: each write locks the stream's cursor and projects
 * only what lies past it, on the same hash chain, so nothing is skipped or projected out of order.
 */
export class StreamProjector {
  private readonly streams = new Map<string, StreamState>();
  private readonly settings: z.output<typeof ProjectorSettingsSchema>;
  private readonly log: Logger;
  private closing = false;
  private resuming = false;
  private ledgerId?: Promise<string>;

  constructor(private readonly options: ProjectorOptions) {
    const { ledger: _l, graph: _g, keyStore: _k, logger, onSetAside: _s, onProjected: _p, ...settings } = options;
    this.settings = parseWith(ProjectorSettingsSchema, settings, "projector options");
    this.log = logger ?? pino({ name: "auditgraph-projector", level: logLevelOf() }, pino.destination(2));
  }

  /** The id of the ledger projected from: the cursors this projector moves are that ledger's. */
  private id(): Promise<string> {
    this.ledgerId ??= this.options.ledger.id().catch((error: unknown) => {
      this.ledgerId = undefined;
      throw error;
    });
    return this.ledgerId;
  }

  private state(streamId: string): StreamState {
    let s = this.streams.get(streamId);
    if (!s) this.streams.set(streamId, (s = { streamId, target: -1, toEnd: false, restart: false, inHand: new Map(), failures: 0, setAside: 0 }));
    return s;
  }

  /** Records one job appended to a stream: they are projected from memory when their turn comes. */
  offer(appended: AppendedStream): void {
    if (appended.records.length === 0) return;
    const s = this.state(appended.streamId);
    const last = appended.records.reduce((max, r) => Math.max(max, r.position), -1);
    s.target = Math.max(s.target, last);
    const done = s.projected ?? -1;
    // The new records hold the last positions of the append; the others were stored before and
    // are read back (as stored) if they still need projecting.
    for (const record of appended.records) {
      const event = appended.inHand.get(record.event.eventId);
      const fresh = record.position > last - appended.appended && record.position > done;
      if (fresh && event && s.failures === 0 && s.inHand.size < this.settings.maxInHand) {
        s.inHand.set(record.position, { record, event });
        s.since ??= Date.now();
      }
    }
    if (s.wake && s.target - (s.projected ?? -1) >= this.settings.batchSize) s.wake();
    this.kick(s);
  }

  /**
   * Catches every stream of the ledger up to its end, from its cursor: what other processes
   * appended, or a crashed worker left unprojected. One stream after another (appends meanwhile
   * are projected as usual): a ledger of many tenants does not open a session for each at once.
   */
  async resume(): Promise<void> {
    this.resuming = true;
    try {
      for (const streamId of await this.options.ledger.streams()) {
        if (this.closing) return;
        const s = this.state(streamId);
        s.toEnd = true;
        this.kick(s);
        await s.running;
      }
    } finally {
      this.resuming = false;
    }
  }

  /** Where each stream this process projects stands. */
  lag(): StreamLag[] {
    return [...this.streams.values()].map(({ streamId, projected, target, failures, lastError, setAside }) => ({
      streamId,
      projected,
      target,
      failures,
      setAside,
      ...(lastError ? { lastError } : {}),
    }));
  }

  /** Whether every stream is projected as far as this process knows of. */
  idle(): boolean {
    return !this.resuming && [...this.streams.values()].every((s) => !s.running && !this.pending(s));
  }

  /** Resolves once `idle()`; rejects after `timeoutMs` naming the streams still behind and why. */
  async settled(timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.idle()) {
      // A stream another ledger projects does not catch up by waiting: said at once.
      const refused = [...this.streams.values()].filter((s) => s.foreign && !s.running);
      if (refused.length > 0) throw new Error(`the projection is refused: ${refused.map((s) => s.lastError).join("; ")}`);
      if (Date.now() > deadline) {
        const behind = this.lag()
          .filter((l) => (l.projected ?? -1) < l.target || l.failures > 0)
          .map((l) => `${l.streamId} at ${l.projected ?? "?"} of ${l.target}${l.lastError ? ` (${l.failures} failures, last: ${l.lastError})` : ""}`);
        throw new Error(`the projection did not catch up within ${timeoutMs} ms: ${behind.join("; ") || "still running"}`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /**
   * Projects one stream through `through` (default: the ledger's end) now, in the caller's time:
   * throws on the first failure instead of retrying. The cursor's position after it.
   */
  async catchUp(streamId: string, through?: number): Promise<number> {
    const s: StreamState = { streamId, target: through ?? -1, toEnd: through === undefined, restart: false, inHand: new Map(), failures: 0, setAside: 0 };
    while (this.pending(s)) await this.step(s);
    return s.projected!;
  }

  /**
   * Stops retrying and catching up with others' appends; what this process appended is still
   * projected while the graph takes it (a failure ends that: the next start resumes from the cursor).
   */
  async close(): Promise<void> {
    this.closing = true;
    for (const s of this.streams.values()) {
      s.wake?.();
      clearTimeout(s.retry);
      s.retry = undefined;
      this.kick(s);
    }
    await Promise.all([...this.streams.values()].map((s) => s.running));
  }

  private pending(s: StreamState): boolean {
    if (s.projected === undefined) return true;
    if (this.closing) return !s.restart && s.failures === 0 && s.projected < s.target;
    return s.restart || s.toEnd || s.projected < s.target;
  }

  private kick(s: StreamState): void {
    if (s.running || s.retry || !this.pending(s)) return;
    if (this.closing && s.failures > 0) return;
    s.running = this.drain(s).finally(() => {
      s.running = undefined;
      // Work offered while the loop was ending.
      if (s.failures === 0) this.kick(s);
    });
  }

  private async drain(s: StreamState): Promise<void> {
    try {
      while (this.pending(s)) {
        // The cursor first: lingering needs to know what is left to project (maybe nothing).
        if (s.projected === undefined) {
          await this.readCursor(s);
          continue;
        }
        await this.linger(s);
        await this.step(s);
      }
      if (s.foreign) this.log.info({ streamId: s.streamId }, "the stream's graph is this ledger's now (handed over): projecting it");
      s.foreign = false;
      s.failures = 0;
      s.lastError = undefined;
    } catch (error) {
      s.failures += 1;
      s.lastError = error instanceof Error ? error.message : String(error);
      // The backlog is read back from the ledger when the graph is back: no plaintext piles up.
      s.inHand.clear();
      if (this.closing) return;
      const foreign = error instanceof ForeignProjectionError;
      const wait = foreign ? this.settings.retryMaxMs : Math.min(this.settings.retryMaxMs, this.settings.retryMinMs * 2 ** Math.min(s.failures - 1, 20));
      // Refused, not failing: one line when it starts (the stream may be handed over later, so it is looked at again now and then).
      if (foreign && !s.foreign)
        this.log.error(
          { code: error.code, streamId: s.streamId, ledgerId: error.ledgerId, ownerLedgerId: error.ownerLedgerId, retryInMs: wait },
          error.message,
        );
      s.foreign = foreign;
      if (!foreign)
        this.log.warn(
        { streamId: s.streamId, projected: s.projected, target: s.target, failures: s.failures, retryInMs: wait, error: s.lastError },
        "projection failed; the ledger keeps accepting, retrying",
      );
      s.retry = setTimeout(() => {
        s.retry = undefined;
        this.kick(s);
      }, wait);
      s.retry.unref();
    }
  }

  /**
   * Waits up to `lingerMs` from the oldest record's offer for a full batch, when everything left
   * to project is in hand: a backlog (read back from the ledger, or more than a batch) goes at once.
   */
  private async linger(s: StreamState): Promise<void> {
    const { lingerMs, batchSize } = this.settings;
    if (lingerMs === 0 || this.closing || s.since === undefined || s.projected === undefined || s.restart || s.toEnd) return;
    const from = s.projected + 1;
    const left = s.target - from + 1;
    if (left <= 0 || left >= batchSize) return;
    for (let p = from; p <= s.target; p++) if (!s.inHand.has(p)) return;
    const wait = s.since + lingerMs - Date.now();
    if (wait <= 0) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => s.wake?.(), wait);
      s.wake = () => {
        clearTimeout(timer);
        s.wake = undefined;
        resolve();
      };
    });
  }

  /** Reads the stream's cursor from the graph: where this process takes it up. */
  private async readCursor(s: StreamState): Promise<number> {
    const [cursor] = await this.options.graph.cursors(s.streamId);
    const ledgerId = await this.id();
    if (cursor && cursor.position >= 0 && cursor.ledgerId !== undefined && cursor.ledgerId !== ledgerId)
      throw new ForeignProjectionError(s.streamId, ledgerId, cursor.ledgerId);
    s.projected = cursor?.position ?? -1;
    // A cursor at or past everything this process has to project would otherwise be taken on
    // trust: check that it is on this ledger's chain (it may be from an older copy of this ledger).
    if (cursor && cursor.position >= 0 && !(await this.onChain(s, cursor.position, cursor.hash))) await this.restartStream(s, cursor.position, cursor);
    return s.projected;
  }

  /** One batch: from memory when the next records are in hand, else read back from the ledger. */
  private async step(s: StreamState): Promise<void> {
    const { ledger, graph, keyStore } = this.options;
    const { batchSize } = this.settings;
    const projected = s.projected ?? (await this.readCursor(s));
    const from = s.restart ? 0 : projected + 1;
    let batch: OpenedRange;
    let full = false;
    const hand = s.restart ? [] : this.fromHand(s, from);
    // What comes into hand from now on waits its own linger; what this batch leaves behind does not.
    if (hand.length === s.inHand.size) s.since = undefined;
    if (hand.length > 0) {
      const live = keyStore ? new Set(await unerased(hand.map((h) => h.record), keyStore)) : undefined;
      const records = hand
        .filter((h) => !live || live.has(h.record))
        .map((h) => ({ ...h.record, event: current(h.record, h.event) }));
      batch = { range: rangeOf(hand.map((h) => h.record)), records, erased: hand.length - records.length };
    } else {
      const to = s.toEnd || s.restart ? from + batchSize : Math.min(from + batchSize, s.target + 1);
      const read = await readBatch(ledger, s.streamId, from, to, batchSize);
      if (read.length === 0) {
        if (s.toEnd || s.restart) {
          s.toEnd = false;
          s.restart = false;
          return;
        }
        throw new Error(`stream ${s.streamId}: the ledger has no record at position ${from}, though position ${s.target} was appended`);
      }
      if (!s.restart && read[0]!.position !== from) {
        // Positions before it expired (retention) before they were projected: nothing can bring them back.
        this.log.warn({ streamId: s.streamId, from, firstLive: read[0]!.position }, "positions expired before they were projected; projecting from the first live one");
        s.restart = true;
      }
      full = read.length === batchSize;
      batch = await openRange(read, keyStore);
    }
    const ledgerId = await this.id();
    // A record the graph refuses for good is set aside (a projection dead letter), not retried for ever.
    const { outcome, setAside }: { outcome: RangeOutcome; setAside: DeadLetter[] } = await projectSettingAside(graph, ledger, { ...batch.range, ledgerId, restart: s.restart }, batch.records);
    for (const letter of setAside) {
      s.setAside += 1;
      this.log.error({ streamId: s.streamId, position: letter.projection?.position, code: letter.projection?.code }, `a record the graph refuses was set aside: ${letter.reason}`);
      this.options.onSetAside?.(letter);
    }
    if (outcome.status === "projected" && batch.records.length > 0) this.options.onProjected?.(batch.records);
    switch (outcome.status) {
      case "projected":
      case "behind":
        s.projected = outcome.position;
        if (s.restart) s.restart = false;
        // A short read from the ledger ended at its end.
        if (s.toEnd && hand.length === 0 && !full) s.toEnd = false;
        break;
      case "gap":
        s.projected = outcome.position;
        break;
      case "ahead":
        // Another process projected further: fine if it is this ledger's record there.
        if (await this.onChain(s, outcome.position, outcome.hash)) s.projected = outcome.position;
        else await this.restartStream(s, outcome.position);
        break;
      case "mismatch":
        await this.restartStream(s, outcome.position);
        break;
      case "foreign":
        throw new ForeignProjectionError(s.streamId, ledgerId, outcome.ledgerId);
    }
    for (const position of s.inHand.keys()) if (position <= (s.projected ?? -1)) s.inHand.delete(position);
  }

  /** Whether this ledger's record at `position` has `hash`. */
  private async onChain(s: StreamState, position: number, hash: string): Promise<boolean> {
    const record = s.inHand.get(position)?.record ?? (await readBatch(this.options.ledger, s.streamId, position, position + 1, 1))[0];
    return record?.position === position && record.hash === hash;
  }

  /** A cursor off this ledger's chain: projected again from the start if it is this ledger's, else refused. */
  private async restartStream(s: StreamState, position: number, read?: ProjectionCursor): Promise<void> {
    const ledgerId = await this.id();
    const cursor = read ?? (await this.options.graph.cursors(s.streamId))[0];
    if (cursor?.ledgerId !== ledgerId) throw new ForeignProjectionError(s.streamId, ledgerId, cursor?.ledgerId ?? null);
    this.log.warn(
      { streamId: s.streamId, cursor: position, ledgerId },
      "the projection cursor is this ledger's but not on its chain (an older copy of the ledger?): projecting this stream from its start",
    );
    s.restart = true;
    s.projected = -1;
    s.inHand.clear();
  }

  private fromHand(s: StreamState, from: number) {
    const out: { record: LedgerRecord; event: AuditEvent }[] = [];
    for (let p = from; out.length < this.settings.batchSize; p++) {
      const h = s.inHand.get(p);
      if (!h) break;
      out.push(h);
    }
    return out;
  }
}

/**
 * How far the graph lags behind the ledger, stream by stream: the cursor, the ledger's last
 * position, the difference, and the records set aside (in the ledger, past the cursor, but left
 * out of the graph: see `dead-letters`).
 */
export async function projectionLag(
  ledger: Ledger,
  graph: Pick<Graph, "cursors">,
): Promise<{ streamId: string; cursor: number; last: number; behind: number; setAside: number }[]> {
  const ledgerId = await ledger.id();
  const setAside = new Map<string, number>();
  for (const l of await ledger.readDeadLetters())
    if (l.kind === "projection" && l.projection) setAside.set(l.projection.streamId, (setAside.get(l.projection.streamId) ?? 0) + 1);
  // Another ledger's cursor is not this ledger's progress.
  const cursors = new Map((await graph.cursors()).filter((c) => c.ledgerId === undefined || c.ledgerId === ledgerId).map((c) => [c.streamId, c.position]));
  const out = [];
  for (const streamId of await ledger.streams()) {
    const cursor = cursors.get(streamId) ?? -1;
    let last = cursor;
    for await (const record of ledger.readStream(streamId, cursor + 1)) last = record.position;
    out.push({ streamId, cursor, last, behind: last - cursor, setAside: setAside.get(streamId) ?? 0 });
  }
  return out;
}
