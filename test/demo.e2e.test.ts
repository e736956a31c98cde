import { readFile } from "node:fs/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Graph } from "@auditgraph/graph";
import { SegmentLedger } from "@auditgraph/ledger";
import { openRecords } from "@auditgraph/core";
import { runDemo, keyStoreOf, DEMO_IDENTITY, DEMO_MODEL_VERSION, type Config, type DemoResult } from "@auditgraph/cli";
import { isolatedConfig, readAll } from "./helpers.js";

let config: Config;
let result: DemoResult;
let graph: Graph;
const printed: string[] = [];

beforeAll(async () => {
  config = await isolatedConfig();
  result = await runDemo(config, (line) => printed.push(line));
  graph = new Graph(config.neo4j);
});
afterAll(async () => {
  await graph?.close();
});

describe("the demo's audited agent, end to end through BullMQ, the ledger and Neo4j", () => {
  it("answers from its real tool results", () => {
    expect(result.answer).toBe("3 × KB-ERGO-2 (Ergonomic keyboard, split layout) cost 268.5 EUR in total.");
  });

  it("puts every tool call and the final output in the ledger, sealed for the user, verified", async () => {
    const records = await readAll(new SegmentLedger(config.ledgerDir));
    // Ciphertext on disk: the answer is readable only through the user's data key.
    expect(JSON.stringify(records)).not.toContain("268.5");
    const opened = await openRecords(records, keyStoreOf(config));
    const events = opened.flatMap((o) => (o.erased ? [] : [o.record.event])).filter((e) => e.traceId === result.traceId);
    expect(events).toHaveLength(opened.length);
    const toolEnds = events.filter((e) => e.type === "tool.end");
    expect(toolEnds.map((e) => e.name).sort()).toEqual(["calculator", "catalog_lookup"]);
    expect(toolEnds.map((e) => e.type === "tool.end" && e.payload.output)).toContain("268.5");
    const outputs = events.filter((e) => e.type === "llm.end");
    expect(outputs.at(-1)?.type === "llm.end" && outputs.at(-1)).toMatchObject({ payload: { output: { text: result.answer } } });
    for (const e of events) expect("identity" in e && e.identity).toEqual(DEMO_IDENTITY);
    // The worker's clock is kept beside the client's.
    for (const r of records) expect(Date.parse(r.recordedAt)).toBeGreaterThanOrEqual(Date.parse(r.event.occurredAt) - 5_000);
    expect(result.verify).toMatchObject({ ok: true, count: records.length });
  });

  it("links the final Output back to its Prompt, ModelVersion, User and Agent in one Cypher path", async () => {
    const rows = await graph.read(
      `MATCH (p:Prompt)-[:INPUT_TO]->(c:LLMCall)-[:GENERATED]->(o:Output {traceId: $traceId}),
             (c)-[:USED_MODEL]->(m:ModelVersion),
             (c)-[:PART_OF]->(t:Trace {id: $traceId})-[:REQUESTED_BY]->(u:User),
             (t)-[:HANDLED_BY]->(:AgentVersion)<-[:HAS_VERSION]-(a:Agent)-[:ACTED_ON_BEHALF_OF {traceId: $traceId}]->(u)
       WHERE o.text = $answer
       RETURN p.messages AS prompt, m.version AS version, u.id AS user, u.tenantId AS tenant, a.id AS agent`,
      { traceId: result.traceId, answer: result.answer },
    );
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ version: DEMO_MODEL_VERSION, user: "alice", tenant: "acme", agent: "order-assistant" });
    expect(JSON.parse(rows[0]!.prompt as string).at(-1)).toMatchObject({ role: "tool", content: "268.5" });
  });

  it("has both tool calls in the graph, each linked to the LLM call that requested it", async () => {
    const rows = await graph.read(
      `MATCH (c:LLMCall)-[:REQUESTED]->(x:ToolCall)-[:PART_OF]->(:Trace {id: $traceId}), (x)-[:INVOKED]->(tool:Tool)
       RETURN tool.name AS tool, x.status AS status, x.output AS output ORDER BY tool`,
      { traceId: result.traceId },
    );
    expect(rows).toEqual([
      { tool: "calculator", status: "ok", output: '"268.5"' },
      { tool: "catalog_lookup", status: "ok", output: expect.stringContaining("KB-ERGO-2") },
    ]);
  });

  it("prints the lineage read back from Neo4j and ends with verify OK", () => {
    const text = printed.join("\n");
    expect(result.lineage.output.text).toBe(result.answer);
    expect(result.lineage.toolCalls.map((t) => t.name)).toEqual(["catalog_lookup", "calculator"]);
    expect(text).toContain(`${DEMO_MODEL_VERSION}`);
    expect(text).toContain("user alice of tenant acme");
    expect(text).toContain("ACTED_ON_BEHALF_OF");
    expect(text).toMatch(/OK: \d+ events in 1 streams/);
  });

  it("draws the lineage in a self-contained HTML report", async () => {
    const html = await readFile(result.reportPath, "utf8");
    expect(html).toContain('<script type="application/json" id="lineage-data">'); // drawn in the page (test/lineage-html.browser.test.ts)
    expect(html).toContain("ACTED_ON_BEHALF_OF");
    expect(html).toContain(result.answer.replace("×", "×"));
    expect(html).toContain(DEMO_MODEL_VERSION);
    expect(html).not.toMatch(/<script[^>]*\ssrc=|(src|href)="https?:/); // self-contained: nothing fetched
  });

  it("answers `trace` by output id as by trace id", async () => {
    const byOutput = await graph.lineage(result.lineage.output.id);
    expect(byOutput).toEqual(result.lineage);
  });
});
