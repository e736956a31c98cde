import { z } from "zod";
import { canonicalJson, parseWith, type AuditgraphError } from "@auditgraph/core";
import { CheckpointSchema, verifyCheckpointSignature, type Checkpoint } from "./checkpoint.js";
import { leafHash, verifyConsistency, verifyInclusion } from "./merkle.js";
import { LedgerErrorCodes, ledgerError } from "./errors.js";

const hashHex = z.string().regex(/^[0-9a-f]{64}$/);

/** `prove` of an event the ledger (or the stream asked for) does not hold. */
export const noEvent = (eventId: string): AuditgraphError => ledgerError(LedgerErrorCodes.noEvent, `no event ${eventId} in the ledger`);

/**
 * A record exactly as stored: its leaf is taken over its canonical JSON, so nothing may be added,
 * dropped or defaulted on the way in (a full event schema would strip what it does not know, and
 * would refuse records of an older schema version or sealed for a data subject).
 */
const StoredRecordSchema = z.looseObject({
  position: z.number().int().nonnegative(),
  streamId: z.string().min(1),
  hash: hashHex,
  event: z.looseObject({ eventId: z.string().min(1) }),
});

/** What `auditgraph prove` prints and `auditgraph verify-proof` checks. */
export const InclusionBundleSchema = z.object({
  record: StoredRecordSchema,
  leafIndex: z.number().int().nonnegative(),
  treeSize: z.number().int().positive(),
  /** The audit path, hex, bottom up (RFC 9162 2.1.3.1). */
  proof: z.array(hashHex),
  checkpoint: CheckpointSchema,
});
export type InclusionBundle = z.infer<typeof InclusionBundleSchema>;

/** What `auditgraph prove --from <size>` prints: a later signed tree head extends an earlier one. */
export const ConsistencyBundleSchema = z.object({
  from: CheckpointSchema,
  to: CheckpointSchema,
  /** RFC 9162 2.1.4.1, hex. */
  proof: z.array(hashHex),
});
export type ConsistencyBundle = z.infer<typeof ConsistencyBundleSchema>;

const signedBy = (checkpoint: Checkpoint, publicKeyPem: string, label: string) => {
  if (!verifyCheckpointSignature(checkpoint, publicKeyPem))
    throw ledgerError(LedgerErrorCodes.badSignature, `${label}'s signature does not verify with this public key`);
};

/**
 * Checks a bundle with nothing but the public key; throws saying what does not hold.
 * 1. the checkpoint's Ed25519 signature over its canonical JSON (all fields but `signature`);
 * 2. leaf = SHA-256(0x00 || canonical JSON of the record), the record being what `prove` printed;
 * 3. the audit path from that leaf, at `leafIndex` in a tree of `treeSize`, gives the checkpoint's root.
 */
export function verifyInclusionBundle(input: unknown, publicKeyPem: string): InclusionBundle {
  const bundle = parseWith(InclusionBundleSchema, input, "proof bundle");
  const { record, checkpoint } = bundle;
  if (record.streamId !== checkpoint.streamId)
    throw ledgerError(LedgerErrorCodes.proofMismatch, `the record is in stream ${record.streamId}, the checkpoint is for ${checkpoint.streamId}`);
  if (bundle.treeSize !== checkpoint.treeSize)
    throw ledgerError(LedgerErrorCodes.proofMismatch, `the proof is for size ${bundle.treeSize}, the checkpoint for ${checkpoint.treeSize}`);
  if (record.position !== bundle.leafIndex)
    throw ledgerError(LedgerErrorCodes.proofMismatch, `the record's position ${record.position} is not the leaf index ${bundle.leafIndex}`);
  signedBy(checkpoint, publicKeyPem, "the checkpoint");
  verifyInclusion(
    leafHash(canonicalJson(record)),
    bundle.leafIndex,
    bundle.treeSize,
    bundle.proof.map((h) => Buffer.from(h, "hex")),
    Buffer.from(checkpoint.rootHash, "hex"),
  );
  return bundle;
}

/**
 * Checks a consistency bundle with nothing but the public key: both checkpoints are signed by
 * it, are of one stream, and the proof takes the earlier root to the later (RFC 9162 2.1.4.2).
 */
export function verifyConsistencyBundle(input: unknown, publicKeyPem: string): ConsistencyBundle {
  const bundle = parseWith(ConsistencyBundleSchema, input, "consistency bundle");
  const { from, to } = bundle;
  if (from.streamId !== to.streamId) throw ledgerError(LedgerErrorCodes.proofMismatch, `the checkpoints are of streams ${from.streamId} and ${to.streamId}`);
  signedBy(from, publicKeyPem, "the earlier checkpoint");
  signedBy(to, publicKeyPem, "the later checkpoint");
  verifyConsistency(
    from.treeSize,
    to.treeSize,
    bundle.proof.map((h) => Buffer.from(h, "hex")),
    Buffer.from(from.rootHash, "hex"),
    Buffer.from(to.rootHash, "hex"),
  );
  return bundle;
}
