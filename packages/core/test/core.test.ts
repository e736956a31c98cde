import fc from "fast-check";
import * as jcs from "canonicalize";
import { describe, expect, it } from "vitest";
import {
  EventSchema,
  ValidationError,
  canonicalJson,
  hashCanonical,
  parseWith,
  sealRecord,
  recordHash,
  GENESIS_HASH,
  streamIdFor,
  newEventId,
  sealRecordText,
  textSealed,
} from "../src/index.js";
import { sampleEvent } from "./fixtures.js";

describe("canonical JSON (RFC 8785)", () => {
  it("sorts keys by UTF-16 code units and prints numbers the ECMAScript way", () => {
    // From RFC 8785 section 3.2.2/3.2.3: key order and number forms.
    expect(canonicalJson({ b: 1, a: [1e21, 1e-7, -0, 56.0], "\u20ac": "x", "\r": "y" })).toBe('{"\\r":"y","a":[1e+21,1e-7,0,56],"b":1,"€":"x"}');
  });

  it("gives equal hashes to equal values whatever their key order", () => {
    expect(hashCanonical({ x: 1, y: { b: 2, a: 1 } })).toBe(hashCanonical({ y: { a: 1, b: 2 }, x: 1 }));
    expect(hashCanonical({ x: 1 })).not.toBe(hashCanonical({ x: 2 }));
  });

  it("is what the canonicalize package (an independent RFC 8785 implementation) gives, for any JSON", () => {
    const reference = jcs.default as unknown as (input: unknown) => string;
    // Unicode keys and strings (surrogates, controls) and numbers of every kind, nested.
    const json = fc.jsonValue({ maxDepth: 4, depthSize: "small" });
    fc.assert(
      fc.property(json, (value) => {
        expect(canonicalJson(value)).toBe(reference(value));
      }),
      { numRuns: 2000 },
    );
    const text = fc.string({ unit: "binary" });
    fc.assert(
      fc.property(fc.dictionary(text, fc.oneof(text, fc.double({ noNaN: true, noDefaultInfinity: true }))), (value) => {
        expect(canonicalJson(value)).toBe(reference(value));
      }),
      { numRuns: 2000 },
    );
  });

  it("is SHA-256 over the canonical bytes", () => {
    // sha256("{\"a\":1}") computed independently.
    expect(hashCanonical({ a: 1 })).toBe("015abd7f5cc57a2dd94b7590f04ad8084273905ee33ec5cebeae62276a97f862");
  });
});

describe("event schema", () => {
  it("accepts a well-formed event", () => {
    expect(EventSchema.parse(sampleEvent()).type).toBe("llm.start");
  });

  it("names the missing field", () => {
    const event = sampleEvent({ identity: { user: { tenantId: "t1" }, agent: { id: "a", name: "A", version: "1" } } });
    expect(() => parseWith(EventSchema, event, "event")).toThrowError(/identity\.user\.id/);
  });

  it("names each offending field of a payload and of the envelope", () => {
    try {
      parseWith(EventSchema, sampleEvent({ eventId: "not-a-uuid", payload: { messages: "nope", tools: "x" } }), "event");
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(ValidationError);
      const paths = (error as ValidationError).issues.map((i) => i.path);
      expect(paths).toEqual(expect.arrayContaining(["eventId", "payload.messages", "payload.tools"]));
    }
  });

  it("refuses an unknown event type by naming `type`", () => {
    expect(() => parseWith(EventSchema, sampleEvent({ type: "llm.bogus" }), "event")).toThrowError(/type/);
  });
});

describe("ledger records", () => {
  it("hash everything but the hash, so any field change shows", () => {
    const record = sealRecord({ position: 0, streamId: "s", recordedAt: new Date().toISOString(), prevHash: GENESIS_HASH, event: sampleEvent() });
    expect(recordHash(record)).toBe(record.hash);
    expect(recordHash({ ...record, position: 1 })).not.toBe(record.hash);
    expect(recordHash({ ...record, event: { ...record.event, runId: "other" } })).not.toBe(record.hash);
  });
});

describe("streams", () => {
  it("partition by tenant and stay file-safe", () => {
    expect(streamIdFor("acme")).toBe("tenant-acme");
    expect(streamIdFor("../etc/passwd")).toMatch(/^tenant-h[0-9a-f]{32}$/);
    expect(streamIdFor("a b")).not.toBe(streamIdFor("a_b"));
  });
});

describe("event ids", () => {
  it("are UUIDv7 and sort in the order they were made, also within one millisecond", () => {
    const ids = Array.from({ length: 2000 }, () => newEventId());
    expect(ids.every((id) => /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/.test(id))).toBe(true);
    expect([...ids].sort()).toEqual(ids);
  });
});

describe("sealed record text", () => {
  it("is the record's canonical JSON, and is sealed exactly when its text is unchanged", () => {
    const unsealed = {
      position: 7,
      streamId: "s",
      recordedAt: "2026-01-01T00:00:00.000Z",
      prevHash: GENESIS_HASH,
      event: sampleEvent({ payload: { messages: [{ role: "user", content: ',"position":9,"hash":"x"' }] } }),
    };
    const { record, json } = sealRecordText(unsealed);
    expect(record).toEqual(sealRecord(unsealed));
    expect(json).toBe(canonicalJson(record));
    expect(textSealed(json, record.hash)).toBe(true);
    expect(textSealed(json.replace('"position":7', '"position":8'), record.hash)).toBe(false);
    expect(textSealed(json.replace("user", "User"), record.hash)).toBe(false);
    expect(textSealed(JSON.stringify(record), record.hash)).toBe(false); // not canonical: key order differs
  });
});
