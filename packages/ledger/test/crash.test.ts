import { spawn } from "node:child_process";
import { appendFile, mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { SCHEMA_VERSION, newEventId, type AuditEvent } from "@auditgraph/core";
import { SegmentLedger } from "../src/index.js";

const WRITER = fileURLToPath(new URL("./fixtures/writer.mjs", import.meta.url));

const sentinel = (): AuditEvent => ({
  eventId: newEventId(),
  schemaVersion: SCHEMA_VERSION,
  type: "text",
  occurredAt: new Date().toISOString(),
  traceId: "sentinel",
  runId: "sentinel",
  parentRunId: null,
  sessionId: null,
  identity: { user: { id: "u", tenantId: "t" }, agent: { id: "a", name: "A", version: "1" } },
  payload: { text: "after the crash" },
});

async function allIds(ledger: SegmentLedger): Promise<Set<string>> {
  const ids = new Set<string>();
  for await (const r of ledger.readStream("s1")) ids.add(r.event.eventId);
  return ids;
}

describe("SegmentLedger crash safety", () => {
  it("a torn last record is cut off and reported when the stream is next written; all before it verifies", async () => {
    const dir = await mkdtemp(join(tmpdir(), "ledger-torn-"));
    const ledger = new SegmentLedger(dir);
    await ledger.append("s1", [sentinel(), sentinel(), sentinel()]);
    const torn = sentinel();
    await appendFile(ledger.segmentPath("s1"), `{"event":{"eventId":"${torn.eventId}","schemaVersion":1,"ty`);

    const reopened = new SegmentLedger(dir);
    const before = await reopened.verify();
    expect(!before.ok && before.failure).toMatchObject({ position: 3, reason: "torn", eventId: torn.eventId });

    const { records } = await reopened.append("s1", [torn]);
    expect(records[0]!.position).toBe(3);
    expect(await reopened.repairs()).toEqual([
      expect.objectContaining({ streamId: "s1", eventId: torn.eventId, bytes: expect.any(Number), offset: expect.any(Number) }),
    ]);
    expect(await reopened.verify()).toMatchObject({ ok: true, count: 4 });
  });

  it("a writer SIGKILLed at random points, again and again: every acknowledged event is kept, the chain verifies", async () => {
    const dir = await mkdtemp(join(tmpdir(), "ledger-kill-"));
    const acked = new Set<string>();
    for (let round = 0; round < 12; round++) {
      const child = spawn(process.execPath, [WRITER, dir], { stdio: ["ignore", "pipe", "inherit"] });
      let pending = "";
      let started: () => void;
      const running = new Promise<void>((resolve) => (started = resolve));
      child.stdout.on("data", (b: Buffer) => {
        pending += b.toString();
        const lines = pending.split("\n");
        pending = lines.pop()!;
        for (const line of lines) for (const id of line.split(" ")) acked.add(id);
        if (lines.length) started();
      });
      const exited = new Promise((resolve) => child.on("exit", resolve));
      // Once it is appending, kill it somewhere inside its loop.
      await Promise.race([running, exited]);
      await new Promise((r) => setTimeout(r, Math.random() * 300));
      child.kill("SIGKILL");
      await exited;

      const ledger = new SegmentLedger(dir);
      await ledger.append("s1", [sentinel()]);
      const report = await ledger.verify();
      expect(report.ok, JSON.stringify(report)).toBe(true);
      const stored = await allIds(ledger);
      for (const id of acked) expect(stored.has(id)).toBe(true);
    }
    expect(acked.size).toBeGreaterThan(12 * 50);
  }, 120_000);
});
