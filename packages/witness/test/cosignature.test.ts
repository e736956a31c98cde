import { generateKeyPairSync } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  CheckpointSigner,
  addSignatures,
  checkCosignatures,
  cosign,
  cosigner,
  encodeCosignerKey,
  generateSigningKey,
  openCheckpointNote,
  parseCosignerKey,
  parseNote,
  verifyCosignature,
} from "@auditgraph/ledger";

const log = new CheckpointSigner(generateSigningKey().privateKeyPem, { origin: "log.example" });
const note = log.sign({ streamId: "s", treeSize: 1, rootHash: "ab".repeat(32), time: new Date().toISOString() }).note!;
const text = parseNote(note).text;
const key = (name: string) => {
  const { privateKey } = generateKeyPairSync("ed25519");
  return { name, privateKey, vkey: encodeCosignerKey(cosigner(name, privateKey)) };
};

describe("cosignature/v1 (C2SP tlog-cosignature)", () => {
  it("verifier keys round-trip; a log key, another type, or a key id not of its name and key is refused", () => {
    const a = key("w.example/a");
    expect(parseCosignerKey(a.vkey)).toMatchObject(cosigner(a.name, a.privateKey));
    expect(() => parseCosignerKey(log.verifierKey)).toThrow(/it is a log key/);
    // The base64 key may itself hold a '+': only the first two separate fields.
    const [name = "", id = ""] = a.vkey.split("+");
    const k = a.vkey.slice(name.length + id.length + 2);
    expect(() => parseCosignerKey(`other.example+${id}+${k}`)).toThrow(/id [0-9a-f]{8} is not that of its name and key/);
    expect(() => parseCosignerKey(`${name}+${id}`)).toThrow(/<name>\+<8 hex key id>\+<base64 key>/);
  });

  it("a verifier key whose base64 holds '+' round-trips, for a witness and for a log", () => {
    // Drawn until one does (about half of all keys), so the case is always met, never left to chance.
    const base64Of = (vkey: string) => vkey.split("+").slice(2).join("+");
    let a = key("w.example/plus");
    while (!base64Of(a.vkey).includes("+")) a = key("w.example/plus");
    expect(parseCosignerKey(a.vkey)).toMatchObject(cosigner(a.name, a.privateKey));
    let signer = new CheckpointSigner(generateSigningKey().privateKeyPem, { origin: "log.example" });
    while (!base64Of(signer.verifierKey).includes("+")) signer = new CheckpointSigner(generateSigningKey().privateKeyPem, { origin: "log.example" });
    const signed = signer.sign({ streamId: "s", treeSize: 1, rootHash: "cd".repeat(32), time: new Date().toISOString() }).note!;
    expect(() => openCheckpointNote(signed, signer.verifierKey)).not.toThrow();
  });

  it("a cosignature verifies over its text and time only; another text, key or a zero time does not", () => {
    const a = key("w.example/a");
    const b = key("w.example/b");
    const s = cosign(text, a, 1_700_000_000);
    expect(s.signature.readBigUInt64BE(0)).toBe(1_700_000_000n);
    expect(verifyCosignature(text, s, parseCosignerKey(a.vkey))).toBe(1_700_000_000);
    expect(verifyCosignature(`${text}x\n`, s, parseCosignerKey(a.vkey))).toBeUndefined();
    expect(verifyCosignature(text, s, parseCosignerKey(b.vkey))).toBeUndefined();
    expect(() => cosign(text, a, 0)).toThrow(/above 0/);
  });

  it("checks k of n: a listed key's bad line is missing, an unlisted key's ignored; the log's signature still opens", () => {
    const [a, b, c] = [key("w.example/a"), key("w.example/b"), key("w.example/c")];
    const bad = { ...cosign(text, b, 5), signature: Buffer.alloc(72, 1) };
    const cosigned = addSignatures(note, [cosign(text, a, 5), bad, cosign(text, c, 5)]);
    const listed = [parseCosignerKey(a.vkey), parseCosignerKey(b.vkey)];
    expect(checkCosignatures(cosigned, listed)).toEqual({ cosignedBy: [{ name: a.name, time: 5 }], missing: [b.name] });
    expect(openCheckpointNote(cosigned, log.verifierKey)).toMatchObject({ treeSize: 1, signers: ["log.example"] });
    // A newer line of a key replaces its older one: no pile of lines per witness.
    const renewed = addSignatures(cosigned, [cosign(text, b, 6)]);
    expect(parseNote(renewed).signatures.map((s) => s.name)).toEqual(["log.example", a.name, b.name, c.name]);
    expect(checkCosignatures(renewed, listed).missing).toEqual([]);
  });
});
