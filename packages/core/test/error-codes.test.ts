import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { AuditgraphError, LEGACY_ERROR_CODES, isAuditgraphError } from "../src/index.js";

const ROOT = join(import.meta.dirname, "../../..");

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith(".ts"))
    .map((e) => join(e.parentPath, e.name));
}

/** Every code the packages' sources name: `AUDITGRAPH_E_...` and the legacy ones. */
function codesInSource(): Set<string> {
  const found = new Set<string>();
  for (const pkg of readdirSync(join(ROOT, "packages"))) {
    for (const file of sources(join(ROOT, "packages", pkg, "src"))) {
      for (const m of readFileSync(file, "utf8").matchAll(/AUDITGRAPH_E_[A-Z0-9_]*[A-Z0-9]/g)) found.add(m[0]);
    }
  }
  for (const code of LEGACY_ERROR_CODES) found.add(code);
  return found;
}

/** The codes docs/errors.md documents: its table rows' first cells. */
function codesInDocs(): Set<string> {
  const page = readFileSync(join(ROOT, "docs/errors.md"), "utf8");
  return new Set([...page.matchAll(/^\| `(AUDITGRAPH_[A-Z0-9_]+)` \|/gm)].map((m) => m[1]!));
}

describe("error codes", () => {
  it("every code in the source is documented in docs/errors.md, and the page lists none that no longer exists", () => {
    const source = codesInSource();
    const docs = codesInDocs();
    expect(source.size).toBeGreaterThan(40);
    expect([...source].filter((c) => !docs.has(c)).sort()).toEqual([]);
    // The CLI's exit-2 codes are documented there too, though they are not AUDITGRAPH_E_ codes.
    const cli = new Set(["AUDITGRAPH_USAGE", "AUDITGRAPH_CONFIG", "AUDITGRAPH_CANNOT_VERIFY"]);
    expect([...docs].filter((c) => !source.has(c) && !cli.has(c)).sort()).toEqual([]);
  });

  it("an AuditgraphError carries its code and cause, and isAuditgraphError tells codes apart", () => {
    const cause = new Error("disk full");
    const error = new AuditgraphError("AUDITGRAPH_E_TEST", "could not", { cause });
    expect(error).toBeInstanceOf(Error);
    expect(error).toMatchObject({ code: "AUDITGRAPH_E_TEST", message: "could not", cause, name: "AuditgraphError" });
    expect(isAuditgraphError(error)).toBe(true);
    expect(isAuditgraphError(error, "AUDITGRAPH_E_TEST")).toBe(true);
    expect(isAuditgraphError(error, "AUDITGRAPH_E_OTHER")).toBe(false);
    expect(isAuditgraphError(cause)).toBe(false);
  });
});
