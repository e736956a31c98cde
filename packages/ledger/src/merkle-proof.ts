/**
 * RFC 9162 2.1.3 and 2.1.4: inclusion and consistency proofs, made and verified. The verifiers
 * are the RFC's iterative algorithms; see merkle-tree.ts for the edge cases and the caveat that
 * a proof binds a leaf to a root, not to a tree size.
 */
import { MerkleProofError, MerkleRangeError } from "./errors.js";
import { type CompactTree, checkHash, checkTreeSize, half, hex, isCount, largestPowerOfTwoBelow, nodeHash, rangeRoot } from "./merkle-tree.js";

/**
 * RFC 9162 2.1.3.1: PATH(m, D[n]) for m = index, n = size, over the first
 * `size` of `leafHashes`, ordered from the leaf's sibling up to the root's child.
 *
 * Costs about size - log2(size) node hashes: each sibling is the MTH of a
 * range nobody has hashed yet, and the siblings together cover every leaf but
 * one. No cheaper method exists without stored interior nodes.
 */
export function inclusionProof(leafHashes: readonly Uint8Array[] | SubtreeSource, index: number, size: number): Buffer[] {
  const subtree = subtreeRoots(leafHashes, size, "inclusionProof");
  if (!isCount(index) || index >= size) {
    throw new MerkleRangeError(`inclusionProof: index ${index} is out of range for tree size ${size}`);
  }
  // Walk down from the root: PATH(m, D[n]) = PATH(m, D[0:k]) : MTH(D[k:n]) or
  // PATH(m - k, D[k:n]) : MTH(D[0:k]); the outermost element comes last.
  const proof: Buffer[] = [];
  let start = 0;
  let end = size;
  while (end - start > 1) {
    const split = start + largestPowerOfTwoBelow(end - start);
    if (index < split) {
      proof.push(subtree(split, end));
      end = split;
    } else {
      proof.push(subtree(start, split));
      start = split;
    }
  }
  return proof.reverse();
}

/**
 * RFC 9162 2.1.3.2: the root implied by `proof` for the leaf at `index` in a
 * tree of `size` leaves. Every proof element is hashed into the result, and
 * the length must be exactly what the algorithm consumes, so nothing in the
 * proof goes unchecked once the caller compares the result with a root.
 */
export function rootFromInclusionProof(leaf: Uint8Array, index: number, size: number, proof: readonly Uint8Array[]): Buffer {
  if (!isCount(index) || !isCount(size)) {
    throw new MerkleProofError(`inclusion proof: index ${index} and size ${size} must be non-negative safe integers`);
  }
  if (size === 0) throw new MerkleProofError("inclusion proof: a tree of size 0 has no leaves");
  if (index >= size) throw new MerkleProofError(`inclusion proof: index ${index} is beyond tree size ${size}`);
  checkHash(leaf, "inclusion proof: leaf hash", MerkleProofError);
  const want = rfcSteps(index, size - 1);
  if (proof.length !== want) {
    throw new MerkleProofError(`inclusion proof: wrong length ${proof.length}, want ${want} for index ${index} in size ${size}`);
  }
  checkProofElements(proof, "inclusion proof");

  let fn = index;
  let sn = size - 1;
  let r: Uint8Array = leaf;
  // With the length fixed above, the RFC's "sn is 0" failure inside the loop
  // and its final "sn == 0" check can no longer trigger.
  for (const p of proof) {
    if (fn % 2 === 1 || fn === sn) {
      r = nodeHash(p, r);
      while (fn % 2 === 0 && fn !== 0) {
        fn = half(fn);
        sn = half(sn);
      }
    } else {
      r = nodeHash(r, p);
    }
    fn = half(fn);
    sn = half(sn);
  }
  return Buffer.from(r);
}

/** RFC 9162 2.1.3.2; throws MerkleProofError unless `proof` proves the leaf at `index` under `root`. */
export function verifyInclusion(leaf: Uint8Array, index: number, size: number, proof: readonly Uint8Array[], root: Uint8Array): void {
  const computed = rootFromInclusionProof(leaf, index, size, proof);
  if (!computed.equals(root)) {
    throw new MerkleProofError(`inclusion proof: root mismatch: computed ${hex(computed)}, expected ${hex(root)}`);
  }
}

