import { randomUUID } from "node:crypto";
import { afterAll, describe, expect, it } from "vitest";
import { awaitAllCallbacks } from "@langchain/core/callbacks/promises";
import { AIMessage, ToolMessage, type BaseMessage } from "@langchain/core/messages";
import { fakeModel } from "@langchain/core/testing";
import { tool } from "@langchain/core/tools";
import { createAgent } from "langchain";
import { z } from "zod";
import { isSealed, streamIdFor, type LedgerRecord } from "@auditgraph/core";
import { investigate, type Graph } from "@auditgraph/graph";
import { AuditCallbackHandler, METADATA_KEYS, QueueTransport } from "@auditgraph/langchain";
import { waitUntilIdle } from "@auditgraph/worker";
import { dumpTenant } from "./graph-dump.js";
import { cliEnvOf, inClear, isolatedConfig, runCli, startPipeline } from "./helpers.js";

const RATES: Record<string, number> = { EUR: 0.92, GBP: 0.79 };

/** A tool that fails on a currency it does not know, as a real one would. */
const convert = tool(
  ({ amount, currency }) => {
    const rate = RATES[currency];
    if (rate === undefined) throw new Error(`unknown currency ${currency}`);
    return String(Math.round(amount * rate * 100) / 100);
  },
  {
    name: "convert_usd",
    description: "Convert an amount in USD to another currency.",
    schema: z.object({ amount: z.number(), currency: z.string() }),
  },
);

const lastToolText = (messages: BaseMessage[]) => [...messages].reverse().find((m) => ToolMessage.isInstance(m))?.text ?? "";

/**
 * A model that reuses its tool-call id across turns, as providers do: `call_1` asks for XXX, and
 * after the tool's error, `call_1` again asks for EUR.
 */
const currencyModel = () =>
  fakeModel()
    .respond(
      () => new AIMessage({ content: "", tool_calls: [{ id: "call_1", name: "convert_usd", args: { amount: 100, currency: "XXX" }, type: "tool_call" }] }),
    )
    .respond(
      () => new AIMessage({ content: "", tool_calls: [{ id: "call_1", name: "convert_usd", args: { amount: 100, currency: "EUR" }, type: "tool_call" }] }),
    )
    .respond((messages) => new AIMessage(`100 USD are ${lastToolText(messages)} EUR.`));

const TOOL_RUNS = `
MATCH (x:ToolCall {tenantId: $tenantId})
OPTIONAL MATCH (c:LLMCall)-[:REQUESTED]->(x)
OPTIONAL MATCH (c)-[:GENERATED]->(o:Output)
RETURN x.callId AS callId, x.runId AS runId, x.status AS status, x.input AS input, x.output AS output, x.error AS error,
       x.requestedArgs AS requestedArgs, x.startEventId AS startEventId, collect(o.id) AS askedBy
ORDER BY startEventId`;

let pipeline: Awaited<ReturnType<typeof startPipeline>> | undefined;
afterAll(() => pipeline?.stop());

