import { SCHEMA_VERSION, newEventId, type AuditEvent } from "@auditgraph/core";

/** A small `text` event of trace `t`, the `n`th of its test. */
export const textEvent = (n: number): AuditEvent => ({
  eventId: newEventId(),
  schemaVersion: SCHEMA_VERSION,
  type: "text",
  occurredAt: new Date().toISOString(),
  traceId: "t",
  runId: `run-${n}`,
  parentRunId: null,
  sessionId: null,
  identity: { user: { id: "u", tenantId: "t" }, agent: { id: "a", name: "A", version: "1" } },
  payload: { text: `record ${n}` },
});
