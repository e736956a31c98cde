// The `access` event (who read what through the console): a system event and schema-strict. That
// redaction leaves it as recorded is tested with the engine, in packages/redaction/test/access.test.ts.
import { describe, expect, it } from "vitest";
import { EventSchema, SCHEMA_VERSION, isSystemEvent, newEventId, tenantIdOf, type AuditEvent } from "../src/index.js";

function accessEvent(): AuditEvent {
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

describe("the access event", () => {
  it("is a system event of its tenant", () => {
    const event = accessEvent();
    expect(isSystemEvent(event)).toBe(true);
    expect(tenantIdOf(event)).toBe("acme");
  });

  it("refuses unknown keys in its payload, by path", () => {
    const event = accessEvent() as unknown as { payload: { subject: Record<string, unknown> } };
    const bad = { ...event, payload: { ...event.payload, subject: { ...event.payload.subject, prompt: "the text" } } };
    const result = EventSchema.safeParse(bad);
    expect(result.success).toBe(false);
    expect(result.error!.issues[0]!.path).toEqual(["payload", "subject"]);
  });
});