describe("a tool-call id reused across turns: every tool run is a ToolCall of its own", () => {
  it("keeps the failed run and the later successful one apart, each linked to the LLM call that asked, in the graph, trace-output and after rebuild-graph", async () => {
    const config = await isolatedConfig();
    pipeline = await startPipeline(config);
    const transport = new QueueTransport({ connection: config.redis, queueName: config.queueName, spoolDir: config.spoolDir });
    const handler = new AuditCallbackHandler({ agent: { id: "fx-agent", name: "FX agent", version: "1.0.0" } }, transport);
    const tenantId = `tool-runs-${randomUUID().slice(0, 8)}`;
    try {
      const agent = createAgent({ model: currencyModel(), tools: [convert], systemPrompt: "Convert amounts with the tool." });
      const result = await agent.invoke(
        { messages: [{ role: "user", content: "What are 100 USD in my currency?" }] },
        { runId: randomUUID(), callbacks: [handler], metadata: { [METADATA_KEYS.userId]: "fx-user", [METADATA_KEYS.tenantId]: tenantId } },
      );
      expect(result.messages.at(-1)!.text).toBe("100 USD are 92 EUR.");
      await awaitAllCallbacks();
      await handler.flush();
      await waitUntilIdle(pipeline.queue);
    } finally {
      await transport.close();
    }
    const graph: Graph = pipeline.graph;
    const outputs = await graph.read(`MATCH (o:Output {tenantId: $tenantId}) RETURN o.id AS id ORDER BY o.id`, { tenantId });
    expect(outputs).toHaveLength(3);
    const [firstAsk, secondAsk, answer] = outputs.map((o) => o.id as string);

    const check = async () => {
      const runs = await graph.read(TOOL_RUNS, { tenantId });
      expect(runs).toHaveLength(2);
      expect(runs[0]).toMatchObject({ callId: "call_1", status: "error", output: null, askedBy: [firstAsk] });
      expect(JSON.parse(runs[0]!.input as string)).toContain("XXX");
      expect(JSON.parse(runs[0]!.requestedArgs as string)).toEqual({ amount: 100, currency: "XXX" });
      expect(runs[0]!.error).toContain("unknown currency XXX");
      expect(runs[1]).toMatchObject({ callId: "call_1", status: "ok", error: null, askedBy: [secondAsk] });
      expect(JSON.parse(runs[1]!.input as string)).toContain("EUR");
      expect(JSON.parse(runs[1]!.requestedArgs as string)).toEqual({ amount: 100, currency: "EUR" });
      expect(runs[1]!.output).toContain("92");
      expect(runs[0]!.runId).not.toBe(runs[1]!.runId);

      const [row] = await investigate(graph, "trace-output", { tenantId, outputId: answer! });
      const toolCalls = row!.toolCalls.map((t) => ({
        callId: t.callId,
        status: t.status,
        requestedBy: t.requestedBy,
        error: t.error ? JSON.stringify(t.error) : null,
      }));
      const llmCalls = await graph.read(`MATCH (c:LLMCall)-[:GENERATED]->(o:Output {tenantId: $tenantId}) RETURN c.id AS id ORDER BY o.id`, { tenantId });
      expect(toolCalls).toEqual([
        { callId: "call_1", status: "error", requestedBy: llmCalls[0]!.id, error: expect.stringContaining("unknown currency XXX") },
        { callId: "call_1", status: "ok", requestedBy: llmCalls[1]!.id, error: null },
      ]);
      // No request is left waiting for a run: both were answered.
      expect(await graph.read(`MATCH (x:ToolCall {tenantId: $tenantId, status: 'requested'}) RETURN x`, { tenantId })).toEqual([]);
    };
    await check();
    const live = await dumpTenant(graph, tenantId);

    const rebuilt = await runCli(cliEnvOf(config), "rebuild-graph", "--tenant", tenantId, "--replace");
    expect(rebuilt.stderr).not.toContain("Error");
    expect(rebuilt.code).toBe(0);
    await check();
    expect(await dumpTenant(graph, tenantId)).toEqual(live);

    // Order-independent and idempotent: one event a batch, last first (the second run before the
    // first, each run before the LLM call that asked for it, its end before its start), then all again.
    const records: LedgerRecord[] = [];
    for await (const r of pipeline.ledger.readStream(streamIdFor(tenantId))) records.push(r);
    await graph.deleteProjection({ tenantId });
    // A request no run has answered yet is a ToolCall of its own, 'requested', hung off its LLM call.
    const firstAskEnd = records.findIndex((r) => !isSealed(r.event) && r.event.type === "llm.end");
    await graph.project(inClear(records.slice(0, firstAskEnd + 1)));
    expect(await graph.read(TOOL_RUNS, { tenantId })).toEqual([
      {
        callId: "call_1",
        runId: null,
        status: "requested",
        input: null,
        output: null,
        error: null,
        requestedArgs: JSON.stringify({ amount: 100, currency: "XXX" }),
        startEventId: null,
        askedBy: [firstAsk],
      },
    ]);
    for (const r of inClear(records).reverse()) await graph.project([r]);
    await check();
    expect(await dumpTenant(graph, tenantId)).toEqual(live);
    await graph.project(inClear(records));
    expect(await dumpTenant(graph, tenantId)).toEqual(live);
  });
});
