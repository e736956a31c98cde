import { mkdtemp, unlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { SCHEMA_VERSION, newEventId, type AuditEvent, type LedgerRecord } from "@auditgraph/core";
import { SegmentLedger } from "../src/index.js";

const event = (n: number): AuditEvent => ({
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
  payload: { messages: [{ role: "user", content: `question ${n}` }] },
});

const collect = async (records: AsyncIterable<LedgerRecord>) => {
  const out: LedgerRecord[] = [];
  for await (const r of records) out.push(r);
  return out;
};

describe("SegmentLedger.readStream from a position", () => {
  it("gives exactly the records of [from, to) over several segments, reading none of the segments before `from`", async () => {
    const dir = await mkdtemp(join(tmpdir(), "ledger-read-"));
    // About two records a segment.
    const ledger = new SegmentLedger(dir, { maxSegmentBytes: 1_000 });
    for (let n = 0; n < 12; n++) await ledger.append("s", [event(n)]);
    await ledger.close();
    const all = await collect(ledger.readStream("s"));
    expect(all.map((r) => r.position)).toEqual([...Array(12).keys()]);
    const segments = await ledger.segments("s");
    expect(segments.length).toBeGreaterThanOrEqual(4);

    for (const from of [0, 1, 5, 7, 11, 12, 20]) {
      for (const to of [from, from + 1, from + 3, Infinity]) {
        expect((await collect(ledger.readStream("s", from, to))).map((r) => r.position)).toEqual(all.slice(from, to).map((r) => r.position));
      }
    }
    expect(await collect(ledger.readStream("s", 9, 10))).toEqual([all[9]]);

    // With its first segment gone, a read from a later one is unchanged: that segment was never read
    // (counting lines from the start, it would have been off by the missing records).
    await unlink(segments[0]!);
    expect((await collect(ledger.readStream("s", 10))).map((r) => r.position)).toEqual([10, 11]);
    expect(await collect(ledger.readStream("s", 9, 10))).toEqual([all[9]]);
  });
});
