import { readFileSync, readdirSync } from "node:fs";
import { join, relative } from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = join(import.meta.dirname, "../../..");
const MAX_LINES = 400;

describe("source shape", () => {
  it(`no file under packages/*/src is longer than ${MAX_LINES} lines (short enough to read in one sitting)`, () => {
    const long: string[] = [];
    let files = 0;
    for (const pkg of readdirSync(join(ROOT, "packages"))) {
      for (const entry of readdirSync(join(ROOT, "packages", pkg, "src"), { withFileTypes: true, recursive: true })) {
        if (!entry.isFile() || !entry.name.endsWith(".ts")) continue;
        files += 1;
        const path = join(entry.parentPath, entry.name);
        const lines = readFileSync(path, "utf8").split("\n").length - 1;
        if (lines > MAX_LINES) long.push(`${relative(ROOT, path)}: ${lines} lines`);
      }
    }
    expect(files).toBeGreaterThan(100);
    expect(long).toEqual([]);
  });
});
