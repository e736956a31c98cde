import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeEach, describe, expect, it } from "vitest";
import { SCHEMA_VERSION, lockDir, newEventId, type AuditEvent } from "@auditgraph/core";
import { SegmentLedger } from "../src/index.js";

const event = (n: number): AuditEvent => {
  const messages = [{ role: "user", content: `question ${n}` }];
  return {
    eventId: newEventId(),
    schemaVersion: SCHEMA_VERSION,
    type: "llm.start",
    occurredAt: new Date().toISOString(),
    traceId: "trace",
    runId: `run-${n}`,
    parentRunId: null,
    sessionId: null,
    identity: { user: { id: "u", tenantId: "t" }, agent: { id: "a", name: "A", version: "1" } },
    model: { provider: "fake", name: "m", params: {} },
    payload: { messages },
  };
};

let dir: string;
let ledger: SegmentLedger;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "ledger-"));
  ledger = new SegmentLedger(dir);
});

describe("SegmentLedger", () => {
  it("one writer per stream: a second one waits for the lock, and past its wait gets an error naming the holder, never a fork", async () => {
    await ledger.append("s1", [event(0)]);
    await ledger.close();
    // A holder that is not a segment ledger (or one stuck mid-batch) does not hand the lock over.
    const release = await lockDir(join(dir, "streams", "s1"), { name: "writer" });
    const second = new SegmentLedger(dir, { lockWaitMs: 200 });
    await expect(second.append("s1", [event(1)])).rejects.toThrow(new RegExp(`streams/s1 is locked by another writer \\(pid ${process.pid}\\)`));
    // Other streams are not held.
    expect((await second.append("s2", [event(2)])).appended).toBe(1);
    await release();
    expect((await second.append("s1", [event(3)])).records[0]!.position).toBe(1);
    await second.close();
    // Another writer catches up with what the second appended before it writes again.
    const first = new SegmentLedger(dir);
    expect((await first.append("s1", [event(4)])).records[0]!.position).toBe(2);
    await first.close();
    expect(await new SegmentLedger(dir).verify()).toMatchObject({ ok: true, count: 4 });
  });

  it("a lease is handed over as soon as another writer waits: two writers of one stream take turns batch by batch", async () => {
    // Leases far longer than the waits: without the hand-over every second append would fail.
    const a = new SegmentLedger(dir, { leaseIdleMs: 600_000, lockWaitMs: 5_000 });
    const b = new SegmentLedger(dir, { leaseIdleMs: 600_000, lockWaitMs: 5_000 });
    const positions: number[] = [];
    for (let i = 0; i < 6; i++) positions.push((await (i % 2 === 0 ? a : b).append("s1", [event(i)])).records[0]!.position);
    expect(positions).toEqual([0, 1, 2, 3, 4, 5]);
    // At once, too: each waits for the other's batch, never for its lease.
    const both = await Promise.all([a.append("s1", [event(10), event(11)]), b.append("s1", [event(12)])]);
    expect(both.flatMap((r) => r.records.map((x) => x.position)).sort()).toEqual([6, 7, 8]);
    await a.close();
    await b.close();
    expect(await new SegmentLedger(dir).verify()).toMatchObject({ ok: true, count: 9 });
  });

  it("gives the lease up by itself after leaseIdleMs without appends", async () => {
    const first = new SegmentLedger(dir, { leaseIdleMs: 50 });
    await first.append("s1", [event(0)]);
    const second = new SegmentLedger(dir, { lockWaitMs: 5_000 });
    expect((await second.append("s1", [event(1)])).records[0]!.position).toBe(1);
    await second.close();
  });

  it("appends in order with positions and a hash chain, and reads back what it stored", async () => {
    const events = [event(0), event(1), event(2)];
    const { records, appended } = await ledger.append("s1", events, "2026-01-01T00:00:00.000Z");
    expect(appended).toBe(3);
    expect(records.map((r) => r.position)).toEqual([0, 1, 2]);
    expect(records[1]!.prevHash).toBe(records[0]!.hash);
    const read = [];
    for await (const r of ledger.readStream("s1")) read.push(r);
    expect(read).toEqual(records);
    expect(read[0]!.recordedAt).toBe("2026-01-01T00:00:00.000Z");
    expect(read[0]!.event.occurredAt).toBe(events[0]!.occurredAt);
  });

  it("stores an event once however often it is appended, here or by another instance", async () => {
    const events = [event(0), event(1)];
    await ledger.append("s1", events);
    const again = await ledger.append("s1", [events[1]!, event(2), events[0]!]);
    expect(again.appended).toBe(1);
    expect(again.records.map((r) => r.position)).toEqual([1, 2, 0]);
    const other = new SegmentLedger(dir);
    expect((await other.append("s1", events)).appended).toBe(0);
    const report = await ledger.verify();
    expect(report).toMatchObject({ ok: true, count: 3 });
  });

  it("keeps one chain when two instances (two workers) append at once", async () => {
    const a = new SegmentLedger(dir);
    const b = new SegmentLedger(dir);
    await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).append("s1", [event(i * 2), event(i * 2 + 1)])));
    const report = await new SegmentLedger(dir).verify();
    expect(report).toMatchObject({ ok: true, count: 40 });
  });

  it("verify names the record whose byte was flipped", async () => {
    const { records } = await ledger.append("s1", [event(0), event(1), event(2), event(3)]);
    const path = ledger.segmentPath("s1");
    const bytes = await readFile(path);
    const lines = bytes.toString("utf8").split("\n");
    const target = lines.slice(0, 2).join("\n").length + 1; // start of line 2
    const at = bytes.indexOf("question 2", target);
    bytes[at] = "Q".charCodeAt(0);
    await writeFile(path, bytes);
    const report = await ledger.verify();
    expect(report.ok).toBe(false);
    if (report.ok) return;
    expect(report.failure).toMatchObject({ streamId: "s1", position: 2, eventId: records[2]!.event.eventId, reason: "edited" });
  });

  it("verify reports a deleted record, a reorder and a torn tail", async () => {
    const { records } = await ledger.append("s1", [event(0), event(1), event(2)]);
    const path = ledger.segmentPath("s1");
    const lines = (await readFile(path, "utf8")).split("\n").filter(Boolean);

    await writeFile(path, `${[lines[0], lines[2]].join("\n")}\n`);
    let report = await new SegmentLedger(dir).verify();
    expect(!report.ok && report.failure).toMatchObject({ position: 1, reason: "gap", eventId: records[2]!.event.eventId });

    await writeFile(path, `${[lines[1], lines[0], lines[2]].join("\n")}\n`);
    report = await new SegmentLedger(dir).verify();
    expect(!report.ok && report.failure).toMatchObject({ position: 0, reason: "reorder" });

    await writeFile(path, `${lines.join("\n")}\n${lines[0]!.slice(0, 40)}`);
    report = await new SegmentLedger(dir).verify();
    expect(!report.ok && report.failure).toMatchObject({ position: 3, reason: "torn" });
  });

  it("keeps dead letters with their reason, once per id", async () => {
    const entry = { id: "job#0", recordedAt: new Date().toISOString(), jobId: "job", reason: "invalid event 0: type: bad", input: { x: 1 } };
    await ledger.deadLetter(entry);
    await ledger.deadLetter(entry);
    expect(await new SegmentLedger(dir).readDeadLetters()).toEqual([entry]);
  });

  it("refuses a stream id that is not file-safe", async () => {
    await expect(ledger.append("../x", [event(0)])).rejects.toThrow(/streamId/);
  });
});

