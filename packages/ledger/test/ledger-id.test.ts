import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { sampleEvent } from "../../core/test/fixtures.js";
import { LEDGER_FILE, SegmentLedger } from "../src/index.js";

const dirs: string[] = [];
afterEach(async () => {
  while (dirs.length) await rm(dirs.pop()!, { recursive: true, force: true });
});
const fresh = async () => {
  const root = await mkdtemp(join(tmpdir(), "auditgraph-ledger-id-"));
  dirs.push(root);
  return join(root, "ledger");
};

describe("a segment ledger's id", () => {
  it("is written once, in ledger.json, when the ledger's first record is; every later opening reads the same", async () => {
    const dir = await fresh();
    const ledger = new SegmentLedger(dir);
    await ledger.append("s1", [sampleEvent()]);
    const file = JSON.parse(await readFile(join(dir, LEDGER_FILE), "utf8")) as { ledgerId: string; createdAt: string };
    expect(file.ledgerId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(await ledger.id()).toBe(file.ledgerId);
    await ledger.append("s2", [sampleEvent()]);
    await ledger.close();
    expect(await new SegmentLedger(dir).id()).toBe(file.ledgerId);
    expect(JSON.parse(await readFile(join(dir, LEDGER_FILE), "utf8"))).toEqual(file);
  });

  it("is one id for ledgers opened on one directory at once, and another for another directory", async () => {
    const dir = await fresh();
    const ids = await Promise.all(Array.from({ length: 8 }, () => new SegmentLedger(dir).id()));
    expect(new Set(ids).size).toBe(1);
    // No temporary file of the losers is left behind.
    expect(await readdir(dir)).toEqual([LEDGER_FILE]);
    expect(await new SegmentLedger(await fresh()).id()).not.toBe(ids[0]);
  });

  it("refuses a ledger.json that is not one, naming the file", async () => {
    const dir = await fresh();
    await new SegmentLedger(dir).id();
    await writeFile(join(dir, LEDGER_FILE), JSON.stringify({ ledgerId: "not-a-uuid", createdAt: "2026-01-01T00:00:00Z" }));
    await expect(new SegmentLedger(dir).id()).rejects.toThrow(new RegExp(`${LEDGER_FILE}.*ledgerId`));
  });
});
