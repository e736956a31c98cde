// An escalation's transitions and notification attempts go to the stream (shard) its opening is
// in, whichever shard count is in force now: a trace's records never span a tenant's shards.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomUUID } from "node:crypto";
import pino from "pino";
import { afterAll, describe, expect, it } from "vitest";
import { SCHEMA_VERSION, newEventId, streamIdFor, type EventOf } from "@auditgraph/core";
import { SegmentLedger } from "@auditgraph/ledger";
import { EventRecorder } from "../src/recorder.js";
import { WorkerNotifications } from "../src/notifications.js";
import { transitionEscalation } from "../src/escalations.js";

const dirs: string[] = [];
afterAll(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

function openedIn(tenantId: string): EventOf<"escalation.opened"> {
  const escalationId = newEventId();
  const traceId = randomUUID();
  return {
    eventId: escalationId,
    schemaVersion: SCHEMA_VERSION,
    type: "escalation.opened",
    occurredAt: new Date().toISOString(),
    traceId,
    runId: escalationId,
    parentRunId: null,
    sessionId: null,
    tenantId,
    payload: {
      policyId: "test-policy",
      policyVersion: "1",
      policySetHash: "0".repeat(64),
      severity: "high",
      concerns: { runId: randomUUID(), kind: "output", traceId },
      reason: "a test finding",
      escalationId,
      flagEventIds: [newEventId()],
    },
  } as EventOf<"escalation.opened">;
}

async function ledgerWith(...appends: [string, EventOf<"escalation.opened">][]): Promise<SegmentLedger> {
  const dir = await mkdtemp(join(tmpdir(), "worker-shards-"));
  dirs.push(dir);
  const ledger = new SegmentLedger(dir);
  for (const [streamId, event] of appends) await ledger.append(streamId, [event]);
  return ledger;
}

describe("escalations of a sharded tenant", () => {
  it("a transition is appended to the shard holding the opening, not to the base stream", async () => {
    const tenantId = `t-${randomUUID().slice(0, 8)}`;
    const opened = openedIn(tenantId);
    const ledger = await ledgerWith([streamIdFor(tenantId, 3), opened]);
    try {
      const done = await transitionEscalation(ledger, undefined, {
        escalationId: opened.eventId,
        to: "acknowledged",
        reviewer: { id: "rev-1" },
        reason: "looking",
        tenantId,
      });
      expect(done.record.streamId).toBe(streamIdFor(tenantId, 3));
      expect(await ledger.streams()).toEqual([streamIdFor(tenantId, 3)]);
      // Folded from that shard: the next move starts from the state the first left.
      const next = await transitionEscalation(ledger, undefined, {
        escalationId: opened.eventId,
        to: "resolved",
        reviewer: { id: "rev-1" },
        reason: "fine",
        tenantId,
      });
      expect([next.event.payload.from, next.record.streamId]).toEqual(["acknowledged", streamIdFor(tenantId, 3)]);
    } finally {
      await ledger.close();
    }
  });

  it("a notification attempt is appended to the shard holding the opening, found among the tenant's streams only", async () => {
    const tenantId = `t-${randomUUID().slice(0, 8)}`;
    const opened = openedIn(tenantId);
    // Another tenant's stream holding the same event (ids are unique within a tenant only).
    const ledger = await ledgerWith([streamIdFor(`${tenantId}x`), opened], [streamIdFor(tenantId, 3), opened]);
    try {
      const notifications = new WorkerNotifications({ callback: () => undefined }, new EventRecorder({ ledger }), pino({ level: "silent" }), ledger);
      expect(notifications.notify(opened)).toBe(true);
      // Waits for the delivery under way and its attempt's append.
      await notifications.close(10_000);
      const attempts = (await ledger.readTrace(opened.traceId)).filter((r) => r.event.type === "escalation.notification");
      expect(attempts.map((r) => r.streamId)).toEqual([streamIdFor(tenantId, 3)]);
      expect(notifications.appendFailures).toBe(0);
    } finally {
      await ledger.close();
    }
  });
});
