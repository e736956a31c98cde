import { describe, expect, it } from "vitest";
import { randomUUID } from "node:crypto";
import { AIMessage } from "@langchain/core/messages";
import { awaitAllCallbacks } from "@langchain/core/callbacks/promises";
import { fakeModel } from "@langchain/core/testing";
import { tool } from "@langchain/core/tools";
import { createAgent } from "langchain";
import { z } from "zod";
import { EventSchema } from "@auditgraph/core";
import { AuditCallbackHandler, METADATA_KEYS } from "../src/index.js";
import { Collect } from "./collect.js";

const echo = tool(({ text }) => `echo:${text}`, {
  name: "echo",
  description: "echo text",
  schema: z.object({ text: z.string() }),
});
const broken = tool(
  (): string => {
    throw new Error("tool exploded");
  },
  { name: "broken", description: "always fails", schema: z.object({}) },
);

const agent = { id: "agent-x", name: "Agent X", version: "2.0.0" };

async function run(metadata: Record<string, unknown> = {}) {
  const model = fakeModel()
    .respond(
      new AIMessage({
        content: "",
        tool_calls: [{ id: "tc-1", name: "echo", args: { text: "hi" }, type: "tool_call" }],
        response_metadata: { model_name: "served-v7" },
        usage_metadata: { input_tokens: 11, output_tokens: 3, total_tokens: 14 },
      }),
    )
    .respond(new AIMessage({ content: "done", response_metadata: { model_name: "served-v7" } }));
  const transport = new Collect();
  const handler = new AuditCallbackHandler({ agent, user: { id: "default-user", tenantId: "default-tenant" } }, transport);
  const runId = randomUUID();
  await createAgent({ model, tools: [echo] }).invoke({ messages: [{ role: "user", content: "say hi" }] }, { runId, callbacks: [handler], metadata });
  await awaitAllCallbacks();
  return { events: transport.events, runId };
}

describe("AuditCallbackHandler on a real createAgent run", () => {
  it("captures chains, model calls and tool calls as valid events of one exact run tree", async () => {
    const { events, runId } = await run();
    for (const e of events) EventSchema.parse(e);
    const types = events.map((e) => e.type);
    expect(types.filter((t) => t === "llm.start")).toHaveLength(2);
    expect(types.filter((t) => t === "llm.end")).toHaveLength(2);
    expect(types).toContain("tool.start");
    expect(types).toContain("tool.end");
    expect(types[0]).toBe("chain.start");
    expect(types.at(-1)).toBe("chain.end");

    // One trace, rooted at the run id we gave; every parent is a run we saw start before.
    expect(new Set(events.map((e) => e.traceId))).toEqual(new Set([runId]));
    const started = new Set<string>();
    for (const e of events) {
      if (e.type.endsWith(".start")) started.add(e.runId);
      if (e.parentRunId !== null) expect(started.has(e.parentRunId)).toBe(true);
    }
    expect(events.filter((e) => e.parentRunId === null).every((e) => e.runId === runId)).toBe(true);
  });

  it("records the prompt, the requested and the served model, usage, and the requested tool call", async () => {
    const { events } = await run();
    const start = events.find((e) => e.type === "llm.start");
    const end = events.find((e) => e.type === "llm.end");
    if (start?.type !== "llm.start" || end?.type !== "llm.end") throw new Error("missing llm events");
    expect(start.payload.messages).toEqual([{ role: "user", content: "say hi" }]);
    expect(end.model.version).toBe("served-v7");
    expect(end.usage).toEqual({ inputTokens: 11, outputTokens: 3, totalTokens: 14 });
    expect(end.payload.output.toolCalls).toEqual([{ id: "tc-1", name: "echo", args: { text: "hi" } }]);

    const toolStart = events.find((e) => e.type === "tool.start");
    const toolEnd = events.find((e) => e.type === "tool.end");
    if (toolStart?.type !== "tool.start" || toolEnd?.type !== "tool.end") throw new Error("missing tool events");
    expect(toolStart.name).toBe("echo");
    expect(toolStart.payload.toolCallId).toBe("tc-1");
    expect(toolEnd.payload).toMatchObject({ toolCallId: "tc-1", output: "echo:hi", timing: { latencyMs: expect.any(Number) } });
    const last = events.filter((e) => e.type === "llm.end").at(-1);
    expect(last?.type === "llm.end" && last.payload.output.text).toBe("done");
  });

  it("takes the handler's identity by default and the invocation's metadata over it", async () => {
    const byDefault = await run();
    for (const e of byDefault.events) expect(e.identity).toEqual({ user: { id: "default-user", tenantId: "default-tenant" }, agent });

    const overridden = await run({
      [METADATA_KEYS.userId]: "bob",
      [METADATA_KEYS.tenantId]: "globex",
      [METADATA_KEYS.agentVersion]: "2.1.0-rc1",
      thread_id: "thread-9",
    });
    for (const e of overridden.events) {
      expect(e.identity).toEqual({ user: { id: "bob", tenantId: "globex" }, agent: { ...agent, version: "2.1.0-rc1" } });
      expect(e.sessionId).toBe("thread-9");
    }
  });

  it("records a failing tool as tool.error with its call id", async () => {
    const model = fakeModel()
      .respondWithTools([{ id: "tc-bad", name: "broken", args: {} }])
      .respond(new AIMessage("gave up"));
    const transport = new Collect();
    const handler = new AuditCallbackHandler({ agent }, transport);
    await createAgent({ model, tools: [broken] }).invoke({ messages: [{ role: "user", content: "x" }] }, { callbacks: [handler] });
    await awaitAllCallbacks();
    const error = transport.events.find((e) => e.type === "tool.error");
    expect(error?.type === "tool.error" && error.payload).toMatchObject({ toolCallId: "tc-bad", error: { message: expect.stringContaining("tool exploded") } });
  });

  it("refuses options without an agent, naming the field", () => {
    expect(() => new AuditCallbackHandler({ agent: { id: "a", name: "", version: "1" } }, new Collect())).toThrow(/agent\.name/);
  });
});
