/**
 * RFC 9162 (Certificate Transparency 2.0) Merkle trees, section 2.1, with
 * SHA-256. Pure functions over arrays of 32-byte leaf hashes plus a compact
 * incremental tree; no state is shared between calls.
 *
 * The verifiers are the iterative algorithms of RFC 9162 2.1.3.2 and 2.1.4.2.
 * Edge cases that the RFC leaves open follow transparency-dev/merkle's
 * `proof` package (the Go reference used by CT and Trillian), which also
 * publishes the test vectors this module was checked against.
 *
 * A proof binds a leaf (or an old root) to a root, not to a tree size: a few
 * (index, size) pairs share a proof shape, so a proof that verifies with a
 * wrong size is possible. Callers must take size and root together from one
 * trusted checkpoint.
 */
import { createHash, hash } from "node:crypto";

/** Length in bytes of every hash in the tree (SHA-256). */
export const HASH_SIZE = 32;

// RFC 9162 2.1.1 domain separation: a leaf hash can never be confused with an
// interior node hash, which is what makes second-preimage attacks fail.

/** Thrown by the verifiers whenever a proof does not prove what is claimed. */
export class MerkleProofError extends Error {
  override readonly name = "MerkleProofError";
}

/**
 * RFC 9162 2.1.1: MTH({d(0)}) = SHA-256(0x00 || d(0)).
 * Strings are hashed as UTF-8; well-formed text (e.g. JSON.stringify output,
 * which escapes lone surrogates) is the only kind that encodes losslessly.
 */
export function leafHash(data: Uint8Array | string): Buffer {
  // One-shot hashing is about a third faster than a Hash object for records of a few KB, and
  // U+0000 is the single byte 0x00 in UTF-8.
  if (typeof data === "string") return hash("sha256", `\u0000${data}`, "buffer");
  const bytes = scratch(1 + data.length);
  bytes[0] = 0x00;
  bytes.set(data, 1);
  return hash("sha256", bytes, "buffer");
}

let scratchBytes = Buffer.allocUnsafe(64 * 1024);

/**
 * A reused buffer of exactly `length` bytes (valid until the next call): one-shot hashing needs
 * its input in one piece, and copying a record into it is cheaper than a Hash object's updates.
 */
export function scratch(length: number): Buffer {
  if (scratchBytes.length < length) scratchBytes = Buffer.allocUnsafe(Math.max(length, 2 * scratchBytes.length));
  return scratchBytes.subarray(0, length);
}

/**
 * RFC 9162 2.1.1: SHA-256(0x01 || left || right). A primitive: it accepts any
 * byte strings, like the RFC's formula; the tree functions check sizes.
 */
export function nodeHash(left: Uint8Array, right: Uint8Array): Buffer {
  const bytes = Buffer.allocUnsafe(1 + left.length + right.length);
  bytes[0] = 0x01;
  bytes.set(left, 1);
  bytes.set(right, 1 + left.length);
  return hash("sha256", bytes, "buffer");
}

// RFC 9162 2.1.1: MTH({}) = SHA-256() — deliberately different from the hash
// of an empty leaf. Fresh each time because Buffers are mutable.
function emptyRoot(): Buffer {
  return createHash("sha256").digest();
}

/**
 * RFC 9162 2.1.1, kept incrementally: the tree of `size` leaves is the
 * left-to-right sequence of perfect subtrees given by the binary expansion of
 * `size`, and MTH folds their roots from the right. Holding only those roots
 * (at most 53) makes append and root O(log n) with no access to old leaves.
 */
export class CompactTree {
  #size = 0;
  // Roots of the perfect subtrees, largest (leftmost) first: one per set bit of #size.
  #nodes: Buffer[] = [];

  get size(): number {
    return this.#size;
  }

