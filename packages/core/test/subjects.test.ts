import { mkdtemp, readdir, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inspect } from "node:util";
import { describe, expect, it } from "vitest";
import {
  EventSchema,
  FileKeyStore,
  GENESIS_HASH,
  LedgerRecordSchema,
  SCHEMA_VERSION,
  SealedEventSchema,
  newEventId,
  openEvent,
  openRecords,
  recordHash,
  sealEvent,
  sealRecord,
  subjectRef,
  tenantIdOf,
  type AuditEvent,
  type UserEvent,
} from "../src/index.js";
import { sampleEvent } from "./fixtures.js";

const PROMPT = "my card ends 4242 and I live at 1 Elm Street";

const keyStore = async () => new FileKeyStore(join(await mkdtemp(join(tmpdir(), "auditgraph-keys-")), "keystore"));

function eventOf(userId: string, tenantId = "t1", extra: Record<string, unknown> = {}): UserEvent {
  return sampleEvent({
    identity: { user: { id: userId, tenantId }, agent: { id: "a1", name: "Agent", version: "1.0.0" } },
    payload: { messages: [{ role: "user", content: PROMPT }] },
    ...extra,
  }) as UserEvent;
}

function erasedEvent(overrides: Record<string, unknown> = {}) {
  const eventId = newEventId();
  return {
    eventId,
    schemaVersion: SCHEMA_VERSION,
    type: "subject.erased",
    occurredAt: new Date().toISOString(),
    traceId: eventId,
    runId: eventId,
    parentRunId: null,
    sessionId: null,
    tenantId: "t1",
    subject: subjectRef("t1", "alice"),
    payload: { keyId: "k-1", erasedAt: new Date().toISOString(), reason: "GDPR art. 17 request", requestedBy: "dpo-7" },
    ...overrides,
  };
}

describe("subject refs", () => {
  it("are 64 hex digits, the same for the same tenant and user, different across tenants, and hold neither id", () => {
    const ref = subjectRef("acme", "alice@example.com");
    expect(ref).toMatch(/^[0-9a-f]{64}$/);
    expect(subjectRef("acme", "alice@example.com")).toBe(ref);
    expect(subjectRef("globex", "alice@example.com")).not.toBe(ref);
    // [tenant, user] as a JSON array: no "ab"+"c" vs "a"+"bc" collision.
    expect(subjectRef("ab", "c")).not.toBe(subjectRef("a", "bc"));
    expect(ref).not.toContain("alice");
    expect(() => subjectRef("", "alice")).toThrow(/tenantId/);
  });
});