/**
 * RFC 9162 2.1.4.1: PROOF(size1, D[size2]) = SUBPROOF(size1, D[size2], true)
 * over the first `size2` of `leafHashes`. Requires 0 < size1 <= size2, as
 * transparency-dev/merkle's proof.Consistency does; size1 == size2 gives [].
 * Cost is O(size2) node hashes, for the same reason as inclusionProof.
 */
export function consistencyProof(leafHashes: readonly Uint8Array[] | SubtreeSource, size1: number, size2: number): Buffer[] {
  const subtree = subtreeRoots(leafHashes, size2, "consistencyProof");
  if (!isCount(size1) || size1 === 0 || size1 > size2) {
    throw new MerkleRangeError(`consistencyProof: size1 ${size1} must satisfy 0 < size1 <= size2 (${size2})`);
  }
  // SUBPROOF(m, D[start:end], complete), walked from the root down; the
  // outermost element comes last. `complete` is the RFC's b flag: true while
  // D[start:start+m] is the whole old tree, whose root the verifier already has.
  const proof: Buffer[] = [];
  let start = 0;
  let end = size2;
  let m = size1;
  let complete = true;
  for (;;) {
    const n = end - start;
    if (m === n) {
      if (!complete) proof.push(subtree(start, end));
      break;
    }
    const k = largestPowerOfTwoBelow(n);
    if (m <= k) {
      proof.push(subtree(start + k, end));
      end = start + k;
    } else {
      proof.push(subtree(start, start + k));
      start += k;
      m -= k;
      complete = false;
    }
  }
  return proof.reverse();
}

/**
 * RFC 9162 2.1.4.2; throws MerkleProofError unless `proof` shows that the
 * tree of `size2` leaves with root `root2` extends the one of `size1` leaves
 * with root `root1`. Every proof element feeds the new root, and the old root
 * is rebuilt from the same elements, so no element goes unchecked.
 *
 * Edge cases, as in transparency-dev/merkle's proof.VerifyConsistency:
 * size1 > size2 fails; size1 == 0 fails whatever the proof (upstream made this
 * an error in 2024 because "every tree extends the empty tree" would let an
 * empty proof vouch for any root2); size1 == size2 needs an empty proof and
 * root1 equal to root2.
 */
export function verifyConsistency(size1: number, size2: number, proof: readonly Uint8Array[], root1: Uint8Array, root2: Uint8Array): void {
  if (!isCount(size1) || !isCount(size2)) {
    throw new MerkleProofError(`consistency proof: sizes ${size1} and ${size2} must be non-negative safe integers`);
  }
  if (size1 > size2) throw new MerkleProofError(`consistency proof: size1 ${size1} is greater than size2 ${size2}`);
  if (size1 === 0) {
    throw new MerkleProofError("consistency proof: size1 is 0; consistency with the empty tree cannot be proven");
  }
  if (size1 === size2) {
    if (proof.length !== 0) {
      throw new MerkleProofError(`consistency proof: wrong length ${proof.length}, want 0 when size1 equals size2`);
    }
    if (!Buffer.from(root1).equals(root2)) {
      throw new MerkleProofError(`consistency proof: root mismatch: equal sizes ${size1} but root1 ${hex(root1)} differs from root2 ${hex(root2)}`);
    }
    return;
  }
  if (proof.length === 0) throw new MerkleProofError("consistency proof: empty proof for different sizes");

  // RFC step: drop the levels where the old tree's last leaf is a right child;
  // those nodes lie inside the old tree and are not part of the proof.
  let fn = size1 - 1;
  let sn = size2 - 1;
  while (fn % 2 === 1) {
    fn = half(fn);
    sn = half(sn);
  }
  // fn == 0 now exactly when size1 is a power of two: the old tree is one
  // perfect subtree, so the RFC prepends root1 instead of sending it.
  const oldIsPerfect = fn === 0;
  const want = rfcSteps(fn, sn) + (oldIsPerfect ? 0 : 1);
  if (proof.length !== want) {
    throw new MerkleProofError(`consistency proof: wrong length ${proof.length}, want ${want} for sizes ${size1} -> ${size2}`);
  }
  checkProofElements(proof, "consistency proof");
  if (oldIsPerfect) checkHash(root1, "consistency proof: root1", MerkleProofError);

  const seed: Uint8Array = oldIsPerfect ? root1 : proof[0]!;
  let fr: Uint8Array = seed;
  let sr: Uint8Array = seed;
  for (let i = oldIsPerfect ? 0 : 1; i < proof.length; i++) {
    const c = proof[i]!;
    if (fn % 2 === 1 || fn === sn) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      while (fn % 2 === 0 && fn !== 0) {
        fn = half(fn);
        sn = half(sn);
      }
    } else {
      sr = nodeHash(sr, c);
    }
    fn = half(fn);
    sn = half(sn);
  }
  if (!Buffer.from(fr).equals(root1)) {
    throw new MerkleProofError(`consistency proof: root1 mismatch: computed ${hex(fr)}, expected ${hex(root1)}`);
  }
  if (!Buffer.from(sr).equals(root2)) {
    throw new MerkleProofError(`consistency proof: root2 mismatch: computed ${hex(sr)}, expected ${hex(root2)}`);
  }
}

