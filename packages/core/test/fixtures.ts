import { SCHEMA_VERSION, newEventId, type AuditEvent } from "../src/index.js";

/** A valid `llm.start` event; tests override what they need. */
export function sampleEvent(overrides: Partial<Record<string, unknown>> = {}): AuditEvent {
  const messages = [{ role: "user", content: "hello" }];
  return {
    eventId: newEventId(),
    schemaVersion: SCHEMA_VERSION,
    type: "llm.start",
    occurredAt: new Date().toISOString(),
    traceId: "trace-1",
    runId: "run-1",
    parentRunId: null,
    sessionId: null,
    identity: { user: { id: "u1", tenantId: "t1" }, agent: { id: "a1", name: "Agent", version: "1.0.0" } },
    model: { provider: "fake", name: "fake-model", params: { temperature: 0 } },
    payload: { messages },
    ...overrides,
  } as AuditEvent;
}