describe("FileKeyStore", () => {
  it("makes one key per subject, readable by its owner only, and gives the same key back", async () => {
    const store = await keyStore();
    const subject = subjectRef("t1", "alice");
    expect(await store.current(subject)).toBeUndefined();
    const key = await store.keyFor(subject);
    expect(key.key).toHaveLength(32);
    expect((await store.keyFor(subject)).key.equals(key.key)).toBe(true);
    expect((await store.byId(subject, key.keyId))?.keyId).toBe(key.keyId);
    expect(await store.byId(subject, "another-id")).toBeUndefined();
    expect((await stat(join(store.dir, `${subject}.key`))).mode & 0o777).toBe(0o600);
    // The key id says nothing about the subject.
    expect(key.keyId).not.toContain(subject.slice(0, 8));
    expect(await readdir(store.dir)).toEqual([`${subject}.key`]);
  });

  it("gives every caller racing on a new subject the same key (two stores, one directory)", async () => {
    const a = await keyStore();
    const b = new FileKeyStore(a.dir);
    const subject = subjectRef("t1", "bob");
    const keys = await Promise.all([a.keyFor(subject), b.keyFor(subject), a.keyFor(subject), b.keyFor(subject)]);
    expect(new Set(keys.map((k) => k.keyId)).size).toBe(1);
    expect(new Set(keys.map((k) => k.key.toString("hex"))).size).toBe(1);
    expect(await readdir(a.dir)).toEqual([`${subject}.key`]);
  });

  it("destroys a key (and a crashed write's leftover) and says which; a second destroy finds none", async () => {
    const store = await keyStore();
    const subject = subjectRef("t1", "carol");
    const key = await store.keyFor(subject);
    await writeFile(join(store.dir, `${subject}.leftover.tmp`), "key bytes");
    expect(await store.destroy(subject)).toBe(key.keyId);
    expect(await readdir(store.dir)).toEqual([]);
    expect(await store.current(subject)).toBeUndefined();
    expect(await store.destroy(subject)).toBeUndefined();
  });

  it("answers from the file as it is now: another store's destroy and new key are seen, never the key read before", async () => {
    const worker = await keyStore();
    const eraser = new FileKeyStore(worker.dir);
    const subject = subjectRef("t1", "frank");
    const first = await worker.keyFor(subject);
    expect((await worker.current(subject))?.keyId).toBe(first.keyId);
    expect(await eraser.destroy(subject)).toBe(first.keyId);
    expect(await worker.current(subject)).toBeUndefined();
    expect(await worker.byId(subject, first.keyId)).toBeUndefined();
    // The returning user's new key, made by the other store: a new file, read afresh.
    const second = await eraser.keyFor(subject);
    expect(second.keyId).not.toBe(first.keyId);
    expect((await worker.keyFor(subject)).keyId).toBe(second.keyId);
    expect((await worker.current(subject))?.key.equals(second.key)).toBe(true);
  });

  it("refuses a subject that is not a subject ref, naming the argument", async () => {
    const store = await keyStore();
    await expect(store.keyFor("../../etc/passwd")).rejects.toThrow(/invalid subject/);
  });

  it("names a damaged key file without quoting it (it holds key bytes)", async () => {
    const store = await keyStore();
    const subject = subjectRef("t1", "erin");
    await store.keyFor(subject);
    await writeFile(join(store.dir, `${subject}.key`), "c2VjcmV0LWtleS1ieXRlcw== truncated");
    const error = await store.current(subject).catch((e: Error) => e);
    expect(String(error)).toMatch(/key file .*\.key: not JSON/);
    expect(String(error)).not.toContain("c2VjcmV0");
  });

  it("never shows key bytes in JSON or util.inspect", async () => {
    const key = await (await keyStore()).keyFor(subjectRef("t1", "dave"));
    const b64 = key.key.toString("base64");
    expect(JSON.stringify({ key })).not.toContain(b64);
    expect(JSON.stringify({ key })).toContain(key.keyId);
    expect(inspect({ key }, { depth: 5 })).not.toContain(key.key.toString("hex").slice(0, 8));
    expect(inspect({ key }, { depth: 5 })).not.toContain(b64);
  });
});

