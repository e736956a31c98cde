import { existsSync, readFileSync, readdirSync } from "node:fs";
import { join, relative } from "node:path";
import { describe, expect, it } from "vitest";
import { verifyConsistency, verifyInclusion } from "../src/index.js";

// transparency-dev/merkle's RFC 9162 vectors, read in place (Apache-2.0, LICENSE beside them):
// every happy path must verify, every other file must be refused. They sit beside the project
// (`../shared/vectors`, as in CI), or where AUDITGRAPH_VECTORS_DIR says; a clone elsewhere has none.
const VECTORS = process.env.AUDITGRAPH_VECTORS_DIR ?? join(import.meta.dirname, "../../../../shared/vectors");
const ROOT = join(VECTORS, "transparency-dev-merkle/testdata");

interface Vector {
  desc: string;
  wantErr: boolean;
  proof: string[] | null;
  leafIdx?: number;
  treeSize?: number;
  root?: string | null;
  leafHash?: string | null;
  size1?: number;
  size2?: number;
  root1?: string | null;
  root2?: string | null;
}

function vectors(kind: "inclusion" | "consistency"): [string, Vector][] {
  const dir = join(ROOT, kind);
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith(".json"))
    .map((e) => join(e.parentPath, e.name))
    .sort()
    .map((path) => [relative(ROOT, path), JSON.parse(readFileSync(path, "utf8")) as Vector]);
}

const bytes = (b64: string | null | undefined) => Buffer.from(b64 ?? "", "base64");
const proofOf = (v: Vector) => (v.proof ?? []).map(bytes);

/** Whether `check` refuses (throws); a vector that wants an error must be refused, every other accepted. */
function refused(check: () => void): boolean {
  try {
    check();
    return false;
  } catch {
    return true;
  }
}

describe.skipIf(!existsSync(ROOT) && !process.env.CI)(`RFC 9162 vectors (transparency-dev/merkle, ${ROOT})`, () => {
  const inclusion = vectors("inclusion");
  const consistency = vectors("consistency");

  it("are all there: 98 inclusion and 98 consistency cases", () => {
    expect(inclusion).toHaveLength(98);
    expect(consistency).toHaveLength(98);
  });

  it.each(inclusion)("inclusion %s", (_name, v) => {
    expect(refused(() => verifyInclusion(bytes(v.leafHash), v.leafIdx!, v.treeSize!, proofOf(v), bytes(v.root)))).toBe(v.wantErr);
  });

  it.each(consistency)("consistency %s", (_name, v) => {
    expect(refused(() => verifyConsistency(v.size1!, v.size2!, proofOf(v), bytes(v.root1), bytes(v.root2)))).toBe(v.wantErr);
  });
});
