import { createPrivateKey, createPublicKey } from "node:crypto";
import { describe, expect, it } from "vitest";
import { isAuditgraphError } from "@auditgraph/core";
import {
  CheckpointSigner,
  checkpointNote,
  encodeVerifierKey,
  formatCheckpointBody,
  generateSigningKey,
  noteVerifier,
  openCheckpointNote,
  openNote,
  parseCheckpointBody,
  parseCheckpointNote,
  parseNote,
  parseVerifierKey,
  signNote,
  verifierKey,
  verifyCheckpointSignature,
  type Checkpoint,
} from "../src/index.js";

// The test vectors of Go's reference implementation, golang.org/x/mod/sumdb/note (note_test.go).
const PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
const PETER_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
const ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop";
const TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
const PETER_SIG = "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
const ENOCH_SIG = "— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n";

// The C2SP tlog-checkpoint example (its key is not published: parsed, not verified).
const C2SP_CHECKPOINT =
  "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\n— example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n";

/** The Ed25519 private key of a Go signer key: its last field is base64(0x01 || 32-byte seed). */
function goSignerKey(skey: string) {
  const seed = Buffer.from(skey.split("+").slice(4).join("+"), "base64").subarray(1);
  return createPrivateKey({ key: Buffer.concat([Buffer.from("302e020100300506032b657004220420", "hex"), seed]), format: "der", type: "pkcs8" });
}

const codeOf = (fn: () => unknown): string | undefined => {
  try {
    fn();
  } catch (error) {
    return isAuditgraphError(error) ? error.code : `not an AuditgraphError: ${String(error)}`;
  }
  return undefined;
};

describe("C2SP signed notes: Go's sumdb/note vectors", () => {
  it("reads the vkeys and writes them back the same", () => {
    const peter = parseVerifierKey(PETER_VKEY);
    expect(peter).toMatchObject({ name: "PeterNeumann", keyId: 0xc74f20a3 });
    expect(encodeVerifierKey(peter)).toBe(PETER_VKEY);
    expect(parseVerifierKey(ENOCH_VKEY)).toMatchObject({ name: "EnochRoot", keyId: 0xaf0cfe78 });
    expect(encodeVerifierKey(parseVerifierKey(ENOCH_VKEY))).toBe(ENOCH_VKEY);
  });

  it("refuses mangled vkeys: a wrong key id, a short key, another algorithm, a bad name", () => {
    const bad = [
      "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
      "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==",
      "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
      "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
      "PeterNeumann+c74f20a3",
      PETER_VKEY.slice(0, -1),
      PETER_VKEY.slice(1),
    ];
    for (const vkey of bad)
      expect(
        codeOf(() => parseVerifierKey(vkey)),
        vkey,
      ).toBe("AUDITGRAPH_E_NOTE_MALFORMED");
  });

  it("signs the text exactly as Go does (Ed25519 is deterministic), under the vkey's name and id", () => {
    const privateKey = goSignerKey(PETER_SKEY);
    expect(encodeVerifierKey({ name: "PeterNeumann", publicKey: createPublicKey(privateKey) })).toBe(PETER_VKEY);
    expect(signNote(TEXT, { name: "PeterNeumann", privateKey })).toBe(`${TEXT}\n${PETER_SIG}`);
  });

  it("opens a note with the known keys and sets aside the signatures of unknown ones", () => {
    const peter = parseVerifierKey(PETER_VKEY);
    const enoch = parseVerifierKey(ENOCH_VKEY);
    const note = `${TEXT}\n${PETER_SIG}${ENOCH_SIG}`;
    const one = openNote(note, [peter]);
    expect(one.text).toBe(TEXT);
    expect(one.signatures.map((s) => [s.name, s.keyId])).toEqual([["PeterNeumann", 0xc74f20a3]]);
    expect(one.unverified.map((s) => [s.name, s.keyId])).toEqual([["EnochRoot", 0xaf0cfe78]]);
    expect(openNote(note, [peter, enoch]).signatures.map((s) => s.name)).toEqual(["PeterNeumann", "EnochRoot"]);
    expect(openNote(Buffer.from(note, "utf8"), [enoch]).signatures.map((s) => s.name)).toEqual(["EnochRoot"]);
    // A key that shares the name but not the id is another key: its signature is ignored, not refused.
    const renamed = noteVerifier("PeterNeumann", parseVerifierKey(ENOCH_VKEY).publicKey);
    expect(codeOf(() => openNote(note, [renamed]))).toBe("AUDITGRAPH_E_NOTE_UNVERIFIED");
  });

  it("refuses a note no known key signed, and one whose known signature does not verify", () => {
    expect(codeOf(() => openNote(`${TEXT}\n${PETER_SIG}${ENOCH_SIG}`, []))).toBe("AUDITGRAPH_E_NOTE_UNVERIFIED");
    const corrupt = `${TEXT}\n${PETER_SIG.slice(0, 60)}ABCD${PETER_SIG.slice(60)}`;
    expect(codeOf(() => openNote(corrupt, [parseVerifierKey(PETER_VKEY)]))).toBe("AUDITGRAPH_E_NOTE_UNVERIFIED");
    const tampered = `${TEXT.replace("cryptography", "cryptographY")}\n${PETER_SIG}`;
    expect(codeOf(() => openNote(tampered, [parseVerifierKey(PETER_VKEY)]))).toBe("AUDITGRAPH_E_NOTE_UNVERIFIED");
  });

  it("refuses what Go refuses as malformed", () => {
    const bad: (string | Uint8Array)[] = [
      TEXT,
      `${TEXT}\n`,
      `${TEXT}\n${PETER_SIG.slice(0, -1)}`,
      `\u0001${TEXT}\n${PETER_SIG}`,
      Buffer.concat([Buffer.from([0xff]), Buffer.from(`${TEXT}\n${PETER_SIG}`)]),
      `${TEXT}\n— Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=`,
      `${TEXT}\n${PETER_SIG}Unexpected line.\n`,
      `${TEXT}\n${PETER_SIG.repeat(101)}`,
      `${TEXT}\n${PETER_SIG.replace("—", "-")}`,
    ];
    for (const message of bad)
      expect(
        codeOf(() => parseNote(message)),
        String(message),
      ).toBe("AUDITGRAPH_E_NOTE_MALFORMED");
    expect(codeOf(() => signNote("abc", { name: "PeterNeumann", privateKey: goSignerKey(PETER_SKEY) }))).toBe("AUDITGRAPH_E_NOTE_MALFORMED");
    expect(codeOf(() => signNote(TEXT, { name: "a+b", privateKey: goSignerKey(PETER_SKEY) }))).toBe("AUDITGRAPH_E_NOTE_MALFORMED");
  });

  it("takes the text up to the last blank line (the text may hold blank lines)", () => {
    const text = "first\n\nsecond\n";
    const note = signNote(text, { name: "PeterNeumann", privateKey: goSignerKey(PETER_SKEY) });
    expect(openNote(note, [parseVerifierKey(PETER_VKEY)]).text).toBe(text);
  });
});

