/**
 * The C2SP tlog-tiles layout (https://c2sp.org/tlog-tiles) of a stream's Merkle tree: tiles of
 * height 8, each up to 256 hashes of one tree level, at `tile/<L>/<N>` (full) and
 * `tile/<L>/<N>.p/<W>` (partial, the tree's right edge), and the records themselves as entry
 * bundles at `tile/entries/<N>[.p/<W>]`. Pure functions: where a tile is and what it holds.
 */
import { z } from "zod";
import { HASH_SIZE } from "./merkle-tree.js";
import { ledgerError } from "./errors.js";

/** Levels of the tree per tile: a tile is a perfect subtree of height 8 given by its 256 leaves. */
export const TILE_HEIGHT = 8;
/** Hashes in a full tile. */
export const TILE_WIDTH = 256;
/** Bytes of a full tile. */
export const FULL_TILE_BYTES = TILE_WIDTH * HASH_SIZE;

/** The errors of the tiles, each with a stable code (listed in docs/errors.md). */
export const TileErrorCodes = {
  /** A record's canonical JSON is longer than an entry bundle's uint16 length prefix can say. */
  entryTooLong: "AUDITGRAPH_E_TILES_ENTRY_TOO_LONG",
  /** A tile (or an entry bundle) asked for that the tree of that size does not have, or whose records have expired. */
  noTile: "AUDITGRAPH_E_TILES_NO_TILE",
} as const;

/** A tile's place: `width` 256 for a full tile, 1 to 255 for a partial one. */
export const TileIdSchema = z.object({
  level: z.number().int().min(0).max(63),
  index: z.number().int().nonnegative(),
  width: z.number().int().min(1).max(TILE_WIDTH),
});
export type TileId = z.infer<typeof TileIdSchema>;

/** A tile's hashes as stored: width = hashes.length / 32. */
export interface TileData {
  level: number;
  index: number;
  hashes: Buffer;
}

/** `<N>` of a tile path: 3-digit groups, all but the last prefixed with `x` (1234067 is `x001/x234/067`). */
export function tileIndexPath(index: number): string {
  const digits = String(index);
  const groups: string[] = [];
  for (let end = digits.length; end > 0; end -= 3) groups.unshift(digits.slice(Math.max(0, end - 3), end).padStart(3, "0"));
  return groups.map((g, i) => (i < groups.length - 1 ? `x${g}` : g)).join("/");
}

/** The path of a hash tile (level a number) or an entry bundle (level `"entries"`), relative to the log's prefix. */
export function tilePath(level: number | "entries", index: number, width = TILE_WIDTH): string {
  const partial = width < TILE_WIDTH ? `.p/${width}` : "";
  return `tile/${level}/${tileIndexPath(index)}${partial}`;
}

const DECIMAL = /^(0|[1-9]\d*)$/;

/**
 * A path of the layout read back (`tile/...`, no leading slash), or undefined when it is not one
 * in its canonical spelling: one spelling per tile, so a cache or a mirror never holds two.
 */
export function parseTilePath(path: string): { level: number | "entries"; index: number; width: number } | undefined {
  const parts = path.split("/");
  if (parts[0] !== "tile" || parts.length < 3) return undefined;
  const levelText = parts[1]!;
  let level: number | "entries";
  if (levelText === "entries") level = "entries";
  else if (DECIMAL.test(levelText) && Number(levelText) <= 63) level = Number(levelText);
  else return undefined;
  let rest = parts.slice(2);
  let width = TILE_WIDTH;
  const p = rest.length >= 2 ? rest.at(-2)! : "";
  if (p.endsWith(".p")) {
    const w = rest.at(-1)!;
    if (!DECIMAL.test(w) || Number(w) < 1 || Number(w) >= TILE_WIDTH) return undefined;
    width = Number(w);
    rest = [...rest.slice(0, -2), p.slice(0, -2)];
  }
  const digits = rest.map((g, i) => (i < rest.length - 1 ? (/^x\d{3}$/.test(g) ? g.slice(1) : "") : /^\d{3}$/.test(g) ? g : "")).join("");
  if (digits.length !== rest.length * 3) return undefined;
  const index = Number(digits);
  if (!Number.isSafeInteger(index) || tilePath(level, index, width) !== path) return undefined;
  return { level, index, width };
}

/** How many hashes level `level` of a tree of `size` leaves has: MTHs of complete runs of 256**level leaves. */
export function hashesAt(size: number, level: number): number {
  return Math.floor(size / TILE_WIDTH ** level);
}

/**
 * Every tile of a tree of `size` leaves, level by level: the full ones, then the partial one
 * of `floor(size / 256**L) mod 256` hashes where that is not 0. A tree of 256 has one full level-0
 * tile and a level-1 partial tile of width 1, as the spec says.
 */
export function* tilesOf(size: number): Generator<TileId> {
  for (let level = 0; hashesAt(size, level) > 0; level++) {
    const count = hashesAt(size, level);
    const full = Math.floor(count / TILE_WIDTH);
    for (let index = 0; index < full; index++) yield { level, index, width: TILE_WIDTH };
    if (count % TILE_WIDTH > 0) yield { level, index: full, width: count % TILE_WIDTH };
  }
}

/** The tile of `level` that a tree of `size` leaves needs at `index`, with its width then; undefined when it has none there. */
export function tileIn(size: number, level: number, index: number): TileId | undefined {
  const count = hashesAt(size, level);
  const width = Math.min(TILE_WIDTH, count - index * TILE_WIDTH);
  return width > 0 ? { level, index, width } : undefined;
}

/** The hashes of a tile, one Buffer each (views, not copies). */
export function splitHashes(bytes: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0; at + HASH_SIZE <= bytes.length; at += HASH_SIZE) out.push(bytes.subarray(at, at + HASH_SIZE));
  return out;
}

/** An entry bundle: each entry (a record's canonical JSON bytes) after its big-endian uint16 length. */
export function entryBundle(entries: readonly Buffer[]): Buffer {
  const parts: Buffer[] = [];
  for (const entry of entries) {
    if (entry.length > 0xffff)
      throw ledgerError(TileErrorCodes.entryTooLong, `a record of ${entry.length} bytes cannot go in an entry bundle (at most 65535 bytes each)`);
    const length = Buffer.allocUnsafe(2);
    length.writeUInt16BE(entry.length);
    parts.push(length, entry);
  }
  return Buffer.concat(parts);
}
