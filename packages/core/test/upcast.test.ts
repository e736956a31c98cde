import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { EventSchema, SCHEMA_VERSION, ValidationError, issuesOf, parseEvent, upcastEvent, type AuditEvent, type EventParseResult } from "../src/index.js";
import { sampleEvent } from "./fixtures.js";

const cost = { currency: "USD", input: 0.00008, output: 0.00023, total: 0.00031 };
const usage = { inputTokens: 32, outputTokens: 23, totalTokens: 55 };

/** An `llm.end` as a schema-1 producer wrote it: cost in the payload. */
const v1LlmEnd = (payloadCost: unknown = cost) =>
  sampleEvent({
    schemaVersion: 1,
    type: "llm.end",
    model: { provider: "openai", name: "gpt-x", version: "gpt-x-2026-01-15", params: {} },
    usage,
    payload: { output: { text: "268.5 EUR", toolCalls: [] }, timing: { latencyMs: 12 }, cost: payloadCost },
  }) as unknown as Record<string, unknown>;

const data = (result: EventParseResult) => {
  if (!result.success) throw new Error(`expected the event to parse: ${result.error.message}`);
  return result.data;
};

const issues = (result: EventParseResult) => {
  if (result.success) throw new Error("expected the event to be refused");
  return issuesOf(result.error);
};