describe("segments", () => {
  it("roll by size; reads, dedup, proofs and verify span them; a deleted middle segment is a gap", async () => {
    const rolling = new SegmentLedger(dir, { maxSegmentBytes: 2_000 });
    const events = Array.from({ length: 40 }, (_, i) => event(i));
    for (let i = 0; i < events.length; i += 4) await rolling.append("s1", events.slice(i, i + 4));
    const segments = await rolling.segments("s1");
    expect(segments.length).toBeGreaterThan(3);
    // Dedup across segments, also from a fresh instance.
    expect((await new SegmentLedger(dir, { maxSegmentBytes: 2_000 }).append("s1", [events[0]!, events[39]!])).appended).toBe(0);
    const read = [];
    for await (const r of rolling.readStream("s1")) read.push(r.event.eventId);
    expect(read).toEqual(events.map((e) => e.eventId));
    expect(await rolling.verify()).toMatchObject({ ok: true, count: 40 });

    const { rm } = await import("node:fs/promises");
    await rm(segments[1]!);
    const report = await new SegmentLedger(dir).verify();
    expect(!report.ok && report.failure).toMatchObject({ reason: "gap" });
  });
});

describe("corrections", () => {
  it("are new events pointing at the record they correct; the original stays as it was", async () => {
    const original = event(1);
    await ledger.append("s1", [original]);
    const correction: AuditEvent = {
      ...event(2),
      type: "correction",
      payload: { correctsEventId: original.eventId, reason: "wrong model name recorded", correction: { model: { name: "gpt-test" } } },
    } as AuditEvent;
    await ledger.append("s1", [correction]);
    const records = [];
    for await (const r of ledger.readStream("s1")) records.push(r);
    expect(records.map((r) => r.event.type)).toEqual(["llm.start", "correction"]);
    expect(records[0]!.event).toEqual(original);
    expect(records[1]!.event).toMatchObject({ payload: { correctsEventId: original.eventId } });
    expect(await ledger.verify()).toMatchObject({ ok: true, count: 2 });
  });
});
