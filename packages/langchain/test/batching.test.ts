import { describe, expect, it } from "vitest";
import { ShardsSchema, shardOf, type AuditEvent } from "@auditgraph/core";
import { cutBatch } from "../src/batching.js";

// Only the fields batching reads: the tenant and the trace.
const event = (tenantId: string, traceId: string, n: number) =>
  ({ eventId: `e${n}`, traceId, identity: { user: { id: "u", tenantId }, agent: { id: "a", name: "A", version: "1" } } }) as unknown as AuditEvent;

/** Two trace ids that land in different shards of 8. */
const inA = "t0";
const inB = ["t1", "t2", "t3", "t4", "t5"].find((t) => shardOf(t, 8) !== shardOf(inA, 8));

describe("cutBatch: a batch holds one stream's events", () => {
  it("takes the first event's stream (tenant and shard) in order, up to the batch size; the rest keep their order", () => {
    const shards = ShardsSchema.parse("acme:8");
    const buffer = [
      event("acme", inA!, 1),
      event("acme", inB!, 2),
      event("acme", inA!, 3),
      event("globex", inA!, 4),
      event("acme", inA!, 5),
      event("acme", inA!, 6),
    ];
    const cut = cutBatch(buffer, 3, shards, 0);
    expect(cut.events.map((e) => e.eventId)).toEqual(["e1", "e3", "e5"]);
    expect(cut.rest.map((e) => e.eventId)).toEqual(["e2", "e4", "e6"]);
    expect(cut.shards).toBe(8);
    // globex has one shard: its events go together whatever their traces.
    const g = cutBatch([event("globex", inA!, 1), event("globex", inB!, 2)], 10, shards, 0);
    expect(g.events).toHaveLength(2);
    expect(g.shards).toBe(1);
  });

  it("with urgent events waiting, looks only at the urgent prefix and counts what it took of it", () => {
    const shards = ShardsSchema.parse("8");
    const buffer = [event("acme", inA!, 1), event("acme", inB!, 2), event("acme", inA!, 3), event("acme", inA!, 4)];
    const cut = cutBatch(buffer, 100, shards, 3);
    expect(cut.events.map((e) => e.eventId)).toEqual(["e1", "e3"]);
    expect(cut.urgentTaken).toBe(2);
    expect(cut.rest.map((e) => e.eventId)).toEqual(["e2", "e4"]);
  });
});
