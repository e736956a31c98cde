import { describe, expect, it } from "vitest";
import {
  MAX_SHARDS,
  isAuditgraphError,
  ShardsOptionSchema,
  ShardsSchema,
  isStreamOfTenant,
  shardCountOf,
  shardOf,
  shardOfStream,
  streamIdFor,
  streamOfTrace,
  streamsOfTenant,
} from "../src/index.js";

describe("shards: a tenant's streams", () => {
  it("shard 0 is the tenant's base stream as before shards; shard i is base.i, read back exactly", () => {
    expect(streamIdFor("acme")).toBe("tenant-acme");
    expect(streamIdFor("acme", 0)).toBe("tenant-acme");
    expect(streamIdFor("acme", 7)).toBe("tenant-acme.7");
    expect(shardOfStream("tenant-acme.7")).toEqual({ base: "tenant-acme", shard: 7 });
    expect(shardOfStream("tenant-acme")).toEqual({ base: "tenant-acme", shard: 0 });
    // A hashed tenant id keeps its shard suffix outside the hash.
    const odd = "Acme Corp/EU";
    expect(streamIdFor(odd, 3)).toMatch(/^tenant-h[0-9a-f]{32}\.3$/);
    expect(shardOfStream(streamIdFor(odd, 3))).toEqual({ base: streamIdFor(odd), shard: 3 });
  });

  it("refuses a shard out of range, and a call from Array.prototype.map, whose index would be taken for a shard", () => {
    const codeOf = (call: () => unknown) => {
      try {
        call();
      } catch (error) {
        return isAuditgraphError(error, "AUDITGRAPH_E_STREAM_ID") ? (error as Error).message : "another error";
      }
      return "no error";
    };
    // As plain JavaScript would call it (the compiler refuses `tenants.map(streamIdFor)`).
    const untyped = streamIdFor as unknown as (...args: unknown[]) => string;
    expect(codeOf(() => ["a", "b"].map(untyped))).toMatch(/called with 3 arguments \(from Array\.prototype\.map\?/);
    for (const shard of [-1, 1.5, MAX_SHARDS, Number.NaN])
      expect(
        codeOf(() => streamIdFor("acme", shard)),
        String(shard),
      ).toMatch(/shard must be an integer from 0 to 255/);
    expect(["a", "b"].map((t) => streamIdFor(t))).toEqual(["tenant-a", "tenant-b"]);
    expect(streamIdFor("acme", MAX_SHARDS - 1)).toBe("tenant-acme.255");
  });

  it("a tenant's streams are exactly its own: not a tenant whose id starts with it", () => {
    const all = ["tenant-acme.2", "tenant-acme", "tenant-acme2", "tenant-acme2.1", "tenant-acme.10", "tenant-acme_x.1"];
    expect(streamsOfTenant(all, "acme")).toEqual(["tenant-acme", "tenant-acme.2", "tenant-acme.10"]);
    expect(streamsOfTenant(all, "acme2")).toEqual(["tenant-acme2", "tenant-acme2.1"]);
    expect(isStreamOfTenant("tenant-acme_x.1", "acme")).toBe(false);
    expect(isStreamOfTenant("tenant-acme_x.1", "acme_x")).toBe(true);
  });

  it("a trace's shard is fixed by its id and the count, and traces spread over every shard", () => {
    expect(shardOf("any", 1)).toBe(0);
    const traces = Array.from({ length: 4_000 }, (_, i) => `019a-trace-${i}`);
    for (const t of traces.slice(0, 50)) expect(shardOf(t, 8)).toBe(shardOf(t, 8));
    const per = new Array<number>(8).fill(0);
    for (const t of traces) per[shardOf(t, 8)]! += 1;
    // 500 expected each; FNV-1a over these ids stays well within 20%.
    for (const n of per) expect(n).toBeGreaterThan(400);
    for (const n of per) expect(n).toBeLessThan(600);
    // Pinned: every producer and worker must place a trace the same way, release after release.
    // FNV-1a 32: "a" is 0xe40c292c, "b" 0xe70c2de5 (the published values), so shards 4 and 5 of 8.
    expect([shardOf("a", 8), shardOf("b", 8), shardOf("trace-1", 8)]).toEqual([4, 5, 0]);
  });

  it("AUDITGRAPH_SHARDS: one count, or tenant:count entries with * for the rest; bad text is refused, named", () => {
    const one = ShardsSchema.parse("8");
    expect(shardCountOf(one, "anyone")).toBe(8);
    const per = ShardsSchema.parse("acme:8, globex:2,*:3");
    expect([shardCountOf(per, "acme"), shardCountOf(per, "globex"), shardCountOf(per, "other")]).toEqual([8, 2, 3]);
    expect(shardCountOf(ShardsSchema.parse("acme:4"), "other")).toBe(1);
    // A tenant id holding ':' splits at the last one.
    expect(shardCountOf(ShardsSchema.parse("eu:acme:4"), "eu:acme")).toBe(4);
    for (const bad of ["0", `${MAX_SHARDS + 1}`, "acme:x", "8,acme:2", ":4", "acme:2.5", ""])
      expect(ShardsSchema.safeParse(bad).error?.issues[0]?.message, bad).toMatch(/must be a count \(1-256\) or tenant:count entries/);
    expect(streamOfTrace(one, "acme", "a")).toBe("tenant-acme.4");
    expect(shardCountOf(ShardsOptionSchema.parse(4), "x")).toBe(4);
    expect(shardCountOf(ShardsOptionSchema.parse(one), "x")).toBe(8);
  });
});
