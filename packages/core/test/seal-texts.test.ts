import { createDecipheriv } from "node:crypto";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as jcs from "canonicalize";
import { describe, expect, it } from "vitest";
import { FileKeyStore, GENESIS_HASH, openEvent, sealEvent, sealEventWithKey, sealRecordBytes, subjectRef, type UserEvent } from "../src/index.js";
import { VersionedSchema, isVersioned } from "../src/events/common.js";
import { sealedText } from "../src/subjects/sealed-text.js";
import { sampleEvent } from "./fixtures.js";

const reference = jcs.default as unknown as (input: unknown) => string;

const store = async () => new FileKeyStore(join(await mkdtemp(join(tmpdir(), "auditgraph-seal-texts-")), "keys"));

// Envelope members JSON.stringify escapes (quotes, backslashes, controls, a lone surrogate) or
// writes as they are (non-ASCII, a paired surrogate): the AAD and the remembered text are
// written from each member's text, and must still be what canonicalJson writes.
const awkward = ['trace "quoted"', "back\\slash", "tab\tand\nnewline", "lone \ud800 surrogate", "é and 😀", "\u2028"];

describe("a sealed event's texts, written member by member", () => {
  it("are its canonical JSON, and open again, whatever its envelope's strings hold", async () => {
    const keys = await store();
    for (const text of awkward) {
      const event = sampleEvent({ traceId: text, runId: `run ${text}`, parentRunId: text }) as UserEvent;
      const sealed = await sealEvent(event, keys);
      expect(sealedText(sealed)).toBe(reference(sealed));
      const opened = await openEvent(JSON.parse(JSON.stringify(sealed)), keys);
      expect(opened.erased ? undefined : opened.event).toEqual(event);
      // The AAD is the canonical JSON of the envelope and key id, as an independent implementation writes it.
      const { sealed: box, ...envelope } = sealed;
      const key = await keys.byId(sealed.subject, box.keyId);
      const decipher = createDecipheriv("aes-256-gcm", key!.secret, Buffer.from(box.iv, "base64"));
      decipher.setAAD(Buffer.from(reference({ ...envelope, alg: box.alg, keyId: box.keyId })));
      decipher.setAuthTag(Buffer.from(box.tag, "base64"));
      const plain = Buffer.concat([decipher.update(Buffer.from(box.ciphertext, "base64")), decipher.final()]).toString("utf8");
      expect(plain).toBe(reference(event));
    }
  });

  it("with the key in hand are those of sealEvent, and the record holds the same bytes as one written afresh", async () => {
    const keys = await store();
    const event = sampleEvent() as UserEvent;
    const subject = subjectRef("t1", "u1");
    const sealed = sealEventWithKey(event, await keys.keyFor(subject), subject);
    expect(sealed.subject).toBe(subject);
    expect(sealedText(sealed)).toBe(reference(sealed));
    for (const streamId of ["tenant-t1", 'odd "stream"']) {
      const unsealed = { position: 7, streamId, recordedAt: "2026-01-01T00:00:00.000Z", prevHash: GENESIS_HASH, event: sealed };
      const { record, bytes } = sealRecordBytes(unsealed);
      expect(bytes.toString("utf8")).toBe(reference(record));
    }
    expect(((await openEvent(sealed, keys)) as { event: unknown }).event).toEqual(event);
  });

  it("are left to canonicalJson for an envelope member that is not a string, null or a finite number", async () => {
    const keys = await store();
    const sealed = await sealEvent(sampleEvent({ parentRunId: undefined, schemaVersion: 1.5 }) as UserEvent, keys);
    expect(sealedText(sealed)).toBeUndefined();
    const { record, bytes } = sealRecordBytes({
      position: 0,
      streamId: "tenant-t1",
      recordedAt: "2026-01-01T00:00:00.000Z",
      prevHash: GENESIS_HASH,
      event: sealed,
    });
    expect(bytes.toString("utf8")).toBe(reference(record));
  });
});

describe("isVersioned", () => {
  it("agrees with VersionedSchema", () => {
    const inputs: unknown[] = [
      { schemaVersion: 1 },
      { schemaVersion: 2, type: "x" },
      { schemaVersion: 0 },
      { schemaVersion: -1 },
      { schemaVersion: 1.5 },
      { schemaVersion: Number.MAX_SAFE_INTEGER },
      { schemaVersion: Number.MAX_SAFE_INTEGER + 1 },
      { schemaVersion: Number.POSITIVE_INFINITY },
      { schemaVersion: Number.NaN },
      { schemaVersion: "1" },
      { schemaVersion: null },
      {},
      [],
      Object.assign([], { schemaVersion: 1 }),
      null,
      undefined,
      1,
      "x",
      Object.create({ schemaVersion: 1 }),
    ];
    for (const input of inputs) expect(isVersioned(input), String(JSON.stringify(input))).toBe(VersionedSchema.safeParse(input).success);
  });
});
