import { createHash } from "node:crypto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  CompactTree,
  MerkleProofError,
  consistencyProof,
  inclusionProof,
  leafHash,
  nodeHash,
  rootFromInclusionProof,
  rootOf,
  subtreesAfter,
  verifyConsistency,
  verifyInclusion,
} from "../src/merkle.js";

const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");
const unhex = (s: string): Buffer => Buffer.from(s, "hex");
const sha256 = (b: Uint8Array): Buffer => createHash("sha256").update(b).digest();

// ---------------------------------------------------------------------------
// Reference implementation, transcribed from the recursive definitions of
// RFC 9162 2.1.1 (MTH), 2.1.3.1 (PATH) and 2.1.4.1 (PROOF/SUBPROOF), hashing
// with sha256 directly so it shares nothing with the module but the spec.
// Slow on purpose: every MTH is recomputed from the leaves.

const refK = (n: number): number => {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
};
const refNode = (l: Uint8Array, r: Uint8Array): Buffer => sha256(Buffer.concat([Buffer.of(1), l, r]));
const refLeaf = (d: Uint8Array): Buffer => sha256(Buffer.concat([Buffer.of(0), d]));

function refMTH(d: readonly Buffer[]): Buffer {
  if (d.length === 0) return sha256(Buffer.alloc(0));
  if (d.length === 1) return d[0]!;
  const k = refK(d.length);
  return refNode(refMTH(d.slice(0, k)), refMTH(d.slice(k)));
}

function refPATH(m: number, d: readonly Buffer[]): Buffer[] {
  if (d.length === 1) return [];
  const k = refK(d.length);
  return m < k ? [...refPATH(m, d.slice(0, k)), refMTH(d.slice(k))] : [...refPATH(m - k, d.slice(k)), refMTH(d.slice(0, k))];
}

function refSUBPROOF(m: number, d: readonly Buffer[], b: boolean): Buffer[] {
  if (m === d.length) return b ? [] : [refMTH(d)];
  const k = refK(d.length);
  return m <= k ? [...refSUBPROOF(m, d.slice(0, k), b), refMTH(d.slice(k))] : [...refSUBPROOF(m - k, d.slice(k), false), refMTH(d.slice(0, k))];
}
const refPROOF = (m: number, d: readonly Buffer[]): Buffer[] => refSUBPROOF(m, d, true);

// Reference verifiers: run the same recursions backwards, taking proof
// elements from the end. They decide the cases where the spec, not the
// module, must say whether a proof is valid (a changed tree size).
function refInclusionAccepts(leaf: Buffer, m: number, n: number, proof: readonly Buffer[], root: Buffer): boolean {
  if (!(Number.isSafeInteger(m) && Number.isSafeInteger(n) && 0 <= m && m < n)) return false;
  const rest = [...proof];
  const up = (m: number, n: number): Buffer | undefined => {
    if (n === 1) return leaf;
    const c = rest.pop();
    if (!c) return undefined;
    const k = refK(n);
    const r = m < k ? up(m, k) : up(m - k, n - k);
    return r && (m < k ? refNode(r, c) : refNode(c, r));
  };
  const r = up(m, n);
  return r !== undefined && rest.length === 0 && r.equals(root);
}

function refConsistencyAccepts(m: number, n: number, proof: readonly Buffer[], root1: Buffer, root2: Buffer): boolean {
  if (!(Number.isSafeInteger(m) && Number.isSafeInteger(n) && 0 < m && m <= n)) return false;
  const rest = [...proof];
  // [old root, new root] of SUBPROOF(m, D[n], b).
  const up = (m: number, n: number, b: boolean): [Buffer, Buffer] | undefined => {
    if (m === n) {
      if (b) return [root1, root1];
      const c = rest.pop();
      return c && [c, c];
    }
    const c = rest.pop();
    if (!c) return undefined;
    const k = refK(n);
    if (m <= k) {
      const r = up(m, k, b);
      return r && [r[0], refNode(r[1], c)];
    }
    const r = up(m - k, n - k, false);
    return r && [refNode(c, r[0]), refNode(c, r[1])];
  };
  const r = up(m, n, true);
  return r !== undefined && rest.length === 0 && r[0].equals(root1) && r[1].equals(root2);
}