/** Frozen all the way down: upcasting must never change what the ledger will store. */
function deepFreeze<T>(value: T): T {
  if (value && typeof value === "object") {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}

describe("parseEvent", () => {
  it("brings a v1 llm.end to the current version with its cost beside usage, and leaves its input as received", () => {
    const v1 = deepFreeze(v1LlmEnd());
    const received = structuredClone(v1);
    expect(EventSchema.safeParse(v1).success).toBe(false); // the current schema alone refuses it

    const event = data(parseEvent(v1)) as AuditEvent & { type: "llm.end" };
    expect(event.schemaVersion).toBe(SCHEMA_VERSION);
    expect(event.cost).toEqual(cost);
    expect(event.usage).toEqual(usage);
    expect(event.payload).not.toHaveProperty("cost");
    expect(event.payload).toEqual({ output: { text: "268.5 EUR", toolCalls: [] }, timing: { latencyMs: 12 } });
    expect(v1).toEqual(received);
  });

  it("upcasts a v1 llm.end without a cost, and v1 events of other types, by their version alone", () => {
    const { cost: _, ...payload } = v1LlmEnd().payload as Record<string, unknown>;
    const noCost = parseEvent({ ...v1LlmEnd(), payload });
    expect(noCost.success && noCost.data).toMatchObject({ schemaVersion: SCHEMA_VERSION, payload });
    expect(noCost.success && noCost.data).not.toHaveProperty("cost");

    const start = sampleEvent({ schemaVersion: 1 });
    const parsed = parseEvent(start);
    expect(parsed.success && parsed.data).toEqual({ ...start, schemaVersion: SCHEMA_VERSION });
  });

  it("passes a current-version event through unchanged", () => {
    const current = sampleEvent({ type: "llm.end", usage, cost, payload: { output: { text: "hi", toolCalls: [] } } });
    expect(parseEvent(current)).toEqual(EventSchema.safeParse(current));
    expect(data(parseEvent(current))).toEqual(current);
  });

  it("refuses a version newer than it knows, naming schemaVersion", () => {
    const future = sampleEvent({ schemaVersion: SCHEMA_VERSION + 1 });
    expect(issues(parseEvent(future))).toEqual([
      { path: "schemaVersion", message: expect.stringMatching(new RegExp(`version ${SCHEMA_VERSION + 1} is newer .*\\(${SCHEMA_VERSION}\\)`)) },
    ]);
    expect(() => upcastEvent(future)).toThrowError(/invalid stored event: schemaVersion: version \d+ is newer/);
  });

  it("names a missing or malformed schemaVersion among the other bad fields", () => {
    const { schemaVersion: _, ...unversioned } = sampleEvent({ eventId: "not-a-uuid" });
    expect(issues(parseEvent(unversioned)).map((i) => i.path)).toEqual(expect.arrayContaining(["schemaVersion", "eventId"]));
    expect(issues(parseEvent(sampleEvent({ schemaVersion: "1" }))).map((i) => i.path)).toContain("schemaVersion");
    expect(issues(parseEvent(sampleEvent({ schemaVersion: 0 }))).map((i) => i.path)).toContain("schemaVersion");
  });

  it("names the field of a bad v1 event as its producer sent it", () => {
    // A bad cost is named where v1 had it, not where the upcaster would have moved it.
    expect(issues(parseEvent(v1LlmEnd({ ...cost, currency: "dollars" })))).toEqual([{ path: "payload.cost.currency", message: expect.any(String) }]);
    // Fields v1 and v2 share are checked by the current schema, under the same names.
    const broken = v1LlmEnd();
    delete (broken.identity as { user: Record<string, unknown> }).user.id;
    expect(issues(parseEvent(broken)).map((i) => i.path)).toEqual(["identity.user.id"]);
    expect(issues(parseEvent({ ...v1LlmEnd(), payload: "nope" })).map((i) => i.path)).toEqual(["payload"]);
    // With the worker's message: the dead letter's reason names the field.
    const error = new ValidationError("event 0", issues(parseEvent(v1LlmEnd({ ...cost, total: -1 }))));
    expect(error.message).toMatch(/^invalid event 0: payload\.cost\.total: /);
  });
});

describe("upcastEvent", () => {
  it("gives readers a stored v1 event in the current version, keeping members the schema does not know", () => {
    const stored = deepFreeze({ ...v1LlmEnd(), promptHash: "abc" });
    const event = upcastEvent(stored) as AuditEvent & { type: "llm.end" };
    expect(event).toMatchObject({ schemaVersion: SCHEMA_VERSION, cost, usage, promptHash: "abc" });
    expect(event.payload).not.toHaveProperty("cost");
    expect(EventSchema.safeParse(event).success).toBe(true);
  });

  it("returns a current-version event as it is", () => {
    const current = sampleEvent();
    expect(upcastEvent(current)).toBe(current);
  });

  it("names schemaVersion when a stored event has none", () => {
    const { schemaVersion: _, ...unversioned } = sampleEvent();
    expect(() => upcastEvent(unversioned)).toThrowError(/invalid stored event: schemaVersion: /);
  });
});

describe("the recorded v1 batch (test/fixtures/v1)", () => {
  const batch = JSON.parse(readFileSync(new URL("../../../test/fixtures/v1/order-assistant-batch.json", import.meta.url), "utf8")) as Record<string, unknown>[];

  it("is all version 1, which the current schema alone refuses", () => {
    expect(batch.length).toBeGreaterThan(0);
    expect(new Set(batch.map((e) => e.schemaVersion))).toEqual(new Set([1]));
    expect(batch.every((e) => !EventSchema.safeParse(e).success)).toBe(true);
  });

  it("parses whole, every llm.end's cost moved from the payload to beside its usage", () => {
    const parsed = batch.map((e) => parseEvent(e));
    expect(
      parsed.flatMap((r, i) =>
        r.success
          ? []
          : [
              `${i}: ${issuesOf(r.error)
                .map((x) => x.path)
                .join(", ")}`,
            ],
      ),
    ).toEqual([]);
    const llmEnds = batch.flatMap((e, i) => (e.type === "llm.end" ? [{ v1: e, v2: data(parsed[i]!) as AuditEvent & { type: "llm.end" } }] : []));
    expect(llmEnds.length).toBeGreaterThan(0);
    for (const { v1, v2 } of llmEnds) {
      const v1Payload = v1.payload as { cost: unknown };
      expect(v1Payload.cost).toBeDefined();
      expect(v2.cost).toEqual(v1Payload.cost);
      expect(v2.usage).toEqual(v1.usage);
      expect(v2.payload).not.toHaveProperty("cost");
    }
  });
});
