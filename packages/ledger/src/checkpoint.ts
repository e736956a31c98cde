import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from "node:crypto";
import { z } from "zod";
import { canonicalJson } from "@auditgraph/core";
import { LedgerErrorCodes, ledgerError } from "./errors.js";

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
  /** Ed25519 over the canonical JSON of every other field, base64. */
  signature: z.string().min(1),
});
export type Checkpoint = z.infer<typeof CheckpointSchema>;
export type UnsignedCheckpoint = Omit<Checkpoint, "signature" | "keyId">;

/** The exact bytes a checkpoint's signature covers. */
export const checkpointBody = (c: Omit<Checkpoint, "signature">): Buffer =>
  Buffer.from(canonicalJson({ streamId: c.streamId, treeSize: c.treeSize, rootHash: c.rootHash, time: c.time, keyId: c.keyId }), "utf8");

const keyIdOf = (publicKey: KeyObject): string =>
  createHash("sha256")
    .update(publicKey.export({ type: "spki", format: "der" }))
    .digest("hex")
    .slice(0, 16);

export class CheckpointSigner {
  readonly keyId: string;
  readonly publicKeyPem: string;
  private readonly key: KeyObject;

  constructor(privateKeyPem: string) {
    this.key = createPrivateKey(privateKeyPem);
    if (this.key.asymmetricKeyType !== "ed25519")
      throw ledgerError(LedgerErrorCodes.signingKey, `the checkpoint signing key must be Ed25519, not ${this.key.asymmetricKeyType}`);
    const publicKey = createPublicKey(this.key);
    this.keyId = keyIdOf(publicKey);
    this.publicKeyPem = publicKey.export({ type: "spki", format: "pem" }).toString();
  }

  sign(unsigned: UnsignedCheckpoint): Checkpoint {
    const withKey = { ...unsigned, keyId: this.keyId };
    return { ...withKey, signature: sign(null, checkpointBody(withKey), this.key).toString("base64") };
  }
}

/** Checks a checkpoint's signature with nothing but the public key (PEM). */
export function verifyCheckpointSignature(checkpoint: Checkpoint, publicKeyPem: string): boolean {
  const publicKey = createPublicKey(publicKeyPem);
  if (keyIdOf(publicKey) !== checkpoint.keyId) return false;
  return verify(null, checkpointBody(checkpoint), publicKey, Buffer.from(checkpoint.signature, "base64"));
}

/** A new Ed25519 key pair, as PEM (PKCS#8 private, SPKI public). */
export function generateSigningKey(): { privateKeyPem: string; publicKeyPem: string } {
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  return {
    privateKeyPem: privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
    publicKeyPem: publicKey.export({ type: "spki", format: "pem" }).toString(),
  };
}
