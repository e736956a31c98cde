import { z } from "zod";
import { LedgerRecordSchema, canonicalJson, parseWith } from "@auditgraph/core";
import { CheckpointSchema, verifyCheckpointSignature } from "./checkpoint.js";
import { leafHash, verifyInclusion } from "./merkle.js";

/** What `auditgraph prove` prints and `auditgraph verify-proof` checks. */
export const InclusionBundleSchema = z.object({
  record: LedgerRecordSchema,
  leafIndex: z.number().int().nonnegative(),
  treeSize: z.number().int().positive(),
  /** The audit path, hex, bottom up (RFC 9162 2.1.3.1). */
  proof: z.array(z.string().regex(/^[0-9a-f]{64}$/)),
  checkpoint: CheckpointSchema,
});
export type InclusionBundle = z.infer<typeof InclusionBundleSchema>;

/**
 * Checks a bundle with nothing but the public key; throws saying what does not hold.
 * 1. the checkpoint's Ed25519 signature over its canonical JSON (all fields but `signature`);
 * 2. leaf = SHA-256(0x00 || canonical JSON of the record), the record being what `prove` printed;
 * 3. the audit path from that leaf, at `leafIndex` in a tree of `treeSize`, gives the checkpoint's root.
 */
export function verifyInclusionBundle(input: unknown, publicKeyPem: string): InclusionBundle {
  const bundle = parseWith(InclusionBundleSchema, input, "proof bundle");
  const { record, checkpoint } = bundle;
  if (record.streamId !== checkpoint.streamId) throw new Error(`the record is in stream ${record.streamId}, the checkpoint is for ${checkpoint.streamId}`);
  if (bundle.treeSize !== checkpoint.treeSize) throw new Error(`the proof is for size ${bundle.treeSize}, the checkpoint for ${checkpoint.treeSize}`);
  if (record.position !== bundle.leafIndex) throw new Error(`the record's position ${record.position} is not the leaf index ${bundle.leafIndex}`);
  if (!verifyCheckpointSignature(checkpoint, publicKeyPem)) throw new Error("the checkpoint's signature does not verify with this public key");
  verifyInclusion(
    leafHash(canonicalJson(record)),
    bundle.leafIndex,
    bundle.treeSize,
    bundle.proof.map((h) => Buffer.from(h, "hex")),
    Buffer.from(checkpoint.rootHash, "hex"),
  );
  return bundle;
}
