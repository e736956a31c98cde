// The projection's statements are files in graph-schema/projection/<family>/: every step's is one
// of them byte for byte behind the plan option (replan=skip), every file is some step's, and a missing one fails with a coded error.
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { isAuditgraphError } from "@auditgraph/core";
import { STEPS } from "../src/projection/order.js";
import { PROJECTION_PLAN_OPTION, PROJECTION_STATEMENTS_DIR, statement } from "../src/projection/statement.js";

const files = readdirSync(PROJECTION_STATEMENTS_DIR, { recursive: true, encoding: "utf8" })
  .filter((f) => f.endsWith(".cypher"))
  .map((f) => readFileSync(join(PROJECTION_STATEMENTS_DIR, f), "utf8"));

describe("projection statements", () => {
  it("sends each step's file as it is behind the plan option, and leaves no file unused", () => {
    expect(PROJECTION_PLAN_OPTION).toBe("CYPHER replan=skip");
    const sent = Object.values(STEPS).map((step) => {
      expect(step.cypher.startsWith(`${PROJECTION_PLAN_OPTION}\n`)).toBe(true);
      return step.cypher.slice(PROJECTION_PLAN_OPTION.length + 1);
    });
    for (const cypher of sent) expect(files).toContain(cypher);
    expect(new Set(files)).toEqual(new Set(sent));
    expect(files).toHaveLength(Object.keys(STEPS).length);
  });

  it("refuses a missing statement, naming its file", () => {
    let thrown: unknown;
    try {
      statement("traces", "no-such-statement");
    } catch (error) {
      thrown = error;
    }
    expect(isAuditgraphError(thrown, "AUDITGRAPH_E_PROJECTION_STATEMENT_MISSING")).toBe(true);
    expect((thrown as Error).message).toContain(join(PROJECTION_STATEMENTS_DIR, "traces", "no-such-statement.cypher"));
  });
});
