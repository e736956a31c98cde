import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { AuditgraphError } from "@auditgraph/core";

/** The projection's statements: graph-schema/projection/<family>/<name>.cypher, shipped with the package. */
export const PROJECTION_STATEMENTS_DIR = fileURLToPath(new URL("../../graph-schema/projection/", import.meta.url));

/**
 * Sent before every projection statement: a plan already cached is kept when the store's
 * statistics move. A growing graph crosses Neo4j's divergence threshold again and again during a
 * load, and each time every statement of the next batch is planned anew (each plan 60-400 ms on
 * this machine: a third of the statements' server time in a 60,000-event load). A kept plan may
 * have been made on an empty store (a new deployment's first batch), so no statement may leave its
 * plan to the statistics: each reads nodes by an exact key (an index hint where an empty store's plan
 * read a range) and expands from them; test/projection-plans.test.ts checks the plans on an empty
 * store and a full one. A schema change (a migration) still clears the cache.
 */
export const PROJECTION_PLAN_OPTION = "CYPHER replan=skip";

/**
 * One projection statement, read when its family's module loads (once, synchronously), so a
 * missing or empty file stops the worker at start rather than on the first batch that needs it.
 * The file's text is sent as it is, byte for byte, behind PROJECTION_PLAN_OPTION.
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
  return `${PROJECTION_PLAN_OPTION}\n${text}`;
}
