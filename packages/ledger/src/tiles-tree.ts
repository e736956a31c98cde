/**
 * A stream's Merkle tree read from, and written to, its tiles (tiles.ts): the tiles a store
 * holds, rebuilt from the records when missing or cut short, the tiles an append adds, and the
 * nodes a proof asks for, each from one tile instead of from every leaf.
 */
import { HASH_SIZE, largestPowerOfTwoBelow, nodeHash, rangeRoot, type CompactTree } from "./merkle-tree.js";
import { consistencyProof, inclusionProof, subtreesAfter, type SubtreeSource } from "./merkle-proof.js";
import { ledgerError } from "./errors.js";
import { TILE_HEIGHT, TILE_WIDTH, TileErrorCodes, hashesAt, splitHashes, type TileData } from "./tiles.js";

/** Where one stream's tiles are kept (segment files, PostgreSQL rows), and its records' leaves for rebuilding them. */
export interface TileStore {
  /** The widest hashes stored for tile (level, index), a whole number of hashes; undefined when none are. */
  read(level: number, index: number): Promise<Buffer | undefined>;
  /**
   * Stores tiles. A partial tile replaces a narrower one of the same place; `replace` false
   * (a reader's repair) leaves a wider one as it is.
   */
  write(tiles: readonly TileData[], replace: boolean): Promise<void>;
  /** The leaf hashes of the records at positions [from, to), from the records themselves. */
  leaves(from: number, to: number): Promise<Buffer[]>;
}

/** A stream's tiles as a ledger keeps them: the store, and the first position not expired (tiles before it cannot be rebuilt). */
export interface StreamTiles {
  store: TileStore;
  firstLive: number;
}

/** A ledger that keeps its streams' trees as tlog tiles (both backends do). */
export interface TiledLedger {
  tiles(streamId: string): Promise<StreamTiles>;
}

/**
 * A tile store read for proofs: each tile read once per reader, and a tile missing, or narrower
 * than the tree needs, rebuilt from the level below (level 0: from the records) and stored
 * again (`repair`). Records before `firstLive` have expired: tiles over them cannot be rebuilt.
 */
export class TileReader {
  /** Tiles read (or being read) by this reader, the widest so far: a proof asks for some several times, concurrently. */
  private readonly seen = new Map<string, Promise<Buffer>>();

  constructor(
    readonly store: TileStore,
    private readonly firstLive = 0,
    private readonly repair = true,
  ) {}

  /** Exactly `width` hashes of tile (level, index): as stored, or rebuilt. */
  async tile(level: number, index: number, width: number): Promise<Buffer> {
    const key = `${level}/${index}`;
    const bytes = width * HASH_SIZE;
    const known = this.seen.get(key);
    const have = known && (await known.catch(() => undefined));
    if (have && have.length >= bytes) return have.subarray(0, bytes);
    const read = this.read(level, index, width);
    this.seen.set(key, read);
    return (await read).subarray(0, bytes);
  }

  private async read(level: number, index: number, width: number): Promise<Buffer> {
    const stored = await this.store.read(level, index);
    if (stored && stored.length >= width * HASH_SIZE) return stored;
    const rebuilt = await this.rebuild(level, index, width);
    // Best effort: the proof stands without it, and a read-only copy of the ledger cannot take it.
    if (this.repair) await this.store.write([{ level, index, hashes: rebuilt }], false).catch(() => undefined);
    return rebuilt;
  }

  /** Whether the store holds at least `width` hashes of tile (level, index): rebuilt (and stored) when not. */
  async ensure(level: number, index: number, width: number): Promise<boolean> {
    const stored = await this.store.read(level, index);
    if (stored && stored.length >= width * HASH_SIZE) return true;
    await this.tile(level, index, width);
    return false;
  }

  private async rebuild(level: number, index: number, width: number): Promise<Buffer> {
    const first = index * TILE_WIDTH;
    if (level === 0) {
      if (first < this.firstLive) throw expiredTile(level, index);
      return Buffer.concat(await this.store.leaves(first, first + width));
    }
    return Buffer.concat(await Promise.all(Array.from({ length: width }, (_, j) => this.entry(level, first + j))));
  }

  /** Hash `at` of level `level`: MTH of the 256**level leaves under it, the root of a full tile below. */
  async entry(level: number, at: number): Promise<Buffer> {
    if (level === 0) {
      if (at < this.firstLive) throw expiredTile(level, Math.floor(at / TILE_WIDTH));
      return (await this.store.leaves(at, at + 1))[0]!;
    }
    return rangeRoot(splitHashes(await this.tile(level - 1, at, TILE_WIDTH)), 0, TILE_WIDTH);
  }

  /**
   * MTH of the perfect subtree of height `height` at `index` (leaves [index * 2**height, +2**height)):
   * 2**(height mod 8) hashes of one tile, hashed up. A tile that cannot be had whole (it reaches
   * into expired records) gives way to its hashes one by one, each under live leaves only.
   */
  async node(height: number, index: number): Promise<Buffer> {
    const level = Math.floor(height / TILE_HEIGHT);
    const span = 2 ** (height % TILE_HEIGHT);
    const first = index * span;
    const tile = Math.floor(first / TILE_WIDTH);
    const offset = first % TILE_WIDTH;
    let hashes: Buffer[];
    try {
      hashes = splitHashes(await this.tile(level, tile, offset + span)).slice(offset);
    } catch (error) {
      if (!isExpiredTile(error)) throw error;
      hashes = await Promise.all(Array.from({ length: span }, (_, j) => this.entry(level, first + j)));
    }
    return span === 1 ? Buffer.from(hashes[0]!) : rangeRoot(hashes, 0, span);
  }
}

