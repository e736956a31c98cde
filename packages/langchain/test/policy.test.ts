import { describe, expect, it, vi } from "vitest";
import { AIMessage, ToolMessage } from "@langchain/core/messages";
import { awaitAllCallbacks } from "@langchain/core/callbacks/promises";
import { fakeModel } from "@langchain/core/testing";
import { createAgent } from "langchain";
import { EventSchema, ValidationError, parseEvent, type EventOf } from "@auditgraph/core";
import { Redactor } from "@auditgraph/redaction";
import { InMemoryHoldDecider, PolicyRefusal, PolicySet, type PolicyDefinitionInput } from "@auditgraph/policy";
import { AuditCallbackHandler, type HandlerOptions } from "../src/index.js";
import { Collect } from "./collect.js";
import { holdTransfers, transferTool } from "../../../test/fixtures/transfer.js";

const agent = { id: "payments-agent", name: "Payments agent", version: "1.0.0" };
const user = { id: "alice", tenantId: "acme" };

const blockTransfers: PolicyDefinitionInput = {
  kind: "function",
  id: "no-transfers",
  version: "3",
  severity: "critical",
  action: "block",
  function: "tool-guard",
  params: { deny: ["transfer_funds"] },
};

/** createAgent with a fake model that asks for one transfer, then answers. */
async function runTransfer(inlinePolicies: HandlerOptions["inlinePolicies"], options: Partial<HandlerOptions> = {}) {
  const { transfer, runs } = transferTool();
  const model = fakeModel()
    .respondWithTools([{ id: "tc-transfer", name: "transfer_funds", args: { amount: 250 } }])
    .respond(new AIMessage("done"));
  const transport = new Collect();
  const handler = new AuditCallbackHandler({ agent, user, inlinePolicies, ...options }, transport);
  const result = await createAgent({ model, tools: [transfer] }).invoke({ messages: [{ role: "user", content: "pay invoice 42" }] }, { callbacks: [handler] });
  await awaitAllCallbacks();
  for (const event of transport.events) EventSchema.parse(event);
  return { transport, result, runs, model, handler };
}

const flagsOf = (transport: Collect) => transport.of("policy.flag");

