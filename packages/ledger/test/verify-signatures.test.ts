import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { CheckpointSigner, SegmentLedger, generateSigningKey } from "../src/index.js";
import { textEvent } from "./text-event.js";

const event = textEvent;

describe("verify reports how many checkpoint signatures it checked", () => {
  it("all of them with a public key, none without one, even over a garbage signature", async () => {
    const keys = generateSigningKey();
    const dir = await mkdtemp(join(tmpdir(), "ledger-sig-"));
    const ledger = new SegmentLedger(dir, { signer: new CheckpointSigner(keys.privateKeyPem) });
    await ledger.append("s1", [event(0), event(1)]);
    await ledger.append("s1", [event(2)]);
    expect(await ledger.verify(keys.publicKeyPem)).toMatchObject({ ok: true, streams: [{ checkpoints: 2, signaturesVerified: 2 }] });
    expect(await ledger.verify()).toMatchObject({ ok: true, streams: [{ checkpoints: 2, signaturesVerified: 0 }] });

    const file = join(dir, "streams", "s1", "checkpoints.jsonl");
    await writeFile(file, (await readFile(file, "utf8")).replace(/"signature":"[^"]+"/, '"signature":"Z2FyYmFnZQ=="'));
    expect(await ledger.verify(keys.publicKeyPem)).toMatchObject({ ok: false, failure: { reason: "bad-signature" } });
    // Without a key the roots still hold; the report must not claim the signature was checked.
    expect(await ledger.verify()).toMatchObject({ ok: true, streams: [{ checkpoints: 2, signaturesVerified: 0 }] });
    await ledger.close();
  });
});
