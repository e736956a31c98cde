import { randomUUID } from "node:crypto";
import { link, mkdir, open, readFile, unlink } from "node:fs/promises";
import { join } from "node:path";
import { z } from "zod";
import { parseWith } from "@auditgraph/core";

/** The file in a segment ledger's directory that names the ledger; written once, never changed. */
export const LEDGER_FILE = "ledger.json";

export const LedgerFileSchema = z
  .object({
    ledgerId: z.uuid(),
    createdAt: z.iso.datetime({ offset: true }),
  })
  .strict();

const code = (error: unknown) => (error as { code?: unknown }).code;

/**
 * The id of the segment ledger in `dir`, made on first use. The file is written whole under a
 * temporary name and linked into place, which fails if it exists: of processes racing to create
 * the ledger, one id wins and every one of them reads it, never a half-written file.
 */
export async function segmentLedgerId(dir: string): Promise<string> {
  const path = join(dir, LEDGER_FILE);
  const read = async () => parseWith(LedgerFileSchema, JSON.parse(await readFile(path, "utf8")), path).ledgerId;
  try {
    return await read();
  } catch (error) {
    if (code(error) !== "ENOENT") throw error;
  }
  await mkdir(dir, { recursive: true });
  const temporary = `${path}.${randomUUID()}.tmp`;
  const handle = await open(temporary, "wx");
  try {
    await handle.writeFile(`${JSON.stringify({ ledgerId: randomUUID(), createdAt: new Date().toISOString() })}\n`);
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await link(temporary, path);
  } catch (error) {
    if (code(error) !== "EEXIST") throw error;
  } finally {
    await unlink(temporary).catch(() => undefined);
  }
  return read();
}
