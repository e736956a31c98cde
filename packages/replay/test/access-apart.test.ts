// Access events (the console's readers) are traces of their own in the tenant's stream: no
// agent's run, nothing to replay. A snapshot leaves them out and still proves what it holds
// against the tree they are leaves of.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomUUID } from "node:crypto";
import { afterAll, describe, expect, it } from "vitest";
import { SCHEMA_VERSION, newEventId, streamIdFor, type AuditEvent } from "@auditgraph/core";
import { CheckpointSigner, SegmentLedger, generateSigningKey } from "@auditgraph/ledger";
import { createSnapshot, verifySnapshot } from "@auditgraph/replay";
import { userTrace } from "./user-trace.js";

const dirs: string[] = [];
afterAll(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

function access(tenantId: string, traceId: string): AuditEvent {
  const eventId = newEventId();
  return {
    eventId,
    schemaVersion: SCHEMA_VERSION,
    type: "access",
    occurredAt: new Date().toISOString(),
    traceId: eventId,
    runId: eventId,
    parentRunId: null,
    sessionId: null,
    tenantId,
    payload: { actor: { id: "rev-1", via: "password" }, action: "trace.view", subject: { traceId }, from: { ip: "203.0.113.7" } },
  } as AuditEvent;
}

describe("snapshots leave access events out", () => {
  it("selects the user's trace, not the readers' traces, and proves it against the whole stream", async () => {
    const dir = await mkdtemp(join(tmpdir(), "auditgraph-access-snap-"));
    dirs.push(dir);
    const keys = generateSigningKey();
    const ledger = new SegmentLedger(join(dir, "ledger"), { signer: new CheckpointSigner(keys.privateKeyPem) });
    const tenantId = `t-${randomUUID().slice(0, 8)}`;
    const trace = userTrace(tenantId);
    const traceId = trace[0]!.traceId;
    // Reads before and after the trace: the trace's records sit between access leaves.
    const reads = [access(tenantId, traceId), access(tenantId, traceId)];
    await ledger.append(streamIdFor(tenantId), [reads[0]!, ...trace, reads[1]!]);
    try {
      const snapshot = await createSnapshot(ledger, { tenantId });
      expect(snapshot.traces.map((t) => t.traceId)).toEqual([traceId]);
      expect(snapshot.traces[0]!.records.map((r) => r.leafIndex)).toEqual([1, 2]);
      expect(verifySnapshot(snapshot, keys.publicKeyPem)).toMatchObject({ ok: true, traces: 1, records: 2 });
      // With replays included, or named by its id, a reader's trace is still no trace to replay.
      expect((await createSnapshot(ledger, { tenantId, includeReplays: true })).traces.map((t) => t.traceId)).toEqual([traceId]);
      expect((await createSnapshot(ledger, { traceIds: [reads[0]!.traceId] })).traces).toEqual([]);
    } finally {
      await ledger.close();
    }
  });
});
