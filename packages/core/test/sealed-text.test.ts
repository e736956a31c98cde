import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as jcs from "canonicalize";
import { describe, expect, it } from "vitest";
import { FileKeyStore, GENESIS_HASH, openEvent, sealEvent, sealRecordBytes, textSealed, type SealedEvent, type UserEvent } from "../src/index.js";
import { sealedText } from "../src/subjects/sealed-text.js";
import { sampleEvent } from "./fixtures.js";

const reference = jcs.default as unknown as (input: unknown) => string;

async function sealedSample(extra: Record<string, unknown> = {}): Promise<{ sealed: SealedEvent; store: FileKeyStore }> {
  const store = new FileKeyStore(join(await mkdtemp(join(tmpdir(), "auditgraph-sealed-text-")), "keys"));
  const event = sampleEvent({
    identity: { user: { id: "u1", tenantId: "t1" }, agent: { id: "a1", name: "Agent", version: "1.0.0" } },
    payload: { messages: [{ role: "user", content: 'quotes " and \\ and \u2028 and é' }] },
    ...extra,
  }) as UserEvent;
  return { sealed: await sealEvent(event, store), store };
}

/** What the ledger must store for `event` at position 0, from the independent implementation. */
function expectedRecord(event: unknown): string {
  const unsealed = { position: 0, streamId: "tenant-t1", recordedAt: "2026-01-01T00:00:00.000Z", prevHash: GENESIS_HASH, event };
  return reference(unsealed);
}

function stored(event: SealedEvent): { text: string; hash: string } {
  const { record, bytes } = sealRecordBytes({ position: 0, streamId: "tenant-t1", recordedAt: "2026-01-01T00:00:00.000Z", prevHash: GENESIS_HASH, event });
  return { text: bytes.toString("utf8"), hash: record.hash };
}

// The ledger writes a sealed event this process made from the text remembered when it was
// sealed (sealed-text.ts): held here to the independent RFC 8785 implementation, and to writing
// it afresh once the event has been changed.
describe("the remembered canonical text of a sealed event", () => {
  it("is its canonical JSON, and a record of it stores the same bytes as one written afresh", async () => {
    const { sealed, store } = await sealedSample();
    expect(sealedText(sealed)).toBe(reference(sealed));
    const { text, hash } = stored(sealed);
    expect(textSealed(text, hash)).toBe(true);
    const { hash: _hash, ...withoutHash } = JSON.parse(text) as Record<string, unknown>;
    expect(reference(withoutHash)).toBe(expectedRecord(sealed));
    expect(reference(JSON.parse(text))).toBe(text);
    // And it still opens.
    expect((await openEvent(JSON.parse(text).event, store)).erased).toBe(false);
  });

  it("is not used once the event has changed: a member's value, a member added or taken away, another sealed object", async () => {
    const changes: ((e: Record<string, unknown> & { sealed: Record<string, unknown> }) => void)[] = [
      (e) => {
        e.sealed.ciphertext = `${e.sealed.ciphertext as string}"`;
      },
      (e) => {
        e.traceId = "other-trace";
      },
      (e) => {
        e.extra = "member";
      },
      (e) => {
        delete e.sealed.tag;
        e.sealed.tog = "x";
      },
      (e) => {
        e.sealed = { ...e.sealed, keyId: "another" };
      },
    ];
    for (const change of changes) {
      const { sealed } = await sealedSample();
      change(sealed as unknown as Record<string, unknown> & { sealed: Record<string, unknown> });
      expect(sealedText(sealed)).toBeUndefined();
      const { text, hash } = stored(sealed);
      const { hash: _hash, ...withoutHash } = JSON.parse(text) as Record<string, unknown>;
      expect(reference(withoutHash)).toBe(expectedRecord(sealed));
      expect(textSealed(text, hash)).toBe(true);
    }
  });

  it("is not there for an equal event made elsewhere (parsed back from its text)", async () => {
    const { sealed } = await sealedSample();
    expect(sealedText(JSON.parse(JSON.stringify(sealed)))).toBeUndefined();
  });
});