describe("sealing events per data subject", () => {
  it("keeps a clear envelope for ordering and hides everything else, then opens to the event as received", async () => {
    const store = await keyStore();
    // A field this schema does not know: sealed and given back like the rest.
    const event = eventOf("alice@example.com", "t1", { futureField: { x: 1 } });
    const sealed = await sealEvent(event, store);
    expect(SealedEventSchema.parse(sealed)).toEqual(sealed);
    expect(sealed).toMatchObject({
      eventId: event.eventId,
      schemaVersion: event.schemaVersion,
      type: "llm.start",
      occurredAt: event.occurredAt,
      traceId: event.traceId,
      runId: event.runId,
      parentRunId: null,
      subject: subjectRef("t1", "alice@example.com"),
      sealed: { alg: "A256GCM" },
    });
    const text = JSON.stringify(sealed);
    for (const secret of [PROMPT, "4242", "alice", "Agent", "fake-model"]) expect(text).not.toContain(secret);
    const opened = await openEvent(sealed, store);
    expect(opened).toEqual({ erased: false, event });

    // Two seals of one event differ (fresh IV), both open.
    const again = await sealEvent(event, store);
    expect(again.sealed.iv).not.toBe(sealed.sealed.iv);
    expect(again.sealed.ciphertext).not.toBe(sealed.sealed.ciphertext);
  });

  it("is a valid ledger record, hashed over the ciphertext", async () => {
    const store = await keyStore();
    const sealed = await sealEvent(eventOf("alice"), store);
    const record = sealRecord({ position: 0, streamId: "tenant-t1", recordedAt: new Date().toISOString(), prevHash: GENESIS_HASH, event: sealed });
    expect(LedgerRecordSchema.parse(record)).toEqual(record);
    expect(record.hash).toBe(recordHash(record));
  });

  it("after the subject's key is destroyed: erased (never a throw), the record's hash unchanged, other subjects still open", async () => {
    const store = await keyStore();
    const alice = eventOf("alice");
    const bob = eventOf("bob");
    const records = [alice, bob].map(async (e, position) =>
      sealRecord({ position, streamId: "tenant-t1", recordedAt: new Date().toISOString(), prevHash: GENESIS_HASH, event: await sealEvent(e, store) }),
    );
    const stored = await Promise.all(records);
    const hashes = stored.map((r) => recordHash(r));
    const aliceRef = subjectRef("t1", "alice");
    const aliceKey = (await store.current(aliceRef))!.keyId;

    expect(await store.destroy(aliceRef)).toBe(aliceKey);
    expect(await openEvent(stored[0]!.event, store)).toEqual({ erased: true, eventId: alice.eventId, subject: aliceRef, keyId: aliceKey });
    const opened = await openRecords(stored, store);
    expect(opened.map((o) => o.erased)).toEqual([true, false]);
    expect(opened[0]).toMatchObject({ erased: true, subject: aliceRef, keyId: aliceKey, record: stored[0] });
    expect(opened[1]).toEqual({ erased: false, record: { ...stored[1], event: bob } });
    expect(stored.map((r) => recordHash(r))).toEqual(hashes);

    // A returning user gets a new key; the old payloads stay unreadable.
    const fresh = await store.keyFor(aliceRef);
    expect(fresh.keyId).not.toBe(aliceKey);
    expect((await openEvent(stored[0]!.event, store)).erased).toBe(true);
  });

  it("passes events stored in the clear through unopened", async () => {
    const event = eventOf("alice");
    const store = await keyStore();
    expect(await openEvent(event, store)).toEqual({ erased: false, event });
  });

  it("throws, naming the event, on a changed ciphertext, tag or clear envelope", async () => {
    const store = await keyStore();
    const sealed = await sealEvent(eventOf("alice"), store);
    const flip = (b64: string) => {
      const bytes = Buffer.from(b64, "base64");
      bytes[0] = bytes[0]! ^ 0x01;
      return bytes.toString("base64");
    };
    const tampered = [
      { ...sealed, sealed: { ...sealed.sealed, ciphertext: flip(sealed.sealed.ciphertext) } },
      { ...sealed, sealed: { ...sealed.sealed, tag: flip(sealed.sealed.tag) } },
      { ...sealed, sealed: { ...sealed.sealed, iv: flip(sealed.sealed.iv) } },
      // The envelope is authenticated too: a ciphertext cannot be moved under another event.
      { ...sealed, traceId: "another-trace" },
      { ...sealed, type: "llm.end" },
    ];
    for (const t of tampered)
      await expect(openEvent(t, store)).rejects.toThrow(new RegExp(`event ${sealed.eventId}: sealed\\.ciphertext does not authenticate`));
    const { tag: _tag, ...noTag } = sealed.sealed;
    await expect(openEvent({ ...sealed, sealed: noTag } as never, store)).rejects.toThrow(/sealed\.tag/);
  });

  it("never seals a subject.erased event", async () => {
    const store = await keyStore();
    await expect(sealEvent(EventSchema.parse(erasedEvent()) as never, store)).rejects.toThrow(/never sealed/);
  });
});

describe("the subject.erased event", () => {
  it("is an event of the schema, in its tenant's stream, with no identity", () => {
    const event = EventSchema.parse(erasedEvent()) as AuditEvent;
    expect(event.type).toBe("subject.erased");
    expect(tenantIdOf(event)).toBe("t1");
    expect(event).not.toHaveProperty("identity");
  });

  it("refuses personal data: an identity, or any field the schema does not name", () => {
    const withIdentity = EventSchema.safeParse(
      erasedEvent({ identity: { user: { id: "alice", tenantId: "t1" }, agent: { id: "a", name: "A", version: "1" } } }),
    );
    expect(withIdentity.success).toBe(false);
    expect(EventSchema.safeParse(erasedEvent({ email: "alice@example.com" })).success).toBe(false);
    const base = erasedEvent();
    expect(EventSchema.safeParse({ ...base, payload: { ...base.payload, userId: "alice" } }).success).toBe(false);
    expect(EventSchema.safeParse(erasedEvent({ subject: "alice" })).success).toBe(false);
  });
});
