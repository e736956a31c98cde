import { randomUUID } from "node:crypto";
import { SCHEMA_VERSION, newEventId, type AuditEvent } from "@auditgraph/core";

/** A finished two-event trace (the root chain's start and end) of a fresh trace id, for `tenantId`'s user u1. */
export function userTrace(tenantId: string): AuditEvent[] {
  const traceId = randomUUID();
  const common = {
    schemaVersion: SCHEMA_VERSION,
    traceId,
    runId: traceId,
    parentRunId: null,
    sessionId: null,
    identity: { user: { id: "u1", tenantId }, agent: { id: "a", name: "A", version: "1" } },
  };
  return [
    { ...common, eventId: newEventId(), occurredAt: new Date().toISOString(), type: "chain.start", payload: { inputs: { q: "hi" } } },
    { ...common, eventId: newEventId(), occurredAt: new Date().toISOString(), type: "chain.end", payload: { outputs: { a: "hello" } } },
  ] as AuditEvent[];
}