describe("C2SP tlog-checkpoint bodies", () => {
  it("reads the spec's example checkpoint", () => {
    const { text, signatures } = parseNote(C2SP_CHECKPOINT);
    expect(signatures.map((s) => s.name)).toEqual(["example.com/behind-the-sofa"]);
    const body = parseCheckpointBody(text);
    expect(body).toMatchObject({ origin: "example.com/behind-the-sofa", treeSize: 20852163, extensions: [] });
    expect(body.rootHash.toString("base64")).toBe("CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=");
    expect(formatCheckpointBody(body)).toBe(text);
    expect(parseCheckpointNote(C2SP_CHECKPOINT)).toMatchObject({
      origin: "example.com/behind-the-sofa",
      treeSize: 20852163,
      signers: ["example.com/behind-the-sofa"],
    });
  });

  it("refuses a size with a leading zero or not decimal, a root of the wrong length, an empty origin or extension line", () => {
    const root = Buffer.alloc(32, 7).toString("base64");
    for (const text of [`o\n012\n${root}\n`, `o\n1e3\n${root}\n`, `o\n-1\n${root}\n`, "o\n3\nAAAA\n", `\n3\n${root}\n`, `o\n3\n${root}\n\n`])
      expect(
        codeOf(() => parseCheckpointBody(text)),
        text,
      ).toBe("AUDITGRAPH_E_NOTE_MALFORMED");
    expect(parseCheckpointBody(`o\n0\n${root}\next one\n`)).toMatchObject({ treeSize: 0, extensions: ["ext one"] });
  });
});

