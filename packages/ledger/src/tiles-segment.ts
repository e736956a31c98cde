import { mkdir, readdir, readFile, rename, rm, stat, unlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { HASH_SIZE } from "./merkle-tree.js";
import { FULL_TILE_BYTES, TILE_WIDTH, tilePath, type TileData } from "./tiles.js";
import type { TileStore } from "./tiles-tree.js";

const WIDTH = /^[1-9]\d{0,2}$/;
let temporary = 0;

/**
 * A segment-ledger stream's tiles as files in the tlog-tiles layout, under `tile/` in the
 * stream's directory: `tile/<L>/<N>` and `tile/<L>/<N>.p/<W>`, so the directory can be served
 * as it is. They are never fsynced: the records are, and tiles a crash loses are rebuilt from
 * them. A partial tile is written under a temporary name and renamed, so a reader never meets
 * half of one (a full one is made in place: a reader that meets it half written takes it for
 * missing); a partial tile replaced by a wider one (or by its full tile) is removed.
 */
export class SegmentTileStore implements TileStore {
  /** The widest partial tile this store wrote at each place, so the next one removes it without a listing. */
  private readonly partials = new Map<string, number>();

  constructor(
    readonly streamDir: string,
    readonly leaves: (from: number, to: number) => Promise<Buffer[]>,
  ) {}

  private path(level: number, index: number, width = TILE_WIDTH): string {
    return join(this.streamDir, ...tilePath(level, index, width).split("/"));
  }

  /** The widths of the partial tiles stored at a place, widest first. */
  private async partialWidths(level: number, index: number): Promise<number[]> {
    const names = await readdir(`${this.path(level, index)}.p`).catch(() => [] as string[]);
    return names
      .filter((n) => WIDTH.test(n) && Number(n) < TILE_WIDTH)
      .map(Number)
      .sort((a, b) => b - a);
  }

  async read(level: number, index: number): Promise<Buffer | undefined> {
    const full = await readFile(this.path(level, index)).catch(() => undefined);
    if (full?.length === FULL_TILE_BYTES) return full;
    // A file of the wrong length (a crash before its data reached the disk) is no tile.
    for (const width of await this.partialWidths(level, index)) {
      const partial = await readFile(this.path(level, index, width)).catch(() => undefined);
      if (partial?.length === width * HASH_SIZE) return partial;
    }
    return undefined;
  }

  async write(tiles: readonly TileData[], replace: boolean): Promise<void> {
    for (const tile of tiles) {
      const { level, index } = tile;
      const width = tile.hashes.length / HASH_SIZE;
      const key = `${level}/${index}`;
      const path = this.path(level, index);
      if (width === TILE_WIDTH) {
        if (
          !replace &&
          (await stat(path).then(
            (st) => st.size === FULL_TILE_BYTES,
            () => false,
          ))
        )
          continue;
        // A new full tile is made in place: one file made, no rename (each is journalled by the
        // segment's next fsync). One cut short by a crash has the wrong length, so is no tile,
        // and is replaced whole.
        if (!replace || !(await createWith(path, tile.hashes))) await atomicWrite(path, tile.hashes);
        if (this.partials.has(key) || !replace) await rm(`${path}.p`, { recursive: true, force: true });
        this.partials.delete(key);
        continue;
      }
      // A repair (or a catch-up) writes only what the store lacks, or holds cut short.
      if (!replace && ((await this.read(level, index))?.length ?? 0) >= tile.hashes.length) continue;
      const known = this.partials.get(key);
      const others = replace && known !== undefined ? [known] : await this.partialWidths(level, index);
      await atomicWrite(this.path(level, index, width), tile.hashes);
      this.partials.set(key, width);
      for (const w of others) if (w !== width && (w < width || replace)) await unlink(this.path(level, index, w)).catch(() => undefined);
    }
  }
}

/** Writes a file that must not exist yet; false if it does. */
async function createWith(path: string, bytes: Buffer): Promise<boolean> {
  const create = () => writeFile(path, bytes, { flag: "wx" });
  try {
    await create().catch(async (error: NodeJS.ErrnoException) => {
      if (error.code !== "ENOENT") throw error;
      await mkdir(join(path, ".."), { recursive: true });
      await create();
    });
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw error;
  }
}

async function atomicWrite(path: string, bytes: Buffer): Promise<void> {
  const temp = `${path}.${process.pid}.${++temporary}.tmp`;
  try {
    await writeFile(temp, bytes);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    await mkdir(join(path, ".."), { recursive: true });
    await writeFile(temp, bytes);
  }
  await rename(temp, path);
}