  append(leaf: Uint8Array): void {
    checkHash(leaf, "CompactTree.append: leaf hash", RangeError);
    if (this.#size >= Number.MAX_SAFE_INTEGER) throw new RangeError("CompactTree.append: tree is full");
    // Like a binary increment: every trailing 1 bit of the size is a perfect
    // subtree of the same height as the carry, so they merge.
    let carry: Buffer = Buffer.from(leaf);
    for (let s = this.#size; s % 2 === 1; s = Math.floor(s / 2)) {
      carry = nodeHash(this.#nodes.pop()!, carry);
    }
    this.#nodes.push(carry);
    this.#size += 1;
  }

  root(): Buffer {
    const nodes = this.#nodes;
    if (nodes.length === 0) return emptyRoot();
    let r = nodes[nodes.length - 1]!;
    for (let i = nodes.length - 2; i >= 0; i--) r = nodeHash(nodes[i]!, r);
    // A lone perfect subtree is stored, not computed: hand out a copy.
    return nodes.length === 1 ? Buffer.from(r) : r;
  }

  /** The perfect subtrees' roots, largest first: with the size, all a tree needs to go on growing. */
  frontier(): Buffer[] {
    return this.#nodes.map((n) => Buffer.from(n));
  }

  /** The tree of `size` leaves whose frontier is `nodes` (as `frontier()` gave them), its leaves gone. */
  static restore(size: number, nodes: readonly Uint8Array[]): CompactTree {
    let bits = 0;
    for (let s = size; s > 0; s = Math.floor(s / 2)) bits += s % 2;
    if (!isCount(size) || nodes.length !== bits) {
      throw new RangeError(`CompactTree.restore: a tree of size ${size} has ${bits} frontier nodes, got ${nodes.length}`);
    }
    nodes.forEach((n, i) => checkHash(n, `CompactTree.restore: node ${i}`, RangeError));
    const tree = new CompactTree();
    tree.#size = size;
    tree.#nodes = nodes.map((n) => Buffer.from(n));
    return tree;
  }

  clone(): CompactTree {
    const copy = new CompactTree();
    copy.#size = this.#size;
    // Stored nodes are never mutated in place, so sharing them is safe.
    copy.#nodes = this.#nodes.slice();
    return copy;
  }

  static fromLeaves(leafHashes: Iterable<Uint8Array>): CompactTree {
    const tree = new CompactTree();
    for (const h of leafHashes) tree.append(h);
    return tree;
  }
}

/**
 * RFC 9162 2.1.1: MTH(D[start:end]), the root of the tree whose leaves are
 * that range on its own. One pass, end - start - 1 node hashes.
 */
export function rootOf(leafHashes: readonly Uint8Array[], start = 0, end: number = leafHashes.length): Buffer {
  if (!isCount(start) || !isCount(end) || start > end || end > leafHashes.length) {
    throw new RangeError(`rootOf: invalid range [${start}, ${end}) of ${leafHashes.length} leaves`);
  }
  return rangeRoot(leafHashes, start, end);
}

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
    throw new RangeError(`inclusionProof: index ${index} is out of range for tree size ${size}`);
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
export function rootFromInclusionProof(
  leaf: Uint8Array,
  index: number,
  size: number,
  proof: readonly Uint8Array[],
): Buffer {
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
export function verifyInclusion(
  leaf: Uint8Array,
  index: number,
  size: number,
  proof: readonly Uint8Array[],
  root: Uint8Array,
): void {
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
    throw new RangeError(`consistencyProof: size1 ${size1} must satisfy 0 < size1 <= size2 (${size2})`);
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
export function verifyConsistency(
  size1: number,
  size2: number,
  proof: readonly Uint8Array[],
  root1: Uint8Array,
  root2: Uint8Array,
): void {
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
    if (!isCount(size) || size > source.size) throw new RangeError(`${fn}: size ${size} is beyond the ${source.size} leaves known`);
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
        throw new RangeError(`the leaves of [${start}, ${end}) have expired and that range is no run of frontier subtrees`);
      }
      return run.slice(0, -1).reduceRight((right, b) => nodeHash(b.root, right), run.at(-1)!.root);
    }
    const split = start + largestPowerOfTwoBelow(n);
    return nodeHash(root(start, split), root(split, end));
  };
  return { size, root };
}

// MTH of a range, bottom-up with a local compact-tree stack: same tree as the
// RFC's split at the largest power of two, without recursion or re-scanning.
function rangeRoot(leaves: readonly Uint8Array[], start: number, end: number): Buffer {
  const n = end - start;
  if (n === 0) return emptyRoot();
  if (n === 1) return Buffer.from(leafAt(leaves, start));
  const stack: Uint8Array[] = [];
  // Array indices are below 2**32, so uint32 bit operations are exact here.
  for (let i = 0; i < n; i++) {
    let h: Uint8Array = leafAt(leaves, start + i);
    for (let c = i; (c & 1) === 1; c >>>= 1) h = nodeHash(stack.pop()!, h);
    stack.push(h);
  }
  let r = stack.pop()!;
  while (stack.length > 0) r = nodeHash(stack.pop()!, r);
  return r as Buffer;
}

function leafAt(leaves: readonly Uint8Array[], i: number): Uint8Array {
  const h = leaves[i];
  if (h === undefined || h.length !== HASH_SIZE) {
    throw new RangeError(`leaf hash ${i} must be ${HASH_SIZE} bytes, got ${h === undefined ? "nothing" : h.length}`);
  }
  return h;
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

// RFC 9162 2.1.1's k: the largest power of two smaller than n, for 2 <= n < 2**32.
function largestPowerOfTwoBelow(n: number): number {
  return 2 ** (31 - Math.clz32(n - 1));
}

// Sizes from a proof can exceed 32 bits, where JS bit operators would wrap.
function half(x: number): number {
  return Math.floor(x / 2);
}

function isCount(x: number): boolean {
  return Number.isSafeInteger(x) && x >= 0;
}

function checkTreeSize(leaves: readonly Uint8Array[], size: number, fn: string): void {
  if (!isCount(size) || size === 0 || size > leaves.length) {
    throw new RangeError(`${fn}: tree size ${size} must be between 1 and the ${leaves.length} leaves given`);
  }
}

function checkHash(h: Uint8Array, what: string, E: new (message: string) => Error): void {
  if (!(h instanceof Uint8Array) || h.length !== HASH_SIZE) {
    throw new E(`${what} must be ${HASH_SIZE} bytes, got ${h instanceof Uint8Array ? h.length : typeof h}`);
  }
}

function checkProofElements(proof: readonly Uint8Array[], what: string): void {
  for (let i = 0; i < proof.length; i++) checkHash(proof[i]!, `${what}: element ${i}`, MerkleProofError);
}

function hex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("hex");
}
