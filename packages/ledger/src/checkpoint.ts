import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from "node:crypto";
import { z } from "zod";
import { canonicalJson } from "@auditgraph/core";
import { LedgerErrorCodes, ledgerError } from "./errors.js";
import { encodeVerifierKey, formatCheckpointBody, noteVerifier, openNote, parseCheckpointBody, parseNote, parseVerifierKey, signNote } from "./signed-note.js";

const hex64 = z.string().regex(/^[0-9a-f]{64}$/);

/**
 * A signed tree head: the Merkle root of the first `treeSize` records of a stream. Anyone with
 * the public key can check it, and a later checkpoint must extend it.
 */
export const CheckpointSchema = z.object({
  streamId: z.string().min(1),
  treeSize: z.number().int().nonnegative(),
  rootHash: hex64,
  time: z.iso.datetime({ offset: true }),
  /** First 16 hex of SHA-256 over the signer's public key (SPKI DER). */
  keyId: z.string().regex(/^[0-9a-f]{16}$/),
  /** Ed25519 over the canonical JSON of every other field but `note`, base64. */
  signature: z.string().min(1),
  /**
   * The same tree head as a C2SP signed note (tlog-checkpoint body, origin `<log origin>/<streamId>`,
   * signed by the same key under the name `<log origin>`), for standard tooling. Absent from
   * checkpoints made before notes were (old ledgers), which verify by their JSON signature alone.
   */
  note: z.string().min(1).optional(),
});
export type Checkpoint = z.infer<typeof CheckpointSchema>;
export type UnsignedCheckpoint = Omit<Checkpoint, "signature" | "keyId" | "note">;

/** The log origin when none is configured: the key name of the notes, and the first part of each stream's origin line. */
export const DEFAULT_LOG_ORIGIN = "auditgraph";

/** A log origin: printable ASCII with no space and no '+' (a note key name may hold neither). */
export const LOG_ORIGIN_PATTERN = /^[!-*,-~]+$/;

/** The exact bytes a checkpoint's signature covers. */
export const checkpointBody = (c: Omit<Checkpoint, "signature">): Buffer =>
  Buffer.from(canonicalJson({ streamId: c.streamId, treeSize: c.treeSize, rootHash: c.rootHash, time: c.time, keyId: c.keyId }), "utf8");

const keyIdOf = (publicKey: KeyObject): string =>
  createHash("sha256")
    .update(publicKey.export({ type: "spki", format: "der" }))
    .digest("hex")
    .slice(0, 16);

function checkOrigin(origin: string): string {
  if (!LOG_ORIGIN_PATTERN.test(origin))
    throw ledgerError(LedgerErrorCodes.checkpointOrigin, `log origin ${JSON.stringify(origin)} must be printable ASCII with no space and no '+'`);
  return origin;
}

/** A stream's origin line: one origin per stream, as a tlog-checkpoint origin names one log. */
const streamOrigin = (origin: string, streamId: string) => `${origin}/${streamId}`;

/** The tlog-checkpoint note text of a stream's tree head (unsigned): `<origin>/<streamId>`, size, base64 root. */
export function checkpointNote(origin: string, checkpoint: Pick<Checkpoint, "streamId" | "treeSize" | "rootHash">): string {
  return formatCheckpointBody({
    origin: streamOrigin(checkOrigin(origin), checkpoint.streamId),
    treeSize: checkpoint.treeSize,
    rootHash: Buffer.from(checkpoint.rootHash, "hex"),
  });
}

/** The note verifier key (C2SP vkey text) of a signer's public key (PEM) under a log origin. */
export function verifierKey(publicKeyPem: string, origin: string = DEFAULT_LOG_ORIGIN): string {
  return encodeVerifierKey({ name: checkOrigin(origin), publicKey: createPublicKey(publicKeyPem) });
}

/** What a checkpoint note says (not yet verified: `openCheckpointNote` verifies), the root hash in hex. */
export interface CheckpointNote {
  origin: string;
  treeSize: number;
  rootHash: string;
  /** The key names of the note's signature lines. */
  signers: string[];
}

