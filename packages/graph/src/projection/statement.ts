import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { AuditgraphError } from "@auditgraph/core";

/** The projection's statements: graph-schema/projection/<family>/<name>.cypher, shipped with the package. */
export const PROJECTION_STATEMENTS_DIR = fileURLToPath(new URL("../../graph-schema/projection/", import.meta.url));

/**
 * One projection statement, read when its family's module loads (once, synchronously), so a
 * missing or empty file stops the worker at start rather than on the first batch that needs it.
 * The file's text is sent as it is, byte for byte, as the investigations' are.
 */
export function statement(family: string, name: string): string {
  const file = `${PROJECTION_STATEMENTS_DIR}${family}/${name}.cypher`;
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    throw new AuditgraphError("AUDITGRAPH_E_PROJECTION_STATEMENT_MISSING", `projection statement ${family}/${name}: cannot read ${file}`, { cause: error });
  }
  if (text.trim() === "") throw new AuditgraphError("AUDITGRAPH_E_PROJECTION_STATEMENT_MISSING", `projection statement ${family}/${name}: ${file} is empty`);
  return text;
}
