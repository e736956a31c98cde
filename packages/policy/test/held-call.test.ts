// Issue 14 point 6, the agent's side: a held call records its hold (id, deadline, default) when it
// starts waiting, and the agent stops waiting at exactly that deadline, not a timer of its own.
import { describe, expect, it } from "vitest";
import { EventSchema } from "@auditgraph/core";
import { InMemoryHoldDecider, InlineEnforcer, PolicySet, flagPayload, holdIdOf, type InlineOutcome, type PolicyDefinitionInput } from "../src/index.js";
import { trace } from "./events.js";

const holdTransfers = (timeoutMs: number, defaultOutcome: "allow" | "deny"): PolicyDefinitionInput => ({
  kind: "rule",
  id: "review-transfers",
  version: "1",
  severity: "high",
  action: "hold",
  hold: { timeoutMs, defaultOutcome },
  eventTypes: ["tool.start"],
  when: { field: "name", op: "equals", value: "transfer_funds" },
});

describe("a held call's hold on its flags", () => {
  it("is recorded when the hold starts, with the deadline the agent then keeps, and again on the final flag", async () => {
    const enforcer = new InlineEnforcer({ set: PolicySet.create([holdTransfers(300, "allow")]), decider: new InMemoryHoldDecider() });
    const t = trace();
    const start = t.toolStart("transfer_funds", { amount: 1 });
    const held: InlineOutcome[] = [];
    const before = Date.now();
    const verdict = await enforcer.check(start, { onHeld: (outcomes) => held.push(...outcomes) });
    const ended = Date.now();

    const hold = {
      holdId: holdIdOf({ policyId: "review-transfers", concerns: { runId: start.runId } }),
      deadline: expect.any(String),
      defaultDecision: "allow",
    };
    expect(held).toEqual([expect.objectContaining({ outcome: "held", hold })]);
    const deadline = Date.parse(held[0]!.hold!.deadline);
    expect(deadline).toBeGreaterThanOrEqual(before + 300);
    // The wait ended at the recorded deadline (timers fire at or after their time), not later by a second timer.
    expect(ended).toBeGreaterThanOrEqual(deadline);
    expect(verdict.outcomes).toEqual([expect.objectContaining({ outcome: "held-timeout", decision: "allow", hold: held[0]!.hold })]);

    // Both flags carry it, and the schema takes them as events.
    for (const outcome of [held[0]!, verdict.outcomes[0]!]) {
      const payload = flagPayload(outcome);
      expect(payload.hold).toEqual(held[0]!.hold);
      const flag = EventSchema.parse({ ...start, eventId: start.eventId.replace(/.$/, "0"), type: "policy.flag", name: "review-transfers", payload });
      expect(flag.type === "policy.flag" && flag.payload.hold).toEqual(held[0]!.hold);
    }
  });

  it("leaves a block's flags without a hold", async () => {
    const block = {
      kind: "function",
      id: "no-transfers",
      version: "1",
      severity: "critical",
      action: "block",
      function: "tool-guard",
      params: { deny: ["transfer_funds"] },
    };
    const enforcer = new InlineEnforcer({ set: PolicySet.create([block as PolicyDefinitionInput]) });
    const verdict = await enforcer.check(trace().toolStart("transfer_funds", { amount: 1 }));
    expect(verdict.outcomes.map((o) => [o.outcome, o.hold])).toEqual([["blocked", undefined]]);
    expect(flagPayload(verdict.outcomes[0]!)).not.toHaveProperty("hold");
  });
});
