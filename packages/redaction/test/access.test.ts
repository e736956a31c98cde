// The `access` event (who read what through the console) is left as recorded by redaction: its ids,
// enums, the reader's name and client, the reader's IP. The record of a read must not be rewritten,
// and no audited user's content is in it. (Its schema is tested in packages/core/test/access.test.ts.)
import { describe, expect, it } from "vitest";
import { EventSchema, SCHEMA_VERSION, newEventId, type AuditEvent } from "@auditgraph/core";
import { Redactor } from "../src/index.js";

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
  it("is left as recorded by redaction, with every detector on", () => {
    const event = accessEvent();
    const redactor = new Redactor({ pii: true });
    expect(redactor.redactEvent(event)).toEqual(event);
  });
});
