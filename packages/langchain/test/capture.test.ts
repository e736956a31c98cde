import { describe, expect, it } from "vitest";
import { randomUUID } from "node:crypto";
import { AIMessage, AIMessageChunk } from "@langchain/core/messages";
import { awaitAllCallbacks } from "@langchain/core/callbacks/promises";
import { dispatchCustomEvent } from "@langchain/core/callbacks/dispatch";
import { Document } from "@langchain/core/documents";
import { BaseRetriever } from "@langchain/core/retrievers";
import { fakeModel } from "@langchain/core/testing";
import { FakeStreamingChatModel } from "@langchain/core/utils/testing";
import { tool } from "@langchain/core/tools";
import { StateGraph, START, END, Annotation } from "@langchain/langgraph";
import { createAgent } from "langchain";
import { AgentExecutor, createToolCallingAgent } from "@langchain/classic/agents";
import { ChatPromptTemplate } from "@langchain/core/prompts";
import { z } from "zod";
import { EventSchema, type AuditEvent } from "@auditgraph/core";
import { AuditCallbackHandler, METADATA_KEYS, type HandlerOptions, type Transport } from "../src/index.js";
import { Collect } from "./collect.js";

const agent = { id: "agent-c", name: "Capture agent", version: "3.0.0" };
const user = { id: "carol", tenantId: "initech" };

function setup(options: Partial<HandlerOptions> = {}) {
  const transport = new Collect();
  const handler = new AuditCallbackHandler({ agent, user, ...options }, transport);
  return { transport, handler };
}

/** Every event valid, and every parent a run whose start we recorded earlier. */
function expectExactTree(events: AuditEvent[]) {
  const started = new Set<string>();
  for (const e of events) {
    EventSchema.parse(e);
    if (e.type.endsWith(".start")) started.add(e.runId);
    if (e.parentRunId !== null) expect(started.has(e.parentRunId), `${e.type} ${e.runId} parent`).toBe(true);
  }
  expect(new Set(events.map((e) => e.traceId)).size).toBe(1);
}

class CatalogRetriever extends BaseRetriever {
  override lc_namespace = ["test"];
  override async _getRelevantDocuments(query: string) {
    return [
      new Document({ id: "doc-1", pageContent: `Return policy for ${query}: 30 days.`, metadata: { source: "policies.md", page: 2 } }),
      new Document({ pageContent: "Shipping: 2 days.", metadata: { source: "shipping.md" } }),
    ];
  }
}

