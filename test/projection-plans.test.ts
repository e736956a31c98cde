// The projection's statements run behind `CYPHER replan=skip`, so the plan a server caches the
// first time it runs one is the plan it keeps, however the graph grows. On a new deployment that
// first time is an empty store, planned without statistics: there, one such plan scanned every tool
// call of the tenant and every output (a batch 535 ms at 15,000 events, 6.5 s at 211,000). So each
// statement's plan is checked on an empty store of its own and on the shared one (whatever the
// suite has written): every node it reads is found by an exact key, or reached from one.
import type { Driver } from "neo4j-driver";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Graph, PROJECTION_PLAN_OPTION, PROJECTION_STATEMENTS_DIR } from "@auditgraph/graph";
import { isolatedConfig } from "./helpers.js";
import { Neo4jProcess } from "./neo4j-process.js";

// What the projection sends: each file behind the plan option (packages/graph/test/projection-statements.test.ts).
const STATEMENTS = readdirSync(PROJECTION_STATEMENTS_DIR, { recursive: true, encoding: "utf8" })
  .filter((f) => f.endsWith(".cypher"))
  .sort()
  .map((f) => ({ name: f, cypher: `${PROJECTION_PLAN_OPTION}\n${readFileSync(join(PROJECTION_STATEMENTS_DIR, f), "utf8")}` }));

/** Operators that read nodes by label or by a range of an index: their cost grows with the graph. */
const GROWING =
  /^(AllNodesScan|NodeByLabelScan|UnionNodeByLabelsScan|IntersectionNodeByLabelsScan|NodeIndexScan|NodeIndexSeekByRange|NodeIndexContainsScan|NodeIndexEndsWithScan|NodeUniqueIndexSeekByRange|DirectedRelationshipTypeScan|UndirectedRelationshipTypeScan)/;

interface PlanNode {
  operatorType: string;
  arguments?: Record<string, unknown>;
  children?: PlanNode[];
}

/** The operators of `plan` that read a growing part of the store, as "Operator [details]". */
function growingReads(plan: PlanNode, out: string[] = []): string[] {
  const op = plan.operatorType.replace(/@.*$/, "");
  const details = String(plan.arguments?.Details ?? "");
  // An index seek on `IS NOT NULL` of a key property reads every entry of the index that has it.
  if (GROWING.test(op) || (/IndexSeek/.test(op) && /IS NOT NULL/.test(details))) out.push(`${op} [${details}]`);
  for (const child of plan.children ?? []) growingReads(child, out);
  return out;
}

async function scansOf(driver: Driver, database: string): Promise<Record<string, string[]>> {
  const session = driver.session({ database, defaultAccessMode: "READ" });
  try {
    const found: Record<string, string[]> = {};
    for (const { name, cypher } of STATEMENTS) {
      const result = await session.run(`EXPLAIN ${cypher}`);
      const reads = growingReads(result.summary.plan as unknown as PlanNode);
      if (reads.length > 0) found[name] = reads;
    }
    return found;
  } finally {
    await session.close();
  }
}

describe("the projection's plans do not depend on the store's statistics", () => {
  let own: Neo4jProcess;
  let ownGraph: Graph;

  beforeAll(async () => {
    own = await Neo4jProcess.create({ heap: "512m" });
    await own.start();
    ownGraph = new Graph(own.config);
    await ownGraph.migrate();
  }, 180_000);

  afterAll(async () => {
    await ownGraph?.close();
    await own?.remove();
  });

  it("reads no node by label or index range on an empty store (a new deployment's first batch)", async () => {
    expect(STATEMENTS.length).toBeGreaterThan(20);
    expect(await scansOf(ownGraph.driver, ownGraph.database)).toEqual({});
  });

  it("reads no node by label or index range on the shared store", async () => {
    const graph = new Graph((await isolatedConfig()).neo4j);
    try {
      await graph.migrate();
      expect(await scansOf(graph.driver, graph.database)).toEqual({});
    } finally {
      await graph.close();
    }
  });

  it("sees a statement that would scan (the check can fail)", async () => {
    const session = ownGraph.driver.session({ database: ownGraph.database });
    try {
      const plan = (await session.run("EXPLAIN UNWIND $rows AS r MATCH (o:Output) WHERE o.id < r.before RETURN o")).summary.plan as unknown as PlanNode;
      expect(growingReads(plan).join()).toMatch(/NodeIndexSeekByRange|NodeByLabelScan/);
    } finally {
      await session.close();
    }
  });
});
