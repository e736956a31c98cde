import { mkdtemp, stat, truncate } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { AuditEvent } from "@auditgraph/core";
import { SegmentLedger } from "../src/index.js";
import { textEvent } from "./text-event.js";

const of = (traceId: string, n: number): AuditEvent => ({ ...textEvent(n), traceId, runId: `${traceId}-${n}` });
const texts = (records: { event: unknown }[]) => records.map((r) => (r.event as { payload: { text: string } }).payload.text);

// readTrace reads each line once (an index by trace, caught up on every lookup): what another
// process appended since is found, and lines cut under it are never served.
describe("SegmentLedger.readTrace by its trace index", () => {
  it("finds what another handle appended since its last lookup, in order, and only that trace's records", async () => {
    const dir = await mkdtemp(join(tmpdir(), "trace-index-"));
    const writer = new SegmentLedger(dir);
    const reader = new SegmentLedger(dir);
    await writer.append("s", [of("t1", 1), of("t2", 2), of("t1", 3)]);
    expect(texts(await reader.readTrace("t1"))).toEqual(["record 1", "record 3"]);
    await writer.append("s", [of("t2", 4), of("t1", 5)]);
    await writer.append("other", [of("t1", 6)]);
    // Stream by stream (in name order), each in append order.
    expect(texts(await reader.readTrace("t1"))).toEqual(["record 6", "record 1", "record 3", "record 5"]);
    expect(texts(await reader.readTrace("t1", { streamId: "s" }))).toEqual(["record 1", "record 3", "record 5"]);
    expect(texts(await reader.readTrace("t2"))).toEqual(["record 2", "record 4"]);
    expect(await reader.readTrace("none")).toEqual([]);
    // Lookups at the same moment take turns and agree.
    const [a, b] = await Promise.all([reader.readTrace("t1", { streamId: "s" }), reader.readTrace("t1", { streamId: "s" })]);
    expect(texts(a)).toEqual(texts(b));
    await writer.close();
  });

  it("serves no line that was cut after it was read (a short write rolled back), and finds what is appended in its place", async () => {
    const dir = await mkdtemp(join(tmpdir(), "trace-index-cut-"));
    const first = new SegmentLedger(dir);
    const reader = new SegmentLedger(dir);
    await first.append("s", [of("t", 1)]);
    const path = (await first.segments("s"))[0]!;
    const kept = (await stat(path)).size;
    await first.append("s", [of("t", 2), of("t", 3)]);
    await first.close();
    expect(texts(await reader.readTrace("t"))).toEqual(["record 1", "record 2", "record 3"]);
    await truncate(path, kept);
    expect(texts(await reader.readTrace("t"))).toEqual(["record 1"]);
    const next = new SegmentLedger(dir);
    await next.append("s", [of("u", 4), of("t", 5)]);
    expect(texts(await reader.readTrace("t"))).toEqual(["record 1", "record 5"]);
    expect(texts(await reader.readTrace("u"))).toEqual(["record 4"]);
    await next.close();
  });
});