const accepts = (f: () => void): boolean => {
  try {
    f();
    return true;
  } catch (e) {
    expect(e).toBeInstanceOf(MerkleProofError);
    return false;
  }
};

// Distinct leaves per (salt, i): equal sibling hashes would let a swapped
// left/right order hash to the same root and blur the tampering properties.
const leavesFor = (salt: number, n: number): Buffer[] => Array.from({ length: n }, (_, i) => refLeaf(Buffer.from(`leaf ${salt} ${i}`)));

// ---------------------------------------------------------------------------
// Known answers: transparency-dev/merkle testonly/constants.go and
// cmd/proofgen/main.go (the RFC 6962 / CT reference tree).

const CT_LEAVES = ["", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"].map(unhex);
const CT_ROOTS = [
  "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
  "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
  "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
  "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
  "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
  "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
  "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
  "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
  "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];
const H = {
  l1: "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
  l4: "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
  l6: "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
  n1_1: "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
  n1_2: "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
  n1_3: "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
  n2_0: "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
  n2_1: "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
};

describe("merkle known answers", () => {
  const ct = CT_LEAVES.map((d) => leafHash(d));

  it("hashes leaves and nodes with RFC 9162 domain separation", () => {
    expect(hex(leafHash(""))).toBe("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d");
    expect(hex(leafHash("L123456"))).toBe("395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56");
    expect(leafHash("L123456")).toEqual(leafHash(Buffer.from("L123456")));
    expect(hex(nodeHash(Buffer.from("N123"), Buffer.from("N456")))).toBe("aa217fe888e47007fa15edab33c2b492a722cb106c64667fc2b044444de66bbb");
  });

  it("gives the empty tree the hash of the empty string, and one leaf its own hash", () => {
    const empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    expect(hex(rootOf([]))).toBe(empty);
    expect(hex(new CompactTree().root())).toBe(empty);
    expect(rootOf([ct[3]!])).toEqual(ct[3]);
    expect(CompactTree.fromLeaves([ct[3]!]).root()).toEqual(ct[3]);
  });

  it("reproduces the CT reference tree roots for sizes 0..8", () => {
    const tree = new CompactTree();
    for (let n = 0; n <= 8; n++) {
      expect(hex(rootOf(ct, 0, n))).toBe(CT_ROOTS[n]);
      expect(hex(tree.root())).toBe(CT_ROOTS[n]);
      expect(tree.size).toBe(n);
      if (n < 8) tree.append(ct[n]!);
    }
  });

  it("reproduces the published inclusion proofs", () => {
    const cases: [number, number, string[]][] = [
      [0, 1, []],
      [0, 8, [H.l1, H.n1_1, H.n2_1]],
      [5, 8, [H.l4, H.n1_3, H.n2_0]],
      [2, 3, [CT_ROOTS[2]!]],
      [1, 5, [CT_ROOTS[1]!, H.n1_1, H.l4]],
    ];
    for (const [index, size, want] of cases) {
      const proof = inclusionProof(ct, index, size);
      expect(proof.map(hex)).toEqual(want);
      verifyInclusion(ct[index]!, index, size, proof, unhex(CT_ROOTS[size]!));
    }
  });

  it("reproduces the published consistency proofs", () => {
    const cases: [number, number, string[]][] = [
      [1, 1, []],
      [1, 8, [H.l1, H.n1_1, H.n2_1]],
      [6, 8, [H.n1_2, H.n1_3, H.n2_0]],
      [2, 5, [H.n1_1, H.l4]],
      [6, 7, [H.n1_2, H.l6, H.n2_0]],
    ];
    for (const [size1, size2, want] of cases) {
      const proof = consistencyProof(ct, size1, size2);
      expect(proof.map(hex)).toEqual(want);
      verifyConsistency(size1, size2, proof, unhex(CT_ROOTS[size1]!), unhex(CT_ROOTS[size2]!));
    }
  });
});

describe("merkle edge cases", () => {
  const leaves = leavesFor(0, 8);
  const root = (n: number) => rootOf(leaves, 0, n);

  it("rejects impossible inclusion claims with clear errors", () => {
    const proof = inclusionProof(leaves, 2, 5);
    expect(() => verifyInclusion(leaves[2]!, 5, 5, proof, root(5))).toThrow(/index 5 is beyond tree size 5/);
    expect(() => verifyInclusion(leaves[0]!, 0, 0, [], root(0))).toThrow(/size 0 has no leaves/);
    expect(() => verifyInclusion(leaves[2]!, 2, 5, proof.slice(1), root(5))).toThrow(/wrong length 2, want 3/);
    expect(() => verifyInclusion(leaves[2]!, 2, 5, proof, root(4))).toThrow(/root mismatch/);
    expect(() => verifyInclusion(leaves[2]!.subarray(1), 2, 5, proof, root(5))).toThrow(/leaf hash must be 32 bytes/);
    expect(() => verifyInclusion(leaves[2]!, 2, 5, [proof[0]!, proof[1]!, Buffer.alloc(31)], root(5))).toThrow(/element 2 must be 32 bytes/);
    expect(() => verifyInclusion(leaves[2]!, -1, 5, proof, root(5))).toThrow(/non-negative safe integers/);
    expect(() => verifyInclusion(leaves[2]!, 2, 2 ** 64, proof, root(5))).toThrow(/non-negative safe integers/);
    expect(hex(rootFromInclusionProof(leaves[2]!, 2, 5, proof))).toBe(hex(root(5)));
  });

  it("treats equal, empty and reversed sizes like transparency-dev/merkle", () => {
    verifyConsistency(5, 5, [], root(5), root(5));
    expect(() => verifyConsistency(5, 5, [], root(5), root(4))).toThrow(/root mismatch/);
    expect(() => verifyConsistency(5, 5, [root(5)], root(5), root(5))).toThrow(/want 0/);
    expect(() => verifyConsistency(0, 0, [], root(0), root(0))).toThrow(/size1 is 0/);
    expect(() => verifyConsistency(0, 3, [], root(0), root(3))).toThrow(/size1 is 0/);
    expect(() => verifyConsistency(4, 3, [], root(4), root(3))).toThrow(/greater than size2/);
    expect(() => verifyConsistency(3, 5, [], root(3), root(5))).toThrow(/empty proof/);
    const proof = consistencyProof(leaves, 3, 7);
    expect(() => verifyConsistency(3, 7, proof, root(2), root(7))).toThrow(/root1 mismatch/);
    expect(() => verifyConsistency(3, 7, proof, root(3), root(6))).toThrow(/root2 mismatch/);
    expect(() => verifyConsistency(3, 7, [...proof, root(7)], root(3), root(7))).toThrow(/wrong length/);
  });

  it("refuses to build proofs for trees it was not given", () => {
    expect(() => inclusionProof(leaves, 0, 0)).toThrow(RangeError);
    expect(() => inclusionProof(leaves, 8, 8)).toThrow(RangeError);
    expect(() => inclusionProof(leaves, 0, 9)).toThrow(RangeError);
    expect(() => consistencyProof(leaves, 0, 4)).toThrow(RangeError);
    expect(() => consistencyProof(leaves, 5, 4)).toThrow(RangeError);
    expect(() => consistencyProof(leaves, 4, 9)).toThrow(RangeError);
    expect(consistencyProof(leaves, 4, 4)).toEqual([]);
    expect(() => rootOf(leaves, 3, 2)).toThrow(RangeError);
    expect(() => rootOf([...leaves, Buffer.alloc(31)])).toThrow(/leaf hash 8 must be 32 bytes/);
    expect(() => new CompactTree().append(Buffer.alloc(33))).toThrow(RangeError);
  });

  it("never hands out its internal buffers", () => {
    const tree = CompactTree.fromLeaves(leaves.slice(0, 4));
    const before = hex(tree.root());
    tree.root().fill(0);
    expect(hex(tree.root())).toBe(before);
    const single = CompactTree.fromLeaves([leaves[0]!]);
    single.root().fill(0);
    expect(single.root()).toEqual(leaves[0]);
    inclusionProof(leaves, 0, 2)[0]!.fill(0);
    rootOf(leaves, 1, 2).fill(0);
    expect(leaves[1]).toEqual(leavesFor(0, 2)[1]);
  });

  it("clones independently", () => {
    const a = CompactTree.fromLeaves(leaves.slice(0, 5));
    const b = a.clone();
    b.append(leaves[5]!);
    expect(a.size).toBe(5);
    expect(a.root()).toEqual(rootOf(leaves, 0, 5));
    expect(b.root()).toEqual(rootOf(leaves, 0, 6));
  });

  it("binds the root, not the tree size: some wrong sizes share the proof shape", () => {
    // PATH(0, D[3]) and PATH(0, D[4]) both hash right, right; sizes must come
    // from the same signed checkpoint as the root.
    const proof = inclusionProof(leaves, 0, 3);
    verifyInclusion(leaves[0]!, 0, 4, proof, root(3));
    // PATH(2, D[3]) = [MTH(D[0:2])] reads as leaf 1 of a 2-leaf tree.
    verifyInclusion(leaves[2]!, 1, 2, inclusionProof(leaves, 2, 3), root(3));
  });
});

describe("merkle against the RFC reference", () => {
  it("agrees on roots for every size up to 300, incrementally and by range", () => {
    const leaves = leavesFor(1, 300);
    const tree = new CompactTree();
    for (let n = 0; n <= 300; n++) {
      const want = refMTH(leaves.slice(0, n));
      expect(hex(rootOf(leaves, 0, n))).toBe(hex(want));
      expect(hex(tree.root())).toBe(hex(want));
      if (n < 300) tree.append(leaves[n]!);
    }
    expect(CompactTree.fromLeaves(leaves).root()).toEqual(tree.root());
  });

  it("agrees on every proof for trees up to 16 leaves", () => {
    const leaves = leavesFor(2, 16);
    for (let n = 1; n <= 16; n++) {
      const root = rootOf(leaves, 0, n);
      for (let m = 0; m < n; m++) {
        const proof = inclusionProof(leaves, m, n);
        expect(proof).toEqual(refPATH(m, leaves.slice(0, n)));
        verifyInclusion(leaves[m]!, m, n, proof, root);
      }
      for (let m = 1; m <= n; m++) {
        const proof = consistencyProof(leaves, m, n);
        expect(proof).toEqual(refPROOF(m, leaves.slice(0, n)));
        verifyConsistency(m, n, proof, rootOf(leaves, 0, m), root);
      }
    }
  });

  const sizes = fc.integer({ min: 1, max: 300 });
  const salt = fc.nat();

  it("agrees on random range roots and prefixes", () => {
    fc.assert(
      fc.property(salt, sizes, fc.nat(), fc.nat(), (s, n, a, b) => {
        const leaves = leavesFor(s, n);
        const [start, end] = [a % (n + 1), b % (n + 1)].sort((x, y) => x - y) as [number, number];
        expect(rootOf(leaves, start, end)).toEqual(refMTH(leaves.slice(start, end)));
        const tree = CompactTree.fromLeaves(leaves.slice(0, start));
        const fork = tree.clone();
        for (let i = start; i < end; i++) fork.append(leaves[i]!);
        expect(tree.root()).toEqual(rootOf(leaves, 0, start));
        expect(fork.root()).toEqual(rootOf(leaves, 0, end));
      }),
      { numRuns: 30 },
    );
  });

  it("agrees on random inclusion proofs, which verify", () => {
    fc.assert(
      fc.property(salt, sizes, fc.nat(), fc.nat(20), (s, size, i, extra) => {
        const leaves = leavesFor(s, size + extra);
        const index = i % size;
        const proof = inclusionProof(leaves, index, size);
        expect(proof).toEqual(refPATH(index, leaves.slice(0, size)));
        const root = rootOf(leaves, 0, size);
        expect(rootFromInclusionProof(leaves[index]!, index, size, proof)).toEqual(root);
        verifyInclusion(leaves[index]!, index, size, proof, root);
      }),
      { numRuns: 40 },
    );
  });

  it("agrees on random consistency proofs, which verify", () => {
    fc.assert(
      fc.property(salt, sizes, fc.nat(), fc.nat(20), (s, size2, i, extra) => {
        const leaves = leavesFor(s, size2 + extra);
        const size1 = 1 + (i % size2);
        const proof = consistencyProof(leaves, size1, size2);
        expect(proof).toEqual(refPROOF(size1, leaves.slice(0, size2)));
        verifyConsistency(size1, size2, proof, rootOf(leaves, 0, size1), rootOf(leaves, 0, size2));
      }),
      { numRuns: 40 },
    );
  });
});

describe("merkle tampering", () => {
  const sizes = fc.integer({ min: 1, max: 200 });
  const flip = (b: Buffer, bit: number): Buffer => {
    const c = Buffer.from(b);
    c[(bit >> 3) % c.length]! ^= 1 << (bit & 7);
    return c;
  };
  const tamper = fc.oneof(
    fc.record({ kind: fc.constant("flip" as const), at: fc.nat(), bit: fc.nat(255) }),
    fc.record({ kind: fc.constant("drop" as const), at: fc.nat() }),
    fc.record({ kind: fc.constant("add" as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 32, maxLength: 32 }) }),
    fc.record({ kind: fc.constant("root" as const), bit: fc.nat(255) }),
    fc.record({ kind: fc.constant("index" as const), to: fc.nat() }),
    fc.record({ kind: fc.constant("size" as const), to: fc.nat(400) }),
  );

  it("rejects any tampered inclusion proof", () => {
    fc.assert(
      fc.property(fc.nat(), sizes, fc.nat(), tamper, (s, size, i, t) => {
        const leaves = leavesFor(s, size);
        const index = i % size;
        const leaf = leaves[index]!;
        let proof = inclusionProof(leaves, index, size);
        let root = rootOf(leaves);
        let [idx, sz] = [index, size];
        switch (t.kind) {
          case "flip":
            fc.pre(proof.length > 0);
            proof = proof.map((p, j) => (j === t.at % proof.length ? flip(p, t.bit) : p));
            break;
          case "drop":
            fc.pre(proof.length > 0);
            proof = proof.filter((_, j) => j !== t.at % proof.length);
            break;
          case "add":
            proof.splice(t.at % (proof.length + 1), 0, Buffer.from(t.bytes));
            break;
          case "root":
            root = flip(root, t.bit);
            break;
          case "index":
            idx = t.to % (size + 2);
            fc.pre(idx !== index);
            break;
          case "size":
            sz = t.to;
            fc.pre(sz !== size);
        }
        const ok = accepts(() => verifyInclusion(leaf, idx, sz, proof, root));
        expect(ok).toBe(refInclusionAccepts(leaf, idx, sz, proof, root));
        // A changed size alone can go unnoticed (see "binds the root"), so
        // there only the reference decides.
        if (t.kind !== "size") expect(ok).toBe(false);
      }),
      { numRuns: 300 },
    );
  });

  it("rejects any tampered consistency proof", () => {
    const ctamper = fc.oneof(
      fc.record({ kind: fc.constant("flip" as const), at: fc.nat(), bit: fc.nat(255) }),
      fc.record({ kind: fc.constant("drop" as const), at: fc.nat() }),
      fc.record({ kind: fc.constant("add" as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 32, maxLength: 32 }) }),
      fc.record({ kind: fc.constant("root1" as const), bit: fc.nat(255) }),
      fc.record({ kind: fc.constant("root2" as const), bit: fc.nat(255) }),
      fc.record({ kind: fc.constant("size1" as const), to: fc.nat(400) }),
      fc.record({ kind: fc.constant("size2" as const), to: fc.nat(400) }),
    );
    fc.assert(
      fc.property(fc.nat(), sizes, fc.nat(), ctamper, (s, size2, i, t) => {
        const leaves = leavesFor(s, size2);
        const size1 = 1 + (i % size2);
        let proof = consistencyProof(leaves, size1, size2);
        let root1 = rootOf(leaves, 0, size1);
        let root2 = rootOf(leaves, 0, size2);
        let [m, n] = [size1, size2];
        switch (t.kind) {
          case "flip":
            fc.pre(proof.length > 0);
            proof = proof.map((p, j) => (j === t.at % proof.length ? flip(p, t.bit) : p));
            break;
          case "drop":
            fc.pre(proof.length > 0);
            proof = proof.filter((_, j) => j !== t.at % proof.length);
            break;
          case "add":
            proof.splice(t.at % (proof.length + 1), 0, Buffer.from(t.bytes));
            break;
          case "root1":
            root1 = flip(root1, t.bit);
            break;
          case "root2":
            root2 = flip(root2, t.bit);
            break;
          case "size1":
            m = t.to;
            fc.pre(m !== size1);
            break;
          case "size2":
            n = t.to;
            fc.pre(n !== size2);
        }
        const ok = accepts(() => verifyConsistency(m, n, proof, root1, root2));
        expect(ok).toBe(refConsistencyAccepts(m, n, proof, root1, root2));
        if (t.kind !== "size1" && t.kind !== "size2") expect(ok).toBe(false);
      }),
      { numRuns: 300 },
    );
  });
});

