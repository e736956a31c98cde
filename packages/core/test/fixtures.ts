import { EventSchema, SCHEMA_VERSION, newEventId, type AuditEvent } from "../src/index.js";

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

/** A console read (`access`): ids, enums, the reader's name, client and IP, and a token-like user agent. */
export function accessEvent(): AuditEvent {
  const eventId = newEventId();
  return EventSchema.parse({
    eventId,
    schemaVersion: SCHEMA_VERSION,
    type: "access",
    occurredAt: new Date().toISOString(),
    traceId: eventId,
    runId: eventId,
    parentRunId: null,
    sessionId: null,
    tenantId: "acme",
    payload: {
      actor: { id: "ann@example.com", name: "Ann Example", via: "oidc" },
      action: "trace.view",
      subject: { traceId: "t-1", userId: "u1" },
      from: { ip: "203.0.113.7", userAgent: "Mozilla/5.0 (X11; Linux x86_64) sk-test-token-1234567890abcdef" },
    },
  });
}