describe("inline policies in a real agent", () => {
  it("a block rule stops the tool call before it runs, and records the block", async () => {
    const set = PolicySet.create([blockTransfers]);
    const { transport, result, runs } = await runTransfer({ set });

    expect(runs.count).toBe(0);
    const start = transport.of("tool.start")[0]!;
    const [flag, ...more] = flagsOf(transport);
    expect(more).toEqual([]);
    expect(flag).toMatchObject({
      runId: start.runId,
      traceId: start.traceId,
      identity: { user, agent },
      payload: {
        policyId: "no-transfers",
        policyVersion: "3",
        policySetHash: set.hash,
        severity: "critical",
        action: "block",
        outcome: "blocked",
        decision: "deny",
        concerns: { eventId: start.eventId, runId: start.runId, kind: "tool_call" },
        reason: 'tool "transfer_funds" is on the deny list',
        evidence: { fields: ["name"], measures: {} },
      },
    });
    // What the worker runs on every event it takes off the queue.
    expect(parseEvent(JSON.parse(JSON.stringify(flag))).success).toBe(true);
    // The run is closed with the refusal, in order: attempt, flag, error.
    expect(transport.of("tool.error")).toHaveLength(1);
    const error = transport.of("tool.error")[0]!;
    expect(error.payload).toEqual({
      toolCallId: "tc-transfer",
      error: {
        name: "PolicyRefusal",
        message: 'auditgraph policy no-transfers@3 blocked the tool call "transfer_funds": tool "transfer_funds" is on the deny list',
      },
    });
    const order = transport.events.map((e) => e.eventId);
    expect(order.indexOf(start.eventId)).toBeLessThan(order.indexOf(flag!.eventId));
    expect(order.indexOf(flag!.eventId)).toBeLessThan(order.indexOf(error.eventId));
    expect(transport.of("tool.end")).toEqual([]);
    // The agent got the clear error as the tool's answer, and went on.
    const toolMessage = result.messages.find((m) => ToolMessage.isInstance(m));
    expect(toolMessage?.text).toContain("blocked the tool call");
    expect(result.messages.at(-1)?.text).toBe("done");
  });

  it("leaves calls no rule refuses alone", async () => {
    const set = PolicySet.create([{ ...blockTransfers, params: { deny: ["shell"] } } as PolicyDefinitionInput]);
    const { transport, runs } = await runTransfer({ set });
    expect(runs.count).toBe(1);
    expect(flagsOf(transport)).toEqual([]);
    expect(transport.of("tool.end")).toHaveLength(1);
  });

  it("a hold rule waits for the decider; approved, the tool runs", async () => {
    const decider = new InMemoryHoldDecider();
    const set = PolicySet.create([holdTransfers(30_000, "deny")]);
    const { transfer, runs } = transferTool();
    const model = fakeModel()
      .respondWithTools([{ id: "tc-transfer", name: "transfer_funds", args: { amount: 250 } }])
      .respond(new AIMessage("done"));
    const transport = new Collect();
    const handler = new AuditCallbackHandler({ agent, user, inlinePolicies: { set, decider } }, transport);
    const running = createAgent({ model, tools: [transfer] }).invoke({ messages: [{ role: "user", content: "pay invoice 42" }] }, { callbacks: [handler] });

    // Raced with the run, so a hold that never comes fails here instead of timing out.
    const pending = await Promise.race([
      decider.next(),
      running.then(() => {
        throw new Error("the agent finished without holding the transfer");
      }),
    ]);
    // Waiting: the attempt and the `held` flag (a reviewer's escalation opens from it) are recorded; the tool,
    // which only an allow releases, has not run.
    await vi.waitFor(() => expect(flagsOf(transport)).toHaveLength(1));
    expect(runs.count).toBe(0);
    expect(flagsOf(transport).map((f) => f.payload)).toMatchObject([{ policyId: "review-transfers", action: "hold", outcome: "held" }]);
    expect(transport.of("tool.start")).toHaveLength(1);
    expect(transport.of("tool.end")).toEqual([]);
    expect(pending.finding).toMatchObject({ policyId: "review-transfers", action: "hold", reason: "a human approves every transfer" });
    expect(pending.finding.concerns.eventId).toBe(transport.of("tool.start")[0]!.eventId);

    pending.allow();
    const result = await running;
    await awaitAllCallbacks();
    expect(runs.count).toBe(1);
    expect(result.messages.at(-1)?.text).toBe("done");
    const [held, flag] = flagsOf(transport);
    expect(held?.payload.outcome).toBe("held");
    expect(flag?.payload).toMatchObject({ policyId: "review-transfers", action: "hold", outcome: "held-allowed", decision: "allow" });
    expect(transport.of("tool.end")[0]?.payload.output).toBe("sent 250 EUR");
    expect(transport.of("tool.error")).toEqual([]);
  });

  it("a hold that times out takes its default: deny, and the tool does not run", async () => {
    const decider = new InMemoryHoldDecider();
    const started = Date.now();
    const { transport, runs, result } = await runTransfer({ set: PolicySet.create([holdTransfers(150, "deny")]), decider });
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
    expect(runs.count).toBe(0);
    expect(flagsOf(transport).map((f) => f.payload)).toMatchObject([{ outcome: "held" }, { outcome: "held-timeout", decision: "deny" }]);
    expect(transport.of("tool.error")[0]?.payload.error.message).toMatch(/no decision came in time and the rule's default is deny/);
    expect(result.messages.find((m) => ToolMessage.isInstance(m))?.text).toContain("no decision came in time");
    expect(decider.pending).toEqual([]);
  });

  it("a hold that times out with default allow lets the tool run; a denied one does not", async () => {
    const allowed = await runTransfer({ set: PolicySet.create([holdTransfers(50, "allow")]), decider: new InMemoryHoldDecider() });
    expect(allowed.runs.count).toBe(1);
    expect(flagsOf(allowed.transport).at(-1)?.payload).toMatchObject({ outcome: "held-timeout", decision: "allow" });

    const decider = new InMemoryHoldDecider();
    void decider.next().then((hold) => hold.deny());
    const denied = await runTransfer({ set: PolicySet.create([holdTransfers(30_000, "allow")]), decider });
    expect(denied.runs.count).toBe(0);
    expect(flagsOf(denied.transport).at(-1)?.payload).toMatchObject({ outcome: "held-denied", decision: "deny" });
  });

  it("a block rule stops a model call: the model is never called and the agent gets the refusal", async () => {
    const set = PolicySet.create([
      {
        kind: "function",
        id: "approved-models",
        version: "1",
        severity: "high",
        action: "block",
        function: "model-allow-list",
        params: { models: ["gpt-4o"] },
      },
    ]);
    const model = fakeModel().respond(new AIMessage("hello"));
    const transport = new Collect();
    const handler = new AuditCallbackHandler({ agent, user, inlinePolicies: { set } }, transport);
    const invocation = createAgent({ model, tools: [] }).invoke({ messages: [{ role: "user", content: "hi" }] }, { callbacks: [handler] });
    await expect(invocation).rejects.toThrow(PolicyRefusal);
    await expect(invocation).rejects.toThrow(/auditgraph policy approved-models@1 blocked the model call: requested model ".*" is not on the allow-list/);
    await awaitAllCallbacks();
    expect(model.callCount).toBe(0);
    const start = transport.of("llm.start")[0]!;
    expect(flagsOf(transport)[0]?.payload).toMatchObject({ outcome: "blocked", concerns: { eventId: start.eventId, kind: "prompt" } });
    expect(transport.of("llm.error").map((e) => e.payload.error.name)).toEqual(["PolicyRefusal"]);
    expect(transport.of("llm.end")).toEqual([]);
  });

  it("counts what happened in the run: a spent token budget blocks the next model call", async () => {
    const set = PolicySet.create([
      { kind: "function", id: "trace-budget", version: "1", severity: "high", action: "block", function: "budget", params: { scope: "trace", maxTokens: 100 } },
    ]);
    const { transfer, runs } = transferTool();
    const model = fakeModel()
      .respond(
        new AIMessage({
          content: "",
          tool_calls: [{ id: "tc-1", name: "transfer_funds", args: { amount: 5 }, type: "tool_call" }],
          usage_metadata: { input_tokens: 90, output_tokens: 30, total_tokens: 120 },
        }),
      )
      .respond(new AIMessage("done"));
    const transport = new Collect();
    const handler = new AuditCallbackHandler({ agent, user, inlinePolicies: { set } }, transport);
    const invocation = createAgent({ model, tools: [transfer] }).invoke({ messages: [{ role: "user", content: "pay" }] }, { callbacks: [handler] });
    await expect(invocation).rejects.toThrow(/budget per trace already spent before this model call: 120 of 100 tokens/);
    await awaitAllCallbacks();
    expect(runs.count).toBe(1);
    expect(model.callCount).toBe(1);
    expect(transport.of("llm.start")).toHaveLength(2);
    expect(flagsOf(transport).map((f) => f.payload.outcome)).toEqual(["blocked"]);
  });

  it("with a redactor, a secret in the prompt blocks the model call and appears nowhere in the trail", async () => {
    const set = PolicySet.create([
      {
        kind: "function",
        id: "no-secrets-to-models",
        version: "1",
        severity: "critical",
        action: "block",
        function: "pii-or-secret",
        params: { kinds: ["secret"] },
      },
    ]);
    const secret = "sk-live-4f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c";
    const model = fakeModel().respond(new AIMessage("ok"));
    const transport = new Collect();
    const handler = new AuditCallbackHandler({ agent, user, redactor: new Redactor(), inlinePolicies: { set } }, transport);
    const invocation = createAgent({ model, tools: [] }).invoke({ messages: [{ role: "user", content: `use the key ${secret}` }] }, { callbacks: [handler] });
    await expect(invocation).rejects.toThrow(PolicyRefusal);
    await awaitAllCallbacks();
    expect(model.callCount).toBe(0);
    const flag = flagsOf(transport)[0] as EventOf<"policy.flag">;
    expect(flag.payload).toMatchObject({ outcome: "blocked", evidence: { fields: ["redactions"], measures: { secret: 1 } } });
    expect(JSON.stringify(transport.events)).not.toContain(secret);
  });

  it("refuses hold rules without a decider, naming the option", () => {
    const make = () => new AuditCallbackHandler({ agent, inlinePolicies: { set: PolicySet.create([holdTransfers(100, "deny")]) } }, new Collect());
    expect(make).toThrow(ValidationError);
    expect(make).toThrow(/inlinePolicies\.decider: .*hold rules \(review-transfers\) but no decider/);
  });
});
