/** RFC 9162 Merkle trees: the tree and its hashes (merkle-tree.ts), and proofs over it (merkle-proof.ts). */
export { HASH_SIZE, leafHash, scratch, nodeHash, CompactTree, rootOf } from "./merkle-tree.js";
export {
  inclusionProof,
  rootFromInclusionProof,
  verifyInclusion,
  consistencyProof,
  verifyConsistency,
  subtreesAfter,
  type SubtreeSource,
} from "./merkle-proof.js";
export { MerkleProofError } from "./errors.js";