describe("capture on real LangChain agents", () => {
  it("createAgent with tools, a retriever inside a tool, reasoning, bound tools, cost and custom events", async () => {
    const retriever = new CatalogRetriever();
    const search = tool(
      async ({ query }, config) => {
        await dispatchCustomEvent("search.progress", { query, stage: "retrieving" }, config);
        const docs = await retriever.invoke(query, config);
        return docs.map((d) => d.pageContent).join("\n");
      },
      { name: "search_policies", description: "search the policy documents", schema: z.object({ query: z.string() }) },
    );
    const model = fakeModel()
      .respond(
        new AIMessage({
          content: [
            { type: "reasoning", reasoning: "The user asks about returns; I should search the policies." },
            { type: "text", text: "Let me check." },
          ],
          tool_calls: [{ id: "tc-search", name: "search_policies", args: { query: "keyboards" }, type: "tool_call" }],
          response_metadata: { model_name: "gpt-test-2026-02-01", system_fingerprint: "fp_abc123", finish_reason: "tool_calls" },
          usage_metadata: {
            input_tokens: 1000,
            output_tokens: 200,
            total_tokens: 1200,
            input_token_details: { cache_read: 400 },
            output_token_details: { reasoning: 50 },
          },
        }),
      )
      .respond(new AIMessage({ content: "Keyboards can be returned within 30 days.", additional_kwargs: { reasoning_content: "Found it in policies.md." } }));
    const { transport, handler } = setup({
      prices: { "gpt-test-2026-02-01": { input: 2, output: 8, cachedInput: 0.5, currency: "USD" } },
    });
    await createAgent({ model, tools: [search] }).invoke(
      { messages: [{ role: "user", content: "Can I return a keyboard?" }] },
      { callbacks: [handler], metadata: { [METADATA_KEYS.userRoles]: "support,admin" } },
    );
    await awaitAllCallbacks();
    const events = transport.events;
    expectExactTree(events);

    const [first, second] = transport.of("llm.end");
    expect(first!.payload.reasoning).toEqual([
      { index: 0, kind: "reasoning", text: "The user asks about returns; I should search the policies." },
      { index: 1, kind: "tool_call", toolCall: { id: "tc-search", name: "search_policies", args: { query: "keyboards" } } },
    ]);
    expect(second!.payload.reasoning).toEqual([{ index: 0, kind: "reasoning", text: "Found it in policies.md." }]);
    expect(first!.model).toMatchObject({ version: "gpt-test-2026-02-01", fingerprint: "fp_abc123" });
    expect(first!.payload.output.finishReason).toBe("tool_calls");
    expect(first!.usage).toEqual({ inputTokens: 1000, outputTokens: 200, totalTokens: 1200, cacheReadTokens: 400, reasoningTokens: 50 });
    // 600 fresh input tokens at $2/M, 400 cached at $0.5/M, 200 output at $8/M.
    expect(first!.cost).toEqual({ currency: "USD", input: 0.0014, output: 0.0016, total: 0.003 });
    expect(first!.payload).not.toHaveProperty("cost");
    expect(first!.payload.timing!.latencyMs).toBeGreaterThanOrEqual(0);

    const toolStart = transport.of("tool.start")[0]!;
    const retrieverStart = transport.of("retriever.start")[0]!;
    const retrieverEnd = transport.of("retriever.end")[0]!;
    expect(retrieverStart.parentRunId).toBe(toolStart.runId);
    expect(retrieverStart.payload.query).toBe("keyboards");
    expect(retrieverEnd.payload.documents).toEqual([
      { id: "doc-1", pageContent: "Return policy for keyboards: 30 days.", metadata: { source: "policies.md", page: 2 } },
      { pageContent: "Shipping: 2 days.", metadata: { source: "shipping.md" } },
    ]);
    const custom = transport.of("custom")[0]!;
    expect(custom.payload).toEqual({ name: "search.progress", data: { query: "keyboards", stage: "retrieving" } });
    expect(custom.parentRunId === toolStart.runId || custom.runId === toolStart.runId).toBe(true);
    for (const e of events) expect(e.identity.user).toEqual({ ...user, roles: ["support", "admin"] });
  });

  it("a streaming model: tokens aggregated with time to first token, one event per token on request; bound tools recorded", async () => {
    const chunks = ["Hel", "lo ", "world"].map((content) => new AIMessageChunk({ content }));
    const lookup = tool(() => "x", { name: "lookup", description: "look a thing up", schema: z.object({ key: z.string() }) });
    // With redaction on (the default) a token's text stays in the process: a secret can span tokens.
    const runs: Array<{ captureTokens: boolean; redactor?: false; expected: string[] }> = [
      { captureTokens: false, expected: [] },
      { captureTokens: true, redactor: false, expected: ["Hel", "lo ", "world"] },
      { captureTokens: true, expected: ["", "", ""] },
    ];
    for (const { captureTokens, redactor, expected } of runs) {
      const { transport, handler } = setup({ captureTokens, ...(redactor === false ? { redactor } : {}) });
      const model = new FakeStreamingChatModel({ chunks, sleep: 1, toolStyle: captureTokens ? "anthropic" : "openai" });
      const stream = await createAgent({ model, tools: [lookup] }).stream(
        { messages: [{ role: "user", content: "greet" }] },
        { callbacks: [handler], streamMode: "messages" },
      );
      for await (const _ of stream);
      await awaitAllCallbacks();
      expectExactTree(transport.events);
      const end = transport.of("llm.end")[0]!;
      expect(end.payload.output.text).toBe("Hello world");
      expect(end.payload.streamed).toEqual({ tokens: 3 });
      expect(end.payload.timing!.timeToFirstTokenMs).toBeGreaterThanOrEqual(0);
      expect(end.payload.timing!.timeToFirstTokenMs).toBeLessThanOrEqual(end.payload.timing!.latencyMs);
      const tokens = transport.of("llm.token");
      expect(tokens.map((t) => t.payload.token)).toEqual(expected);
      expect(tokens.map((t) => t.payload.index)).toEqual(captureTokens ? [0, 1, 2] : []);
      // The tools the model was offered, whatever the provider's format.
      expect(transport.of("llm.start")[0]!.payload.tools).toEqual([
        {
          name: "lookup",
          description: "look a thing up",
          parameters: expect.objectContaining({ type: "object", properties: { key: { type: "string" } } }),
        },
      ]);
    }
  });

  it("a LangGraph graph of two nodes: node runs with langgraph_node and step, under the graph's run", async () => {
    const State = Annotation.Root({ text: Annotation<string> });
    const graph = new StateGraph(State)
      .addNode("draft", async (s: { text: string }) => ({ text: `${s.text} drafted` }))
      .addNode("review", async (s: { text: string }) => ({ text: `${s.text} reviewed` }))
      .addEdge(START, "draft")
      .addEdge("draft", "review")
      .addEdge("review", END)
      .compile();
    const { transport, handler } = setup();
    const runId = randomUUID();
    const out = await graph.invoke({ text: "memo" }, { runId, callbacks: [handler], configurable: { thread_id: "thread-42" } });
    await awaitAllCallbacks();
    expect(out.text).toBe("memo drafted reviewed");
    expectExactTree(transport.events);
    const nodes = transport.of("chain.start").filter((e) => e.payload.graph);
    const byNode = new Map(nodes.map((e) => [e.payload.graph!.node, e]));
    expect(byNode.get("draft")).toMatchObject({ parentRunId: runId, payload: { graph: { node: "draft", step: 1 } } });
    expect(byNode.get("review")).toMatchObject({ parentRunId: runId, payload: { graph: { node: "review", step: 2 } } });
    expect(transport.events.every((e) => e.sessionId === "thread-42")).toBe(true);
    const rootEnd = transport.of("chain.end").find((e) => e.runId === runId);
    expect(rootEnd?.payload.outputs).toEqual({ text: "memo drafted reviewed" });
  });

  it("a classic AgentExecutor: each action with its log, and the finish, under the executor's run", async () => {
    const weather = tool(({ city }) => `sunny in ${city}`, { name: "weather", description: "weather by city", schema: z.object({ city: z.string() }) });
    const llm = fakeModel()
      .respondWithTools([{ id: "w1", name: "weather", args: { city: "Oslo" } }])
      .respond(new AIMessage("It is sunny in Oslo."));
    const prompt = ChatPromptTemplate.fromMessages([
      ["system", "You are a weather bot."],
      ["human", "{input}"],
      ["placeholder", "{agent_scratchpad}"],
    ]);
    const executor = new AgentExecutor({ agent: createToolCallingAgent({ llm, tools: [weather], prompt }), tools: [weather] });
    const { transport, handler } = setup();
    const out = await executor.invoke({ input: "Weather in Oslo?" }, { callbacks: [handler] });
    await awaitAllCallbacks();
    expect(out.output).toBe("It is sunny in Oslo.");
    expectExactTree(transport.events);
    const runId = transport.events.find((e) => e.parentRunId === null)!.runId;
    const [action] = transport.of("agent.action");
    expect(action).toMatchObject({ traceId: runId, payload: { tool: "weather", toolInput: { city: "Oslo" } } });
    expect(transport.of("chain.start").some((e) => e.runId === action!.runId)).toBe(true);
    expect(action!.payload.log).toContain("weather");
    // The action was parsed from the output of the LLM call that ended just before it.
    const llmEnds = transport.of("llm.end");
    expect(action!.payload.llmRunId).toBe(llmEnds[0]!.runId);
    expect(llmEnds[0]!.payload.output.toolCalls[0]).toMatchObject({ name: "weather", args: { city: "Oslo" } });
    const [finish] = transport.of("agent.finish");
    expect(finish).toMatchObject({ traceId: runId, payload: { returnValues: { output: "It is sunny in Oslo." } } });
    expect(transport.events.indexOf(action!)).toBeLessThan(transport.events.findIndex((e) => e.type === "tool.start"));
    expect(transport.of("tool.end")[0]!.payload.output).toBe("sunny in Oslo");
  });

  it("a failing model and a failing chain: llm.error and chain.error close their runs", async () => {
    const { transport, handler } = setup();
    const model = fakeModel().alwaysThrow(new Error("rate limited"));
    await expect(createAgent({ model, tools: [] }).invoke({ messages: [{ role: "user", content: "x" }] }, { callbacks: [handler] })).rejects.toThrow(
      /rate limited/,
    );
    await awaitAllCallbacks();
    expectExactTree(transport.events);
    const [llmError] = transport.of("llm.error");
    expect(llmError!.payload.error).toMatchObject({ message: "rate limited" });
    expect(transport.of("llm.start").map((e) => e.runId)).toEqual([llmError!.runId]);
    const root = transport.events.find((e) => e.parentRunId === null)!;
    expect(transport.of("chain.error").map((e) => e.runId)).toContain(root.runId);
  });

  it("strict mode refuses a run without a user, naming the keys to set", async () => {
    const transport = new Collect();
    const handler = new AuditCallbackHandler({ agent, strict: true }, transport);
    const model = fakeModel().respond(new AIMessage("hi"));
    await expect(createAgent({ model, tools: [] }).invoke({ messages: [{ role: "user", content: "x" }] }, { callbacks: [handler] })).rejects.toThrow(
      /auditgraph_user_id.*auditgraph_tenant_id/,
    );
    expect(handler.metrics.refused).toBeGreaterThan(0);
    expect(transport.events).toEqual([]);

    const ok = await createAgent({ model: fakeModel().respond(new AIMessage("hi")), tools: [] }).invoke(
      { messages: [{ role: "user", content: "x" }] },
      { callbacks: [handler], metadata: { [METADATA_KEYS.userId]: "dave", [METADATA_KEYS.tenantId]: "umbrella" } },
    );
    expect(ok.messages.at(-1)?.text).toBe("hi");
    expect(transport.events.length).toBeGreaterThan(0);
  });

  it("a failing transport never breaks the agent: the failure is counted and logged", async () => {
    const broken: Transport = {
      send() {
        throw new Error("disk on fire");
      },
      async flush() {},
      async close() {},
    };
    const lines: string[] = [];
    const { pino } = await import("pino");
    const logger = pino({ level: "warn" }, { write: (line: string) => void lines.push(line) });
    const handler = new AuditCallbackHandler({ agent, user, logger }, broken);
    const out = await createAgent({ model: fakeModel().respond(new AIMessage("still fine")), tools: [] }).invoke(
      { messages: [{ role: "user", content: "secret question" }] },
      { callbacks: [handler] },
    );
    expect(out.messages.at(-1)?.text).toBe("still fine");
    expect(handler.metrics.errors).toBeGreaterThan(0);
    expect(lines.length).toBe(handler.metrics.errors);
    expect(lines.join("")).not.toContain("secret question");
  });

  it("fail-closed tools wait for the event to be durable, and are refused when it cannot be", async () => {
    const order: string[] = [];
    const slow: Transport = {
      send(e) {
        order.push(`send ${e.type}`);
      },
      async flush() {
        await new Promise((r) => setTimeout(r, 20));
        order.push("durable");
      },
      async close() {},
    };
    const transfer = tool(
      () => {
        order.push("transfer runs");
        return "sent";
      },
      { name: "wire_transfer", description: "moves money", schema: z.object({ amount: z.number() }) },
    );
    const model = () =>
      fakeModel()
        .respondWithTools([{ id: "t1", name: "wire_transfer", args: { amount: 5 } }])
        .respond(new AIMessage("done"));
    const handler = new AuditCallbackHandler({ agent, user, highImpactTools: ["wire_transfer"] }, slow);
    await createAgent({ model: model(), tools: [transfer] }).invoke({ messages: [{ role: "user", content: "pay" }] }, { callbacks: [handler] });
    expect(order.indexOf("send tool.start")).toBeLessThan(order.indexOf("durable"));
    expect(order.indexOf("durable")).toBeLessThan(order.indexOf("transfer runs"));

    order.length = 0;
    const down: Transport = { ...slow, flush: async () => Promise.reject(new Error("redis and disk both gone")) };
    const refusing = new AuditCallbackHandler({ agent, user, highImpactTools: ["wire_transfer"] }, down);
    const out = await createAgent({ model: model(), tools: [transfer] }).invoke({ messages: [{ role: "user", content: "pay" }] }, { callbacks: [refusing] });
    // The tool never ran; createAgent hands the refusal back to the model as the tool's error.
    expect(order).not.toContain("transfer runs");
    const toolMessage = out.messages.find((m) => m.type === "tool");
    expect(toolMessage?.text).toMatch(/fail-closed.*refused/);
  });
});
