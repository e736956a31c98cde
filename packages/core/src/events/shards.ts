import { z } from "zod";
import { FIXED, STRING, object, optional } from "./hints.js";
import { nonEmpty, systemEnvelope, type EventTypeIn, type PayloadRedaction } from "./common.js";
import { MAX_SHARDS } from "../streams.js";

// Shards: a tenant's shard count changed (recorded on its base stream, before the first event placed by the new count).

const shardCount = z.int().min(1).max(MAX_SHARDS);

/**
 * The number of shards (streams) a tenant's new events spread over changed from `from` to `to`.
 * Written by the worker that first placed an event by the new count, on the tenant's base stream,
 * before that event: the ledger says when each count took effect, and `verify`, `prove` and
 * the readers look in every shard the tenant ever had. `generation` counts the tenant's changes
 * (1 for the first): with it the record's id is derived, so workers that see the change at once
 * record it once.
 */
export const ShardsChangedEventSchema = z.object({
  ...systemEnvelope,
  type: z.literal("shards.changed"),
  payload: z.object({
    from: shardCount,
    to: shardCount,
    generation: z.int().positive(),
    /** Who placed events by the new count: the worker (its host and pid), never a user. */
    by: nonEmpty.optional(),
  }),
});

export const SHARD_EVENTS = [ShardsChangedEventSchema] as const;
export type ShardEventType = EventTypeIn<typeof SHARD_EVENTS>;

export const SHARD_REDACTION = {
  // Counts key where events are: a rule rewriting them would misstate where a tenant's records are.
  "shards.changed": object({ from: FIXED, to: FIXED, generation: FIXED, by: optional(STRING) }),
} satisfies PayloadRedaction<ShardEventType>;
