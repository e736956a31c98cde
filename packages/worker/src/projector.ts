import type { z } from "zod";
import { pino, type Logger } from "pino";
import { AuditgraphError, backoffMs, logLevelOf, parseWith, type AuditEvent, type LedgerRecord } from "@auditgraph/core";
import type { DeadLetter } from "@auditgraph/ledger";
import { ForeignProjectionError, type ProjectionCursor, type RangeOutcome } from "@auditgraph/graph";
import { unerased, type AppendedStream } from "./process.js";
import { projectSettingAside } from "./projection-dead-letter.js";
import { ProjectorSettingsSchema, type ProjectorOptions, type StreamLag, type StreamState } from "./projector-settings.js";
import { current, openRange, rangeOf, readBatch, type OpenedRange } from "./projection-range.js";
import type { StageTimers } from "./stage-timers.js";
import { setTimeout as sleep } from "node:timers/promises";

export { ProjectorSettingsSchema, type ProjectionGraph, type ProjectorOptions, type ProjectorSettings, type StreamLag } from "./projector-settings.js";
export { openRange, readBatch, projectionLag, type OpenedRange } from "./projection-range.js";

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

  /** `stages`: where each projected batch's CPU is counted (the worker's `WorkerMetrics.stages`). */
  constructor(private readonly options: ProjectorOptions & { stages?: StageTimers }) {
    const { ledger: _l, graph: _g, keyStore: _k, logger, onSetAside: _s, onProjected: _p, stages: _t, ...settings } = options;
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
      if (refused.length > 0)
        throw new AuditgraphError("AUDITGRAPH_E_PROJECTION_REFUSED", `the projection is refused: ${refused.map((s) => s.lastError).join("; ")}`);
      if (Date.now() > deadline) {
        const behind = this.lag()
          .filter((l) => (l.projected ?? -1) < l.target || l.failures > 0)
          .map((l) => `${l.streamId} at ${l.projected ?? "?"} of ${l.target}${l.lastError ? ` (${l.failures} failures, last: ${l.lastError})` : ""}`);
        throw new AuditgraphError(
          "AUDITGRAPH_E_PROJECTION_TIMEOUT",
          `the projection did not catch up within ${timeoutMs} ms: ${behind.join("; ") || "still running"}`,
        );
      }
      await sleep(20);
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
      const wait = foreign ? this.settings.retryMaxMs : backoffMs(s.failures, { minMs: this.settings.retryMinMs, maxMs: this.settings.retryMaxMs });
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

  /** One batch, its CPU counted as the projection's (with the time it waits on the graph, see `StageTimers`). */
  private async step(s: StreamState): Promise<void> {
    const section = this.options.stages?.start("projection");
    let projected = 0;
    try {
      projected = await this.projectBatch(s);
    } finally {
      if (section !== undefined) this.options.stages!.stop(section, projected);
    }
  }

  /** One batch: from memory when the next records are in hand, else read back from the ledger. How many records it projected. */
  private async projectBatch(s: StreamState): Promise<number> {
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
      const live = keyStore
        ? new Set(
            await unerased(
              hand.map((h) => h.record),
              keyStore,
            ),
          )
        : undefined;
      const records = hand.filter((h) => !live || live.has(h.record)).map((h) => ({ ...h.record, event: current(h.record, h.event) }));
      batch = { range: rangeOf(hand.map((h) => h.record)), records, erased: hand.length - records.length };
    } else {
      const to = s.toEnd || s.restart ? from + batchSize : Math.min(from + batchSize, s.target + 1);
      const read = await readBatch(ledger, s.streamId, from, to, batchSize);
      if (read.length === 0) {
        if (s.toEnd || s.restart) {
          s.toEnd = false;
          s.restart = false;
          return 0;
        }
        throw new AuditgraphError(
          "AUDITGRAPH_E_PROJECTION_MISSING_RECORD",
          `stream ${s.streamId}: the ledger has no record at position ${from}, though position ${s.target} was appended`,
        );
      }
      if (!s.restart && read[0]!.position !== from) {
        // Positions before it expired (retention) before they were projected: nothing can bring them back.
        this.log.warn(
          { streamId: s.streamId, from, firstLive: read[0]!.position },
          "positions expired before they were projected; projecting from the first live one",
        );
        s.restart = true;
      }
      full = read.length === batchSize;
      batch = await openRange(read, keyStore);
    }
    const ledgerId = await this.id();
    // A record the graph refuses for good is set aside (a projection dead letter), not retried for ever.
    const { outcome, setAside }: { outcome: RangeOutcome; setAside: DeadLetter[] } = await projectSettingAside(
      graph,
      ledger,
      { ...batch.range, ledgerId, restart: s.restart },
      batch.records,
    );
    for (const letter of setAside) {
      s.setAside += 1;
      this.log.error(
        { streamId: s.streamId, position: letter.projection?.position, code: letter.projection?.code },
        `a record the graph refuses was set aside: ${letter.reason}`,
      );
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
    return batch.records.length;
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
