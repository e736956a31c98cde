import { hostname } from "node:os";
import { EventSchema, SCHEMA_VERSION, parseWith, streamIdFor, type EventOf, type LedgerRecord } from "@auditgraph/core";
import type { EventStore } from "@auditgraph/ledger";
import { derivedEventId } from "./raised.js";
import type { EventRecorder } from "./recorder.js";

/** The trace every `shards.changed` record of a tenant is in: its changes are one trace of its base stream, read by the trace index. */
export const SHARDS_TRACE_ID = "auditgraph.shards";

// No event's time: the id is the same whichever worker derives it (see `ShardsChangedEventSchema`).
const NO_TIME = "00000000-0000-7000-8000-000000000000";

/** The tenant's recorded shard count and how many changes made it (1 and 0 before any). */
export async function recordedShards(ledger: Pick<EventStore, "readTrace">, tenantId: string): Promise<{ count: number; generation: number }> {
  const records = await ledger.readTrace(SHARDS_TRACE_ID, { streamId: streamIdFor(tenantId) });
  const changes = records.map((r: LedgerRecord) => r.event).filter((e): e is EventOf<"shards.changed"> => e.type === "shards.changed");
  const last = changes.reduce<EventOf<"shards.changed"> | undefined>((a, e) => (a && a.payload.generation >= e.payload.generation ? a : e), undefined);
  return last ? { count: last.payload.to, generation: last.payload.generation } : { count: 1, generation: 0 };
}

/**
 * Records a tenant's shard count changing before the first event placed by the new count is
 * appended: the worker knows the count each tenant's records say, and on a batch grouped by
 * another one appends a `shards.changed` event to the tenant's base stream first. Its id is
 * derived from the tenant, generation and count, so workers that meet the change at once store
 * it once (the ledger dedups by id). Read from the ledger once per tenant per process.
 */
export class ShardCounts {
  /** The count each tenant's records say, once read or recorded. */
  private readonly counts = new Map<string, number>();
  /** A tenant's look-up or change under way: the next waits for it. */
  private readonly pending = new Map<string, Promise<void>>();

  constructor(
    private readonly ledger: Pick<EventStore, "readTrace">,
    private readonly recorder: Pick<EventRecorder, "record">,
  ) {}

  /** Undefined (nothing to wait for, nothing allocated) when the ledger already says `count`; else resolves once it does. */
  ensure(tenantId: string, count: number): Promise<void> | undefined {
    if (this.counts.get(tenantId) === count) return undefined;
    const run = (this.pending.get(tenantId) ?? Promise.resolve())
      .catch(() => undefined)
      .then(async () => {
        if (this.counts.get(tenantId) !== count) this.counts.set(tenantId, await this.change(tenantId, count));
      });
    this.pending.set(tenantId, run);
    return run;
  }

  private async change(tenantId: string, count: number): Promise<number> {
    const { count: from, generation } = await recordedShards(this.ledger, tenantId);
    if (from === count) return count;
    const next = generation + 1;
    const event = parseWith(
      EventSchema,
      {
        eventId: derivedEventId(NO_TIME, `shards.changed|${tenantId}|${next}|${count}`),
        schemaVersion: SCHEMA_VERSION,
        occurredAt: new Date().toISOString(),
        traceId: SHARDS_TRACE_ID,
        runId: `${SHARDS_TRACE_ID}.${next}`,
        parentRunId: null,
        sessionId: null,
        tenantId,
        type: "shards.changed",
        payload: { from, to: count, generation: next, by: `worker ${hostname()} pid ${process.pid}` },
      },
      "shards.changed event",
    );
    await this.recorder.record(streamIdFor(tenantId), [event]);
    return count;
  }
}
