import { AIMessage, ToolMessage, type BaseMessage } from "@langchain/core/messages";
import { fakeModel } from "@langchain/core/testing";
import { tool } from "@langchain/core/tools";
import { createAgent } from "langchain";
import { z } from "zod";

/** The in-repo table the lookup tool reads: a small product catalogue. */
export const CATALOG = {
  "KB-ERGO-2": { name: "Ergonomic keyboard, split layout", priceEur: 89.5, stock: 42 },
  "MS-VERT-1": { name: "Vertical mouse", priceEur: 39.9, stock: 7 },
  "DK-STAND-3": { name: "Standing desk frame", priceEur: 349, stock: 3 },
} as const;

export const DEMO_IDENTITY = {
  user: { id: "alice", tenantId: "acme" },
  agent: { id: "order-assistant", name: "Order assistant", version: "1.4.0" },
} as const;

export const DEMO_QUESTION = "What do 3 ergonomic keyboards (KB-ERGO-2) cost in total?";
/** The served model version the fake model reports, as a provider's response metadata would. */
export const DEMO_MODEL_VERSION = "demo-chat-2026-01-15";

// The demo agent's tools and model throw plain Errors on purpose: they stand for a user's agent,
// whose failures its trace records as that agent threw them; they are no auditgraph errors.
export const catalogLookup = tool(
  ({ sku }) => {
    const item = CATALOG[sku as keyof typeof CATALOG];
    if (!item) throw new Error(`unknown sku ${sku}`);
    return JSON.stringify({ sku, ...item });
  },
  {
    name: "catalog_lookup",
    description: "Look up a product by SKU: name, unit price in EUR, stock.",
    schema: z.object({ sku: z.string().describe("product SKU, e.g. KB-ERGO-2") }),
  },
);

export const calculator = tool(
  ({ operation, a, b }) => {
    const result = { add: a + b, subtract: a - b, multiply: a * b, divide: a / b }[operation];
    if (!Number.isFinite(result)) throw new Error(`${operation}(${a}, ${b}) has no finite result`);
    return String(Math.round(result * 100) / 100);
  },
  {
    name: "calculator",
    description: "Exact arithmetic on two numbers.",
    schema: z.object({ operation: z.enum(["add", "subtract", "multiply", "divide"]), a: z.number(), b: z.number() }),
  },
);

const lastToolResult = (messages: BaseMessage[]): string => {
  const last = [...messages].reverse().find((m) => ToolMessage.isInstance(m));
  if (!last) throw new Error("demo model expected a tool result");
  return last.text;
};

/** Deterministic token counts, as a provider would report them (about 4 characters a token). */
const usage = (messages: BaseMessage[], reply: string) => {
  const input_tokens = Math.ceil(messages.reduce((n, m) => n + m.text.length, 0) / 4);
  const output_tokens = Math.max(1, Math.ceil(reply.length / 4));
  return { input_tokens, output_tokens, total_tokens: input_tokens + output_tokens };
};

const reply = (messages: BaseMessage[], content: string, tool_calls: AIMessage["tool_calls"] = []) =>
  new AIMessage({
    content,
    tool_calls,
    response_metadata: { model_name: DEMO_MODEL_VERSION },
    usage_metadata: usage(messages, content + JSON.stringify(tool_calls)),
  });

/**
 * The demo's chat model: scripted like a real one would act (look the product up, multiply,
 * answer), with the numbers taken from the real tool results it is given.
 */
export function demoModel() {
  return fakeModel()
    .respond((messages) => reply(messages, "", [{ id: "call_lookup", name: "catalog_lookup", args: { sku: "KB-ERGO-2" }, type: "tool_call" }]))
    .respond((messages) => {
      const item = JSON.parse(lastToolResult(messages)) as { priceEur: number };
      return reply(messages, "", [{ id: "call_multiply", name: "calculator", args: { operation: "multiply", a: 3, b: item.priceEur }, type: "tool_call" }]);
    })
    .respond((messages) => reply(messages, `3 × KB-ERGO-2 (Ergonomic keyboard, split layout) cost ${lastToolResult(messages)} EUR in total.`));
}

export function demoAgent() {
  return createAgent({
    model: demoModel(),
    tools: [catalogLookup, calculator],
    systemPrompt: "You are the order assistant of ACME. Use the tools; never guess a price.",
  });
}