describe("checkpoints carry their signed note", () => {
  const keys = generateSigningKey();
  const signer = new CheckpointSigner(keys.privateKeyPem, { origin: "example.com/auditgraph" });
  const unsigned = { streamId: "tenant-acme", treeSize: 42, rootHash: "ab".repeat(32), time: new Date().toISOString() };
  const checkpoint = signer.sign(unsigned);

  it("signs the JSON as before and the note, which standard tooling reads with the vkey", () => {
    expect(checkpoint.note).toBe(
      `example.com/auditgraph/tenant-acme\n42\n${Buffer.from(unsigned.rootHash, "hex").toString("base64")}\n\n— example.com/auditgraph ${checkpoint.note!.split(" ").at(-1)}`,
    );
    expect(verifyCheckpointSignature(checkpoint, keys.publicKeyPem)).toBe(true);
    expect(signer.verifierKey).toBe(verifierKey(keys.publicKeyPem, "example.com/auditgraph"));
    expect(signer.verifierKey).toMatch(/^example\.com\/auditgraph\+[0-9a-f]{8}\+[A-Za-z0-9+/]{44}$/);
    expect(openCheckpointNote(checkpoint.note!, signer.verifierKey)).toEqual({
      origin: "example.com/auditgraph/tenant-acme",
      treeSize: 42,
      rootHash: unsigned.rootHash,
      signers: ["example.com/auditgraph"],
    });
    expect(checkpointNote("example.com/auditgraph", checkpoint)).toBe(checkpoint.note!.slice(0, checkpoint.note!.lastIndexOf("\n\n") + 1));
  });

  it("defaults the origin to auditgraph", () => {
    const plain = new CheckpointSigner(keys.privateKeyPem);
    expect(plain.origin).toBe("auditgraph");
    expect(parseCheckpointNote(plain.sign(unsigned).note!)).toMatchObject({ origin: "auditgraph/tenant-acme", signers: ["auditgraph"] });
  });

  it("a checkpoint without a note (an old ledger's) verifies as before", () => {
    const { note: _note, ...old } = checkpoint;
    expect(verifyCheckpointSignature(old, keys.publicKeyPem)).toBe(true);
  });

  it("refuses a note whose text, signature or origin was tampered with", () => {
    const note = checkpoint.note!;
    const tamper = (next: string): Checkpoint => ({ ...checkpoint, note: next });
    expect(verifyCheckpointSignature(tamper(note.replace("\n42\n", "\n43\n")), keys.publicKeyPem)).toBe(false);
    const sig = note.split(" ").at(-1)!;
    const flipped = Buffer.from(sig, "base64");
    flipped[10]! ^= 1;
    expect(verifyCheckpointSignature(tamper(note.replace(sig, `${flipped.toString("base64")}\n`)), keys.publicKeyPem)).toBe(false);
    expect(
      verifyCheckpointSignature(tamper(note.replace("example.com/auditgraph/tenant-acme", "example.com/auditgraph/tenant-other")), keys.publicKeyPem),
    ).toBe(false);
    expect(verifyCheckpointSignature(tamper("not a note"), keys.publicKeyPem)).toBe(false);
    expect(codeOf(() => openCheckpointNote(note.replace("\n42\n", "\n43\n"), signer.verifierKey))).toBe("AUDITGRAPH_E_NOTE_UNVERIFIED");
  });

  it("refuses a note, rightly signed, that disagrees with the checkpoint's fields", () => {
    const privateKey = createPrivateKey(keys.privateKeyPem);
    const sign = (text: string) => signNote(text, { name: "example.com/auditgraph", privateKey });
    const other = { ...unsigned, rootHash: "cd".repeat(32) };
    const wrong = [
      sign(checkpointNote("example.com/auditgraph", { ...unsigned, treeSize: 41 })),
      sign(checkpointNote("example.com/auditgraph", other)),
      sign(checkpointNote("example.com/auditgraph", { ...unsigned, streamId: "tenant-other" })),
      // The same tree head, signed under another key name than its origin's log.
      signNote(checkpointNote("example.com/auditgraph", unsigned), { name: "someone-else", privateKey }),
    ];
    for (const note of wrong) expect(verifyCheckpointSignature({ ...checkpoint, note }, keys.publicKeyPem)).toBe(false);
    // Signed by another key: the JSON signature holds, the note's does not.
    const stranger = createPrivateKey(generateSigningKey().privateKeyPem);
    const foreign = signNote(checkpointNote("example.com/auditgraph", unsigned), { name: "example.com/auditgraph", privateKey: stranger });
    expect(verifyCheckpointSignature({ ...checkpoint, note: foreign }, keys.publicKeyPem)).toBe(false);
  });

  it("ignores a cosignature by an unknown key beside the log's own", () => {
    const witness = { name: "witness.example/w1", privateKey: createPrivateKey(generateSigningKey().privateKeyPem) };
    const text = checkpointNote("example.com/auditgraph", unsigned);
    const cosigned = signNote(text, { name: "example.com/auditgraph", privateKey: createPrivateKey(keys.privateKeyPem) }, witness);
    expect(verifyCheckpointSignature({ ...checkpoint, note: cosigned }, keys.publicKeyPem)).toBe(true);
    const opened = openNote(cosigned, [parseVerifierKey(signer.verifierKey)]);
    expect(opened.unverified.map((s) => s.name)).toEqual(["witness.example/w1"]);
  });

  it("refuses an origin with a space, a '+' or a non-printable character", () => {
    for (const origin of ["", "two words", "a+b", "tab\there", "é"])
      expect(
        codeOf(() => new CheckpointSigner(keys.privateKeyPem, { origin })),
        origin,
      ).toBe("AUDITGRAPH_E_CHECKPOINT_ORIGIN");
    expect(codeOf(() => verifierKey(keys.publicKeyPem, "a b"))).toBe("AUDITGRAPH_E_CHECKPOINT_ORIGIN");
  });
});
