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
import { MerkleRangeError } from "./errors.js";

/** Length in bytes of every hash in the tree (SHA-256). */
export const HASH_SIZE = 32;

// RFC 9162 2.1.1 domain separation: a leaf hash can never be confused with an
// interior node hash, which is what makes second-preimage attacks fail.

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
export function emptyRoot(): Buffer {
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
    checkHash(leaf, "CompactTree.append: leaf hash", MerkleRangeError);
    if (this.#size >= Number.MAX_SAFE_INTEGER) throw new MerkleRangeError("CompactTree.append: tree is full");
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
      throw new MerkleRangeError(`CompactTree.restore: a tree of size ${size} has ${bits} frontier nodes, got ${nodes.length}`);
    }
    for (const [i, n] of nodes.entries()) checkHash(n, `CompactTree.restore: node ${i}`, MerkleRangeError);
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
    throw new MerkleRangeError(`rootOf: invalid range [${start}, ${end}) of ${leafHashes.length} leaves`);
  }
  return rangeRoot(leafHashes, start, end);
}

// MTH of a range, bottom-up with a local compact-tree stack: same tree as the
// RFC's split at the largest power of two, without recursion or re-scanning.
export function rangeRoot(leaves: readonly Uint8Array[], start: number, end: number): Buffer {
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

export function leafAt(leaves: readonly Uint8Array[], i: number): Uint8Array {
  const h = leaves[i];
  if (h === undefined || h.length !== HASH_SIZE) {
    throw new MerkleRangeError(`leaf hash ${i} must be ${HASH_SIZE} bytes, got ${h === undefined ? "nothing" : h.length}`);
  }
  return h;
}

// RFC 9162 2.1.1's k: the largest power of two smaller than n, for 2 <= n < 2**32.
export function largestPowerOfTwoBelow(n: number): number {
  return 2 ** (31 - Math.clz32(n - 1));
}

// Sizes from a proof can exceed 32 bits, where JS bit operators would wrap.
export function half(x: number): number {
  return Math.floor(x / 2);
}

export function isCount(x: number): boolean {
  return Number.isSafeInteger(x) && x >= 0;
}

export function checkTreeSize(leaves: readonly Uint8Array[], size: number, fn: string): void {
  if (!isCount(size) || size === 0 || size > leaves.length) {
    throw new MerkleRangeError(`${fn}: tree size ${size} must be between 1 and the ${leaves.length} leaves given`);
  }
}

export function checkHash(h: Uint8Array, what: string, E: new (message: string) => Error): void {
  if (!(h instanceof Uint8Array) || h.length !== HASH_SIZE) {
    throw new E(`${what} must be ${HASH_SIZE} bytes, got ${h instanceof Uint8Array ? h.length : typeof h}`);
  }
}

export function hex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("hex");
}
