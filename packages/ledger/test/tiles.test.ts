import { appendFile, mkdtemp, readdir, readFile, rm, stat, truncate, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  CheckpointSigner,
  SegmentLedger,
  generateSigningKey,
  leafHash,
  rootOf,
  verifyConsistencyBundle,
  verifyInclusionBundle,
  type Checkpoint,
} from "../src/index.js";
import { parseTilePath, tileIndexPath, tilePath, tilesOf, entryBundle } from "../src/tiles.js";
import { TileReader, tileConsistencyProof, tileInclusionProof, type TileStore } from "../src/tiles-tree.js";
import { treeAfter } from "../src/chain.js";
import type { ExpiredRange } from "../src/retention.js";

/** A store that counts its reads and refuses to read records or write: a proof from it is one from tiles alone. */
function tilesOnly(store: TileStore): TileStore & { reads: number } {
  const counting = {
    reads: 0,
    read: (level: number, index: number) => {
      counting.reads += 1;
      return store.read(level, index);
    },
    write: () => Promise.reject(new Error("no writes")),
    leaves: () => Promise.reject(new Error("no records")),
  };
  return counting;
}
import { textEvent } from "./text-event.js";

const keys = generateSigningKey();
const signer = new CheckpointSigner(keys.privateKeyPem);
const S = "s1";

/** A signing ledger in a fresh directory, `size` records appended in batches of `batch`. */
async function ledgerOf(size: number, batch = 97, options: { tiles?: boolean; maxSegmentBytes?: number } = {}) {
  const dir = await mkdtemp(join(tmpdir(), "ledger-tiles-"));
  const ledger = new SegmentLedger(dir, { signer, ...options });
  const ids: string[] = [];
  for (let n = 0; n < size; n += batch) {
    const events = Array.from({ length: Math.min(batch, size - n) }, (_, i) => textEvent(n + i));
    ids.push(...events.map((e) => e.eventId));
    await ledger.append(S, events);
  }
  await ledger.close();
  return { dir, ids, tileDir: join(dir, "streams", S) };
}

/** The leaf hashes of a stream, computed from its segment files alone. */
async function leavesOf(ledger: SegmentLedger): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for (const path of await ledger.segments(S)) for (const line of (await readFile(path, "utf8")).split("\n").filter(Boolean)) out.push(leafHash(line));
  return out;
}

/** What tile (level, index, width) must hold, from the leaves (tlog-tiles: MTH of runs of 256**level leaves). */
function expectedTile(leaves: Buffer[], level: number, index: number, width: number): Buffer {
  const span = 256 ** level;
  const hashes = Array.from({ length: width }, (_, i) => rootOf(leaves, (index * 256 + i) * span, (index * 256 + i + 1) * span));
  return Buffer.concat(hashes);
}

/** Every tile of the stream's tree is on disk, in the layout, and holds what the records say. */
async function expectTilesMatch(dir: string, leaves: Buffer[]) {
  for (const t of tilesOf(leaves.length)) {
    const bytes = await readFile(join(dir, "streams", S, tilePath(t.level, t.index, t.width)));
    expect(bytes.equals(expectedTile(leaves, t.level, t.index, t.width)), tilePath(t.level, t.index, t.width)).toBe(true);
  }
}

describe("tlog-tiles layout", () => {
  it("spells tile paths as C2SP tlog-tiles does, and reads back only the canonical spelling", () => {
    expect(tileIndexPath(1234067)).toBe("x001/x234/067");
    expect(tileIndexPath(0)).toBe("000");
    expect(tileIndexPath(1000)).toBe("x001/000");
    expect(tilePath(0, 1234067)).toBe("tile/0/x001/x234/067");
    expect(tilePath(2, 5, 17)).toBe("tile/2/005.p/17");
    expect(tilePath("entries", 3, 255)).toBe("tile/entries/003.p/255");
    expect(parseTilePath("tile/0/x001/x234/067")).toEqual({ level: 0, index: 1234067, width: 256 });
    expect(parseTilePath("tile/1/005.p/17")).toEqual({ level: 1, index: 5, width: 17 });
    expect(parseTilePath("tile/entries/x001/000.p/1")).toEqual({ level: "entries", index: 1000, width: 1 });
    for (const bad of [
      "tile/0/5",
      "tile/0/x000/005",
      "tile/01/005",
      "tile/0/005.p/0",
      "tile/0/005.p/256",
      "tile/0/005.p/07",
      "tile/64/000",
      "tile/0/x005",
      "tiles/0/000",
    ])
      expect(parseTilePath(bad), bad).toBeUndefined();
  });

  it("has the tiles the spec gives for sizes 70,000 and 256", () => {
    const at70k = [...tilesOf(70_000)];
    expect(at70k.filter((t) => t.level === 0 && t.width === 256)).toHaveLength(273);
    expect(at70k.filter((t) => t.width < 256).map((t) => [t.level, t.width])).toEqual([
      [0, 112],
      [1, 17],
      [2, 1],
    ]);
    expect(at70k.filter((t) => t.level === 1 && t.width === 256)).toHaveLength(1);
    expect([...tilesOf(256)]).toEqual([
      { level: 0, index: 0, width: 256 },
      { level: 1, index: 0, width: 1 },
    ]);
    expect([...tilesOf(0)]).toEqual([]);
  });

  it("bundles entries behind big-endian uint16 lengths, and refuses one too long", () => {
    expect(entryBundle([Buffer.from("ab"), Buffer.from("")]).toString("hex")).toBe("00026162" + "0000");
    expect(() => entryBundle([Buffer.alloc(65536)])).toThrow(expect.objectContaining({ code: "AUDITGRAPH_E_TILES_ENTRY_TOO_LONG" }));
  });
});