const expiredTile = (level: number, index: number) =>
  ledgerError(TileErrorCodes.noTile, `tile ${level}/${index} reaches into expired records and is not stored: it cannot be rebuilt`);
const isExpiredTile = (error: unknown) => (error as { code?: unknown }).code === TileErrorCodes.noTile;

/**
 * MTH(D[start:end]) of a tree whose first `prefix.size` leaves may have expired: nodes over
 * expired leaves from the frontier they left (as `subtreesAfter` gives them), the others from tiles.
 */
async function rangeHash(reader: TileReader, prefix: SubtreeSource | undefined, prefixSize: number, start: number, end: number): Promise<Buffer> {
  if (prefix && end <= prefixSize) return prefix.root(start, end);
  const n = end - start;
  if (start >= prefixSize && (n & (n - 1)) === 0 && start % n === 0) return reader.node(Math.log2(n), start / n);
  const split = start + largestPowerOfTwoBelow(n);
  const [left, right] = await Promise.all([rangeHash(reader, prefix, prefixSize, start, split), rangeHash(reader, prefix, prefixSize, split, end)]);
  return nodeHash(left, right);
}

/**
 * Runs a proof algorithm over tiles. The ranges it asks for depend on the sizes alone, so a
 * first run only notes them; they are then read (O(log n) tiles, concurrently), and the second
 * run makes the proof from what was read.
 */
async function fromTiles(
  reader: TileReader,
  size: number,
  expired: CompactTree | undefined,
  algorithm: (source: SubtreeSource) => Buffer[],
): Promise<Buffer[]> {
  const wanted: [number, number][] = [];
  const zero = Buffer.alloc(HASH_SIZE);
  algorithm({ size, root: (start, end) => (wanted.push([start, end]), zero) });
  const prefix = expired && expired.size > 0 ? subtreesAfter(expired, []) : undefined;
  const prefixSize = expired?.size ?? 0;
  const roots = new Map<string, Buffer>();
  await Promise.all(wanted.map(async ([s, e]) => roots.set(`${s}:${e}`, await rangeHash(reader, prefix, prefixSize, s, e))));
  return algorithm({ size, root: (start, end) => roots.get(`${start}:${end}`)! });
}

/** RFC 9162 inclusion proof of leaf `index` in the tree of `size`, from tiles. */
export function tileInclusionProof(reader: TileReader, index: number, size: number, expired?: CompactTree): Promise<Buffer[]> {
  return fromTiles(reader, size, expired, (source) => inclusionProof(source, index, size));
}

/** RFC 9162 consistency proof between the trees of `size1` and `size2`, from tiles. */
export function tileConsistencyProof(reader: TileReader, size1: number, size2: number, expired?: CompactTree): Promise<Buffer[]> {
  return fromTiles(reader, size2, expired, (source) => consistencyProof(source, size1, size2));
}

/**
 * The tiles appends add: the right edge of every level (the hashes of its partial tile) kept in
 * memory, so an append costs its leaves' hashes, one node hash per 256 of them, and writing
 * the tiles that changed.
 */
export class TileAppender {
  private readonly edges: Buffer[][] = [];
  private readonly full: TileData[] = [];
  private readonly changed = new Set<number>();

  private constructor(private size: number) {}

  /**
   * The appender of a tree of `size` leaves, its edge read from the store (and whatever of it
   * is missing rebuilt). A crash may also have lost the full tiles the last appends completed:
   * those are rebuilt too, from the last back to one the store holds.
   */
  static async open(reader: TileReader, size: number): Promise<TileAppender> {
    const appender = new TileAppender(size);
    for (let level = 0; hashesAt(size, level) > 0; level++) {
      const count = hashesAt(size, level);
      const index = Math.floor(count / TILE_WIDTH);
      const width = count % TILE_WIDTH;
      appender.edges.push(width > 0 ? splitHashes(Buffer.from(await reader.tile(level, index, width))) : []);
      for (let back = index - 1; back >= 0; back--) {
        // Tiles over expired records cannot be rebuilt: those the store has are all there is.
        const held = await reader.ensure(level, back, TILE_WIDTH).catch(() => true);
        if (held) break;
      }
    }
    return appender;
  }

  get treeSize(): number {
    return this.size;
  }

  /** Takes in the next leaf (its hash). */
  append(leaf: Buffer): void {
    let hash = leaf;
    for (let level = 0; ; level++) {
      const edge = (this.edges[level] ??= []);
      edge.push(hash);
      this.changed.add(level);
      if (edge.length < TILE_WIDTH) break;
      const index = Math.floor(hashesAt(this.size + 1, level) / TILE_WIDTH) - 1;
      this.full.push({ level, index, hashes: Buffer.concat(edge) });
      hash = rangeRoot(edge, 0, TILE_WIDTH);
      this.edges[level] = [];
    }
    this.size += 1;
  }

  /** The tiles changed since the last call: full tiles completed, and the partial tile of each level that grew. */
  take(): TileData[] {
    const out = this.full.splice(0);
    for (const level of [...this.changed].sort((a, b) => a - b)) {
      const edge = this.edges[level]!;
      if (edge.length > 0) out.push({ level, index: Math.floor(hashesAt(this.size, level) / TILE_WIDTH), hashes: Buffer.concat(edge) });
    }
    this.changed.clear();
    return out;
  }

  /**
   * Tile (level, index) as this appender holds it, if it does: a full tile not taken yet, or the
   * edge of that level. Fresher than a store written lazily.
   */
  held(level: number, index: number): Buffer | undefined {
    const full = this.full.find((t) => t.level === level && t.index === index);
    if (full) return full.hashes;
    const edge = this.edges[level];
    if (!edge || edge.length === 0 || Math.floor(hashesAt(this.size, level) / TILE_WIDTH) !== index) return undefined;
    return Buffer.concat(edge);
  }
}
