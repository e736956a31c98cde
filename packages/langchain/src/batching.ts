import { shardCountOf, shardOf, tenantIdOf, type AuditEvent, type Shards } from "@auditgraph/core";

export interface Cut {
  /** The batch: one stream's events (tenant and shard), in capture order. */
  events: AuditEvent[];
  /** What stays buffered, in its order. */
  rest: AuditEvent[];
  /** The shard count the batch was grouped by: the worker places its events by it. */
  shards: number;
  /** How many of the first `urgentThrough` buffered events the batch took. */
  urgentTaken: number;
}

/**
 * The next batch of `buffer`: its first event and those after it of the same stream (tenant and
 * shard under `shards`), in order, up to `batchSize`; the others keep their places. So a job needs
 * one stream's writer, and N workers can write one tenant's shards at once. While urgent events
 * wait (`urgentThrough` > 0), only that prefix is looked at, so the urgent job stays small.
 */
export function cutBatch(buffer: readonly AuditEvent[], batchSize: number, shards: Shards, urgentThrough: number): Cut {
  const first = buffer[0]!;
  const tenant = tenantIdOf(first);
  const count = shardCountOf(shards, tenant);
  const shard = shardOf(first.traceId, count);
  const window = urgentThrough > 0 ? urgentThrough : buffer.length;
  const events: AuditEvent[] = [];
  const rest: AuditEvent[] = [];
  let urgentTaken = 0;
  for (const [i, event] of buffer.entries()) {
    const same = i === 0 || (tenantIdOf(event) === tenant && shardOf(event.traceId, count) === shard);
    if (same && i < window && events.length < batchSize) {
      events.push(event);
      if (i < urgentThrough) urgentTaken += 1;
    } else rest.push(event);
  }
  return { events, rest, shards: count, urgentTaken };
}