describe("SegmentLedger tiles", () => {
  it("stores the tree as tiles as records are appended, full and partial, a partial one replaced as it grows", async () => {
    const { dir } = await ledgerOf(3000, 97);
    const ledger = new SegmentLedger(dir);
    const leaves = await leavesOf(ledger);
    expect(leaves).toHaveLength(3000);
    await expectTilesMatch(dir, leaves);
    // One partial tile per place: the narrower ones were removed.
    expect(await readdir(join(dir, "streams", S, "tile/0/011.p"))).toEqual(["184"]);
    expect(await readdir(join(dir, "streams", S, "tile/1/000.p"))).toEqual(["11"]);
    await expect(stat(join(dir, "streams", S, "tile/0/010.p"))).rejects.toThrow();
  });

  it("proves inclusion and consistency from tiles with the very bundles the records give", async () => {
    const { dir, ids } = await ledgerOf(3000, 250);
    const tiled = new SegmentLedger(dir);
    const rehashed = new SegmentLedger(dir, { tiles: false });
    const checkpoints: Checkpoint[] = await tiled.checkpoints(S);
    for (const at of [0, 1, 255, 256, 257, 1999, 2999]) {
      const bundle = await tiled.prove(ids[at]!);
      expect(bundle).toEqual(await rehashed.prove(ids[at]!));
      expect(verifyInclusionBundle(bundle, keys.publicKeyPem).leafIndex).toBe(at);
    }
    for (const [from, to] of [
      [250, 3000],
      [1000, 2750],
      [256 * 4 - 24, undefined],
      [3000, 3000],
    ] as const) {
      const bundle = await tiled.proveConsistency(S, from, to);
      expect(bundle).toEqual(await rehashed.proveConsistency(S, from, to));
      verifyConsistencyBundle(bundle, keys.publicKeyPem);
    }
    expect(checkpoints.at(-1)!.treeSize).toBe(3000);
    await expect(tiled.proveConsistency(S, 7)).rejects.toThrow(/no signed checkpoint of size 7/);
    await expect(tiled.prove("no-such-event")).rejects.toThrow(expect.objectContaining({ code: "AUDITGRAPH_E_LEDGER_NO_EVENT" }));
  });

  it("a proof reads a few stored tiles (O(log n)) and no record", async () => {
    const { dir, ids } = await ledgerOf(3000, 500);
    const ledger = new SegmentLedger(dir);
    const bundle = await ledger.prove(ids[1234]!);
    const store = tilesOnly((await ledger.tiles(S)).store);
    const proof = await tileInclusionProof(new TileReader(store, 0, false), 1234, 3000);
    expect(proof.map((h) => h.toString("hex"))).toEqual(bundle.proof);
    // Level 0: the record's tile and the edge; level 1: the edge.
    expect(store.reads).toBeLessThanOrEqual(4);
    const consistency = await ledger.proveConsistency(S, 1000, 2500);
    const fromTiles = await tileConsistencyProof(new TileReader(store, 0, false), 1000, 2500);
    expect(fromTiles.map((h) => h.toString("hex"))).toEqual(consistency.proof);
  });

  it("rebuilds tiles deleted or cut short from the records at the first proof, and proves correctly", async () => {
    const { dir, ids } = await ledgerOf(2000, 500);
    const stream = join(dir, "streams", S);
    await rm(join(stream, "tile/0/003"));
    await truncate(join(stream, "tile/0/004"), 100);
    await rm(join(stream, "tile/1/000.p"), { recursive: true });
    const ledger = new SegmentLedger(dir);
    const bundle = await ledger.prove(ids[3 * 256 + 5]!);
    expect(bundle).toEqual(await new SegmentLedger(dir, { tiles: false }).prove(ids[3 * 256 + 5]!));
    verifyInclusionBundle(bundle, keys.publicKeyPem);
    const consistency = await ledger.proveConsistency(S, 1000);
    expect(consistency).toEqual(await new SegmentLedger(dir, { tiles: false }).proveConsistency(S, 1000));
    // What the proofs needed is stored again.
    expect((await stat(join(stream, "tile/0/003"))).size).toBe(8192);
    expect((await stat(join(stream, "tile/1/000.p/7"))).size).toBe(7 * 32);
  });

  it("after a crash that left tiles behind the records (and a torn record), the next writer rebuilds them", async () => {
    // Records written with no tiles: what a writer that died between its fsync and its tiles leaves.
    const { dir, ids } = await ledgerOf(1500, 300, { tiles: false });
    const stream = join(dir, "streams", S);
    await expect(stat(join(stream, "tile"))).rejects.toThrow();
    const ledger = new SegmentLedger(dir, { signer });
    await appendFile(ledger.segmentPath(S), '{"event":{"eventId":"torn","ty');
    await ledger.append(S, [textEvent(1500)]);
    await ledger.close();
    const leaves = await leavesOf(ledger);
    expect(leaves).toHaveLength(1501);
    await expectTilesMatch(dir, leaves);
    expect(await ledger.repairs()).toHaveLength(1);

    // Tiles lost again, and a partial tile left half written: reopening rebuilds them too.
    await rm(join(stream, "tile/0/004"));
    await writeFile(join(stream, "tile/0/005.p/221"), Buffer.alloc(40));
    const again = new SegmentLedger(dir, { signer });
    await again.append(S, [textEvent(1501)]);
    await again.close();
    await expectTilesMatch(dir, await leavesOf(again));
    const bundle = await new SegmentLedger(dir).prove(ids[1300]!);
    expect(bundle).toEqual(await new SegmentLedger(dir, { tiles: false }).prove(ids[1300]!));
  });

  it("proves from tiles at sizes 1, 255, 256, 257 and 65536 + 3, every tile as the spec defines it", async () => {
    for (const size of [1, 255, 256, 257, 65_539]) {
      const { dir, ids } = await ledgerOf(size, size > 1000 ? 2000 : 64);
      const ledger = new SegmentLedger(dir);
      const leaves = await leavesOf(ledger);
      await expectTilesMatch(dir, leaves);
      for (const at of new Set([0, size - 1, Math.floor(size / 2)])) {
        const bundle = await ledger.prove(ids[at]!);
        expect(bundle.treeSize).toBe(size);
        verifyInclusionBundle(bundle, keys.publicKeyPem);
        if (size < 1000) expect(bundle).toEqual(await new SegmentLedger(dir, { tiles: false }).prove(ids[at]!));
      }
    }
  });

  it("keeps proving after retention removed old segments, and an expired record is not found, as before", async () => {
    const exported: Checkpoint[] = [];
    const dir = await mkdtemp(join(tmpdir(), "ledger-tiles-expiry-"));
    const open = (tiles = true) => new SegmentLedger(dir, { signer, maxSegmentBytes: 40_000, onCheckpoint: (c) => void exported.push(c), tiles });
    const ledger = open();
    const old = new Date(Date.now() - 400 * 86_400_000).toISOString();
    const ids: string[] = [];
    for (let b = 0; b < 8; b++) {
      const events = Array.from({ length: 150 }, (_, i) => textEvent(b * 150 + i));
      ids.push(...events.map((e) => e.eventId));
      await ledger.append(S, events, b < 6 ? old : new Date().toISOString());
    }
    const reports = await ledger.retention.expire({ policy: { days: 365 }, exported });
    const first = reports[0]!.expired.at(-1)!.to;
    expect(first).toBeGreaterThan(300);
    await ledger.close();
    for (const at of [first, first + 1, 1199]) {
      const bundle = await open().prove(ids[at]!);
      expect(bundle).toEqual(await open(false).prove(ids[at]!));
      verifyInclusionBundle(bundle, keys.publicKeyPem);
    }
    await expect(open().prove(ids[0]!)).rejects.toThrow(expect.objectContaining({ code: "AUDITGRAPH_E_LEDGER_NO_EVENT" }));
    const sizes = (await open().checkpoints(S)).map((c) => c.treeSize).filter((n) => n >= first);
    const consistency = await open().proveConsistency(S, sizes[0]!);
    expect(consistency).toEqual(await open(false).proveConsistency(S, sizes[0]!));
    await expect(open().proveConsistency(S, 150)).rejects.toThrow(expect.objectContaining({ code: "AUDITGRAPH_E_LEDGER_EXPIRED" }));
    // The live record's proof comes from the tiles and the expired range's frontier, no record read.
    const expired = JSON.parse((await readFile(join(dir, "streams", S, "expired.jsonl"), "utf8")).trim().split("\n").at(-1)!) as ExpiredRange;
    const store = tilesOnly((await open().tiles(S)).store);
    const proof = await tileInclusionProof(new TileReader(store, first, false), first + 1, 1200, treeAfter(expired));
    expect(proof.map((h) => h.toString("hex"))).toEqual((await open(false).prove(ids[first + 1]!)).proof);
    // Tiles over expired records are kept (hashes only): a live record's proof may pass through them.
    expect((await stat(join(dir, "streams", S, "tile/0/000"))).size).toBe(8192);
  });
});
