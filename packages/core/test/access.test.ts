// The `access` event (who read what through the console): a system event and schema-strict. That
// redaction leaves it as recorded is tested with the engine, in packages/redaction/test/access.test.ts.
import { describe, expect, it } from "vitest";
import { EventSchema, isSystemEvent, tenantIdOf } from "../src/index.js";
import { accessEvent } from "./fixtures.js";

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