/**
 * Where a proof's nodes come from when the leaves are not all at hand: MTH(D[start:end]) for the
 * ranges the RFC's algorithms ask for, in a tree of at least `size` leaves.
 */
export interface SubtreeSource {
  size: number;
  root(start: number, end: number): Buffer;
}

function subtreeRoots(source: readonly Uint8Array[] | SubtreeSource, size: number, fn: string): (start: number, end: number) => Buffer {
  if ("root" in source) {
    if (!isCount(size) || size > source.size) throw new MerkleRangeError(`${fn}: size ${size} is beyond the ${source.size} leaves known`);
    return (start, end) => source.root(start, end);
  }
  checkTreeSize(source, size, fn);
  return (start, end) => rangeRoot(source, start, end);
}

/**
 * The nodes of a tree whose first `prefix.size` leaves are gone (expired), known only by the
 * frontier they left, followed by `leaves`. Every node an inclusion or consistency proof asks
 * for is either made of later leaves, or is a frontier subtree or a run of them: the tree's
 * perfect subtrees are aligned, so none inside the prefix is smaller than the one holding it.
 */
export function subtreesAfter(prefix: CompactTree, leaves: readonly Uint8Array[]): SubtreeSource {
  const blocks: { start: number; end: number; root: Buffer }[] = [];
  let at = 0;
  for (const root of prefix.frontier()) {
    // Frontier subtrees are the set bits of the size, largest first.
    const width = 2 ** Math.floor(Math.log2(prefix.size - at));
    blocks.push({ start: at, end: at + width, root });
    at += width;
  }
  const size = prefix.size + leaves.length;
  const root = (start: number, end: number): Buffer => {
    if (start >= prefix.size) return rangeRoot(leaves, start - prefix.size, end - prefix.size);
    const n = end - start;
    if (n === 1 || end <= prefix.size) {
      const run = blocks.filter((b) => b.start >= start && b.end <= end);
      if (run[0]?.start !== start || run.at(-1)?.end !== end) {
        throw new MerkleRangeError(`the leaves of [${start}, ${end}) have expired and that range is no run of frontier subtrees`);
      }
      return run.slice(0, -1).reduceRight((right, b) => nodeHash(b.root, right), run.at(-1)!.root);
    }
    const split = start + largestPowerOfTwoBelow(n);
    return nodeHash(root(start, split), root(split, end));
  };
  return { size, root };
}

// The number of proof elements the RFC 9162 2.1.3.2 / 2.1.4.2 loop consumes
// before sn reaches 0, found by running the loop without hashing. Checking
// the length up front turns the RFC's in-loop failures into one clear error.
function rfcSteps(fn: number, sn: number): number {
  let steps = 0;
  while (sn !== 0) {
    if (fn === sn) {
      while (fn % 2 === 0 && fn !== 0) {
        fn = half(fn);
        sn = half(sn);
      }
    }
    fn = half(fn);
    sn = half(sn);
    steps++;
  }
  return steps;
}

function checkProofElements(proof: readonly Uint8Array[], what: string): void {
  for (let i = 0; i < proof.length; i++) checkHash(proof[i]!, `${what}: element ${i}`, MerkleProofError);
}
