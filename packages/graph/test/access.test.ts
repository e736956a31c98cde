// The rows an access record projects as: ids, enums, the reader and the ledger's time; nothing
// for records of other types (they have their own statements).
import { describe, expect, it } from "vitest";
import { GENESIS_HASH, SCHEMA_VERSION, type PlainRecord } from "@auditgraph/core";
import { accessRows } from "../src/projection/access.js";

const at = "2026-12-02T10:00:00.000Z";
const record = (event: Record<string, unknown>, position = 3) =>
  ({ position, streamId: "tenant-acme", recordedAt: at, prevHash: GENESIS_HASH, hash: GENESIS_HASH, event }) as unknown as PlainRecord;

describe("accessRows", () => {
  it("maps an access event to its node's key and properties, absent ids as null", () => {
    const eventId = "019ad3c4-0000-7000-8000-000000000009";
    const access = record({
      eventId,
      schemaVersion: SCHEMA_VERSION,
      type: "access",
      occurredAt: "2026-12-02T09:59:59.000Z",
      traceId: eventId,
      runId: eventId,
      parentRunId: null,
      sessionId: null,
      tenantId: "acme",
      payload: {
        actor: { id: "rev-1", via: "token" },
        action: "proof.download",
        subject: { eventId: "019ad3c4-0000-7000-8000-000000000001", userId: "u1" },
        from: { ip: "::1" },
      },
    });
    const other = record({ type: "deployment", tenantId: "acme", eventId: "x", payload: {} }, 4);
    const rows = accessRows([access, other]);
    expect(rows).toHaveLength(1);
    expect(rows[0]!.tenantId).toBe("acme");
    expect(rows[0]!.eventId).toBe(eventId);
    const { position, ...props } = rows[0]!.props;
    expect(position.toNumber()).toBe(3);
    expect(props).toEqual({
      eventId,
      actorId: "rev-1",
      actorName: null,
      via: "token",
      action: "proof.download",
      traceId: null,
      subjectEventId: "019ad3c4-0000-7000-8000-000000000001",
      escalationId: null,
      userId: "u1",
      reviewId: null,
      ip: "::1",
      userAgent: null,
      at,
      occurredAt: "2026-12-02T09:59:59.000Z",
      streamId: "tenant-acme",
    });
  });
});