/** Reads a signed checkpoint note without checking its signatures. */
export function parseCheckpointNote(note: string): CheckpointNote {
  const { text, signatures } = parseNote(note);
  const body = parseCheckpointBody(text);
  return { origin: body.origin, treeSize: body.treeSize, rootHash: body.rootHash.toString("hex"), signers: signatures.map((s) => s.name) };
}

/** Verifies a signed checkpoint note with a verifier key (vkey text) and reads it; throws if no signature of that key verifies. */
export function openCheckpointNote(note: string, vkey: string): CheckpointNote {
  const { text, signatures } = openNote(note, [parseVerifierKey(vkey)]);
  const body = parseCheckpointBody(text);
  return { origin: body.origin, treeSize: body.treeSize, rootHash: body.rootHash.toString("hex"), signers: signatures.map((s) => s.name) };
}

export class CheckpointSigner {
  readonly keyId: string;
  readonly publicKeyPem: string;
  /** The log origin: the name the notes are signed under, and the first part of each stream's origin line. */
  readonly origin: string;
  private readonly key: KeyObject;

  constructor(privateKeyPem: string, options: { origin?: string | undefined } = {}) {
    this.key = createPrivateKey(privateKeyPem);
    if (this.key.asymmetricKeyType !== "ed25519")
      throw ledgerError(LedgerErrorCodes.signingKey, `the checkpoint signing key must be Ed25519, not ${this.key.asymmetricKeyType}`);
    this.origin = checkOrigin(options.origin ?? DEFAULT_LOG_ORIGIN);
    const publicKey = createPublicKey(this.key);
    this.keyId = keyIdOf(publicKey);
    this.publicKeyPem = publicKey.export({ type: "spki", format: "pem" }).toString();
  }

  /** The note verifier key of this signer (C2SP vkey text). */
  get verifierKey(): string {
    return verifierKey(this.publicKeyPem, this.origin);
  }

  /** Signs the JSON body as ever (old verifiers keep working) and the same tree head as a signed note. */
  sign(unsigned: UnsignedCheckpoint): Checkpoint {
    const withKey = { ...unsigned, keyId: this.keyId };
    const signature = sign(null, checkpointBody(withKey), this.key).toString("base64");
    const note = signNote(checkpointNote(this.origin, unsigned), { name: this.origin, privateKey: this.key });
    return { ...withKey, signature, note };
  }
}

/**
 * Whether a checkpoint's note is signed by `publicKey` and says what the checkpoint's fields do.
 * The key name is the log origin, which the verifier reads off the origin line (`<origin>/<streamId>`),
 * so checking needs no setting; the signature must be that key's under that name.
 */
function noteAgrees(checkpoint: Checkpoint, note: string, publicKey: KeyObject): boolean {
  try {
    const claimed = parseCheckpointNote(note);
    const suffix = `/${checkpoint.streamId}`;
    if (!claimed.origin.endsWith(suffix)) return false;
    const name = claimed.origin.slice(0, -suffix.length);
    if (!LOG_ORIGIN_PATTERN.test(name)) return false;
    const body = parseCheckpointBody(openNote(note, [noteVerifier(name, publicKey)]).text);
    return body.treeSize === checkpoint.treeSize && body.rootHash.toString("hex") === checkpoint.rootHash;
  } catch {
    return false;
  }
}

/**
 * Checks a checkpoint's signature with nothing but the public key (PEM): the JSON signature, and
 * the note's too when it has one (a note that disagrees with the fields is a bad signature).
 * A checkpoint without a note (an old ledger's) is checked by its JSON signature alone.
 */
export function verifyCheckpointSignature(checkpoint: Checkpoint, publicKeyPem: string): boolean {
  const publicKey = createPublicKey(publicKeyPem);
  if (keyIdOf(publicKey) !== checkpoint.keyId) return false;
  if (!verify(null, checkpointBody(checkpoint), publicKey, Buffer.from(checkpoint.signature, "base64"))) return false;
  return checkpoint.note === undefined || noteAgrees(checkpoint, checkpoint.note, publicKey);
}

/** A new Ed25519 key pair, as PEM (PKCS#8 private, SPKI public). */
export function generateSigningKey(): { privateKeyPem: string; publicKeyPem: string } {
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  return {
    privateKeyPem: privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
    publicKeyPem: publicKey.export({ type: "spki", format: "pem" }).toString(),
  };
}