describe("proofs over an expired prefix", () => {
  it("are the proofs the whole tree gives, from the prefix's frontier and the later leaves", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 40 }), fc.integer({ min: 0, max: 40 }), (prefixSize, later) => {
        const leaves = Array.from({ length: prefixSize + later }, (_, i) => leafHash(`leaf ${i}`));
        const prefix = CompactTree.restore(prefixSize, CompactTree.fromLeaves(leaves.slice(0, prefixSize)).frontier());
        const source = subtreesAfter(prefix, leaves.slice(prefixSize));
        const size = leaves.length;
        for (let index = prefixSize; index < size; index++) {
          expect(inclusionProof(source, index, size)).toEqual(inclusionProof(leaves, index, size));
        }
        for (let size1 = prefixSize; size1 <= size; size1++) {
          expect(consistencyProof(source, size1, size)).toEqual(consistencyProof(leaves, size1, size));
        }
      }),
      { numRuns: 100 },
    );
  });

  it("refuse a node made of expired leaves that is not a run of frontier subtrees", () => {
    const leaves = Array.from({ length: 12 }, (_, i) => leafHash(`leaf ${i}`));
    const prefix = CompactTree.restore(6, CompactTree.fromLeaves(leaves.slice(0, 6)).frontier());
    expect(() => inclusionProof(subtreesAfter(prefix, leaves.slice(6)), 1, 12)).toThrow(/expired/);
    expect(() => CompactTree.restore(6, prefix.frontier().slice(1))).toThrow(/size 6 has 2 frontier nodes, got 1/);
  });
});
