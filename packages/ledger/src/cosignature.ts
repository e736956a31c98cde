import { createHash, createPrivateKey, createPublicKey, sign, verify, type KeyObject } from "node:crypto";
import { AuditgraphError } from "@auditgraph/core";
import { decodeBase64, formatNote, isValidKeyName, parseNote, rawEd25519PublicKey, type NoteSignature } from "./signed-note.js";

/**
 * C2SP tlog-cosignature (https://c2sp.org/tlog-cosignature), the Ed25519 `cosignature/v1` kind:
 * a witness's note signature over a checkpoint it checked was consistent with every earlier one
 * it saw of that log. It differs from a log's signature in three ways: the key id's type byte is
 * 0x04 (so a cosigner key can never pass for a log key), the signature is a timestamp (8 bytes,
 * big-endian) then the Ed25519 signature, and the signed message is `cosignature/v1\n`,
 * `time <t>\n`, then the checkpoint's text.
 */

/** The signature type byte of Ed25519 cosignature/v1 keys (key ids and vkeys). */
export const COSIGNATURE_V1_TYPE = 0x04;

export const CosignatureErrorCodes = {
  /** A cosigner (witness) verifier key, name or private key is not what cosignature/v1 needs. */
  cosignerKey: "AUDITGRAPH_E_COSIGNER_KEY",
} as const;

const keyError = (message: string) => new AuditgraphError(CosignatureErrorCodes.cosignerKey, message);

/** A cosigner: its name (a schema-less URL, by the spec's advice) and Ed25519 public key. */
export interface Cosigner {
  name: string;
  keyId: number;
  publicKey: KeyObject;
}

/** SHA-256(name || "\n" || 0x04 || 32-byte public key)[:4], big-endian. */
export function cosignerKeyId(name: string, rawPublicKey: Buffer): number {
  return createHash("sha256")
    .update(name, "utf8")
    .update(Buffer.from([0x0a, COSIGNATURE_V1_TYPE]))
    .update(rawPublicKey)
    .digest()
    .readUInt32BE(0);
}

const hex8 = (keyId: number) => keyId.toString(16).padStart(8, "0");

/** The cosigner of a public key (or of the public half of a private key) under a name. */
export function cosigner(name: string, key: KeyObject): Cosigner {
  if (!isValidKeyName(name)) throw keyError(`witness name ${JSON.stringify(name)} is empty or has a space or '+'`);
  const publicKey = key.type === "private" ? createPublicKey(key) : key;
  if (publicKey.asymmetricKeyType !== "ed25519") throw keyError(`a witness key must be Ed25519, not ${publicKey.asymmetricKeyType}`);
  return { name, keyId: cosignerKeyId(name, rawEd25519PublicKey(publicKey)), publicKey };
}

/** The cosigner's verifier key text: `<name>+<8 hex key id>+<base64(0x04 || 32-byte key)>`. */
export function encodeCosignerKey(c: Pick<Cosigner, "name" | "publicKey">): string {
  const raw = rawEd25519PublicKey(c.publicKey);
  return `${c.name}+${hex8(cosignerKeyId(c.name, raw))}+${Buffer.concat([Buffer.from([COSIGNATURE_V1_TYPE]), raw]).toString("base64")}`;
}

/** Reads a cosigner verifier key; refuses another type than 0x04, or a key id not that of its name and key. */
export function parseCosignerKey(vkey: string): Cosigner {
  const [name = "", id = "", ...rest] = vkey.trim().split("+");
  const key = decodeBase64(rest.join("+"));
  if (!isValidKeyName(name) || !/^[0-9a-f]{8}$/.test(id) || !key) throw keyError("a witness verifier key is <name>+<8 hex key id>+<base64 key>");
  if (key[0] !== COSIGNATURE_V1_TYPE || key.length !== 33)
    throw keyError(`${name}'s verifier key is not an Ed25519 cosignature/v1 key (type 0x04, 32 bytes)${key[0] === 0x01 ? ": it is a log key" : ""}`);
  const raw = key.subarray(1);
  if (cosignerKeyId(name, raw) !== Number.parseInt(id, 16)) throw keyError(`the verifier key's id ${id} is not that of its name and key`);
  const publicKey = createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: raw.toString("base64url") }, format: "jwk" });
  return { name, keyId: Number.parseInt(id, 16), publicKey };
}

/** The signed message: `cosignature/v1\ntime <t>\n` then the checkpoint's text (final newline included). */
export function cosignatureMessage(text: string, timestamp: number): Buffer {
  return Buffer.from(`cosignature/v1\ntime ${timestamp}\n${text}`, "utf8");
}

/** A cosignature line's signature over `text` at `timestamp` (POSIX seconds, above 0). */
export function cosign(text: string, signer: { name: string; privateKey: KeyObject | string }, timestamp: number): NoteSignature {
  const privateKey = typeof signer.privateKey === "string" ? createPrivateKey(signer.privateKey) : signer.privateKey;
  if (!Number.isSafeInteger(timestamp) || timestamp < 1) throw keyError(`a cosignature's timestamp is a whole number of seconds above 0, not ${timestamp}`);
  const { name, keyId } = cosigner(signer.name, privateKey);
  const time = Buffer.alloc(8);
  time.writeBigUInt64BE(BigInt(timestamp));
  return { name, keyId, signature: Buffer.concat([time, sign(null, cosignatureMessage(text, timestamp), privateKey)]) };
}

/** The timestamp of a cosignature that verifies over `text` by `c`, else undefined (another key's, or bad). */
export function verifyCosignature(text: string, s: NoteSignature, c: Cosigner): number | undefined {
  if (s.name !== c.name || s.keyId !== c.keyId || s.signature.length !== 8 + 64) return undefined;
  const time = s.signature.readBigUInt64BE(0);
  if (time === 0n || time > BigInt(Number.MAX_SAFE_INTEGER)) return undefined;
  const timestamp = Number(time);
  return verify(null, cosignatureMessage(text, timestamp), c.publicKey, s.signature.subarray(8)) ? timestamp : undefined;
}

/** Which of the cosigners asked for a note carries a good cosignature of (and when), and which not. */
export interface CosignatureCheck {
  cosignedBy: { name: string; time: number }[];
  /** Listed cosigners with no cosignature, or only one that does not verify. */
  missing: string[];
}

/**
 * Checks a signed note's cosignatures against the listed cosigners: a line by a key not listed is
 * ignored, and a listed key's line that does not verify counts as no cosignature by it.
 */
export function checkCosignatures(note: string, cosigners: Cosigner[]): CosignatureCheck {
  const { text, signatures } = parseNote(note);
  const cosignedBy: CosignatureCheck["cosignedBy"] = [];
  const missing: string[] = [];
  for (const c of cosigners) {
    const times = signatures.map((s) => verifyCosignature(text, s, c)).filter((t): t is number => t !== undefined);
    if (times.length > 0) cosignedBy.push({ name: c.name, time: Math.max(...times) });
    else missing.push(c.name);
  }
  return { cosignedBy, missing };
}

/**
 * The note with `added` signature lines after its own, one line per key (name and key id): a
 * later line of a key replaces an earlier one, so a witness's newer cosignature takes the place
 * of its older one instead of piling up.
 */
export function addSignatures(note: string, added: NoteSignature[]): string {
  const { text, signatures } = parseNote(note);
  const merged: NoteSignature[] = [];
  for (const s of [...signatures, ...added]) {
    const at = merged.findIndex((m) => m.name === s.name && m.keyId === s.keyId);
    if (at >= 0) merged[at] = s;
    else merged.push(s);
  }
  return formatNote({ text, signatures: merged });
}
