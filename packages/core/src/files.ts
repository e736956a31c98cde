import { open } from "node:fs/promises";

/**
 * Appends `data` to `path` and fsyncs it before resolving. Whole or not at all, as far as a
 * caller can tell: `FileHandle.write` may write part of a buffer and resolve (a disk filling
 * up does that), while `appendFile` goes on until all of it is written or a write fails.
 */
export async function appendSynced(path: string, data: string | Buffer): Promise<void> {
  const handle = await open(path, "a");
  try {
    await handle.appendFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
}
