import { describe, expect, it } from "vitest";
import { AIMessage } from "@langchain/core/messages";
import { awaitAllCallbacks } from "@langchain/core/callbacks/promises";
import { fakeModel } from "@langchain/core/testing";
import { tool } from "@langchain/core/tools";
import { createAgent } from "langchain";
import { z } from "zod";
import { ValidationError, type AuditEvent } from "@auditgraph/core";
import { InMemoryHoldDecider, PolicySet, type PolicyDefinitionInput } from "@auditgraph/policy";
import { AuditCallbackHandler, type HandlerOptions } from "../src/index.js";
import { Collect } from "./collect.js";

const agent = { id: "payments-agent", name: "Payments agent", version: "1.0.0" };
const user = { id: "alice", tenantId: "acme" };

/** Collects, and records what the handler asked to send first. */
class Expediting extends Collect {
  expedited: AuditEvent[] = [];
  expedite(event: AuditEvent) {
    this.expedited.push(event);
  }
}

const onTransfer = (action: "flag" | "escalate" | "hold", severity: "low" | "high" | "critical"): PolicyDefinitionInput => ({
  kind: "rule",
  id: `${action}-${severity}`,
  version: "1",
  severity,
  action,
  ...(action === "hold" ? { hold: { timeoutMs: 30_000, defaultOutcome: "deny" as const } } : {}),
  eventTypes: ["tool.start"],
  when: { field: "name", op: "equals", value: "transfer_funds" },
});

async function run(inlinePolicies: HandlerOptions["inlinePolicies"], transport = new Expediting()) {
  const transfer = tool(({ amount }) => `sent ${amount}`, { name: "transfer_funds", description: "send money", schema: z.object({ amount: z.number() }) });
  const model = fakeModel()
    .respondWithTools([{ id: "tc-1", name: "transfer_funds", args: { amount: 1 } }])
    .respond(new AIMessage("done"));
  const handler = new AuditCallbackHandler({ agent, user, inlinePolicies }, transport);
  await createAgent({ model, tools: [transfer] }).invoke({ messages: [{ role: "user", content: "pay" }] }, { callbacks: [handler] });
  await awaitAllCallbacks();
  // The screen runs in the background: flush waits for it.
  await handler.flush();
  return transport;
}

describe("escalation-first in the handler", () => {
  it("expedites the event an escalate/flag rule at or above escalateAt finds something on, and nothing else", async () => {
    const transport = await run({ set: PolicySet.create([onTransfer("escalate", "critical")]), escalateAt: "high" });
    expect(transport.expedited.map((e) => [e.type, e.name])).toEqual([["tool.start", "transfer_funds"]]);
    // The screen records nothing itself: flag and escalate findings are the worker's.
    expect(transport.of("policy.flag")).toEqual([]);
  });

  it("leaves findings below escalateAt to the linger, and does nothing without escalateAt", async () => {
    expect((await run({ set: PolicySet.create([onTransfer("flag", "low")]), escalateAt: "high" })).expedited).toEqual([]);
    expect((await run({ set: PolicySet.create([onTransfer("escalate", "critical")]) })).expedited).toEqual([]);
  });

  it("expedites a held call's start before the decision, so its escalation can open", async () => {
    const decider = new InMemoryHoldDecider();
    const transport = new Expediting();
    void decider.next().then((hold) => {
      // The reviewer can only be asked once the event is on its way, and the `held` flag the worker opens the escalation from.
      expect(transport.expedited.map((e) => e.type)).toEqual(["tool.start", "policy.flag"]);
      hold.allow();
    });
    await run({ set: PolicySet.create([onTransfer("hold", "high")]), decider, escalateAt: "high" }, transport);
    expect(transport.of("policy.flag").map((f) => f.payload.outcome)).toEqual(["held", "held-allowed"]);
    expect(transport.expedited).toHaveLength(2);
  });

  it("refuses a bad escalateAt, naming it", () => {
    const make = () => new AuditCallbackHandler({ agent, inlinePolicies: { set: PolicySet.create([]), escalateAt: "urgent" as never } }, new Expediting());
    expect(make).toThrow(ValidationError);
    expect(make).toThrow(/inlinePolicies\.escalateAt: must be one of info, low, medium, high, critical/);
  });
});
