import { describe, expect, it } from "vitest";
import { EventSchema, SCHEMA_VERSION, newEventId } from "@auditgraph/core";
import { Redactor } from "@auditgraph/redaction";
import { z } from "zod";
import {
  InMemoryHoldDecider,
  InMemoryPolicyState,
  InlineEnforcer,
  PolicyEvaluationError,
  PolicySet,
  awaitHold,
  definePolicyFunction,
  flagPayload,
  type Finding,
  type HoldDecider,
  type PolicyDefinitionInput,
} from "../src/index.js";
import { trace } from "./events.js";

const denyShell = {
  kind: "function",
  id: "no-shell",
  version: "1",
  severity: "critical",
  action: "block",
  function: "tool-guard",
  params: { deny: ["shell"] },
};
const holdTransfers = (timeoutMs: number, defaultOutcome: "allow" | "deny") => ({
  kind: "rule",
  id: `hold-transfers-${defaultOutcome}`,
  version: "1",
  severity: "high",
  action: "hold",
  hold: { timeoutMs, defaultOutcome },
  eventTypes: ["tool.start"],
  when: { field: "name", op: "equals", value: "transfer_funds" },
});
const set = (...policies: unknown[]) => PolicySet.create(policies as PolicyDefinitionInput[]);

describe("InMemoryPolicyState", () => {
  it("counts an event once per counter, however often it is added", async () => {
    const state = new InMemoryPolicyState();
    expect(await state.add("k", "e1", 5)).toBe(5);
    expect(await state.add("k", "e1", 5)).toBe(5);
    expect(await state.add("k", "e2", 2)).toBe(7);
    expect(await state.add("other", "e1", 1)).toBe(1);
    expect(await state.get("k")).toBe(7);
    expect(await state.get("never")).toBe(0);
    await expect(state.add("k", "e3", Number.NaN)).rejects.toThrow(RangeError);
  });

  it("stays bounded: the least recently used counter goes first", async () => {
    const state = new InMemoryPolicyState({ maxKeys: 2 });
    await state.add("a", "e", 1);
    await state.add("b", "e", 1);
    await state.add("a", "f", 1); // a is now the most recent
    await state.add("c", "e", 1);
    expect([await state.get("a"), await state.get("b"), await state.get("c")]).toEqual([2, 0, 1]);
  });
});

describe("awaitHold", () => {
  const finding = { policyId: "p" } as Finding;
  it("takes the decider's answer, the rule's default on timeout, and refuses when the decider fails", async () => {
    const decider = new InMemoryHoldDecider();
    const allowed = awaitHold(finding, { timeoutMs: 10_000, defaultOutcome: "deny" }, decider);
    (await decider.next()).allow();
    expect(await allowed).toEqual({ outcome: "held-allowed", decision: "allow" });

    const denied = awaitHold(finding, { timeoutMs: 10_000, defaultOutcome: "allow" }, decider);
    (await decider.next()).deny();
    expect(await denied).toEqual({ outcome: "held-denied", decision: "deny" });

    const started = Date.now();
    expect(await awaitHold(finding, { timeoutMs: 50, defaultOutcome: "allow" }, decider)).toEqual({ outcome: "held-timeout", decision: "allow" });
    expect(Date.now() - started).toBeGreaterThanOrEqual(45);
    expect(await awaitHold(finding, { timeoutMs: 50, defaultOutcome: "deny" }, decider)).toEqual({ outcome: "held-timeout", decision: "deny" });
    // A timed-out hold is withdrawn from the decider.
    expect(decider.pending).toEqual([]);

    const broken: HoldDecider = { decide: () => Promise.reject(new Error("reviewer service down")) };
    expect(await awaitHold(finding, { timeoutMs: 10_000, defaultOutcome: "allow" }, broken)).toEqual({
      outcome: "blocked",
      decision: "deny",
      deciderFailed: true,
    });
  });
});

describe("InlineEnforcer", () => {
  it("blocks a denied call and lets the others through", async () => {
    const enforcer = new InlineEnforcer({ set: set(denyShell) });
    const t = trace();
    const shell = t.toolStart("shell", { cmd: "ls" });
    const verdict = await enforcer.check(shell);
    expect(verdict.refusal?.message).toBe('auditgraph policy no-shell@1 blocked the tool call "shell": tool "shell" is on the deny list');
    expect(verdict.outcomes).toEqual([{ finding: expect.objectContaining({ policyId: "no-shell" }), outcome: "blocked", decision: "deny" }]);
    expect(await enforcer.check(t.toolStart("catalog_lookup", { sku: "A" }))).toEqual({ outcomes: [] });
  });

  it("only takes block and hold rules; flag and escalate rules are the worker's", async () => {
    const enforcer = new InlineEnforcer({ set: set({ ...denyShell, action: "escalate" }) });
    expect(enforcer.checks("tool.start")).toBe(false);
    expect(await enforcer.check(trace().toolStart("shell", {}))).toEqual({ outcomes: [] });
  });

  it("needs a decider for hold rules", () => {
    expect(() => new InlineEnforcer({ set: set(holdTransfers(100, "deny")) })).toThrow(/hold rules \(hold-transfers-deny\) but no decider/);
  });

  it("records a hold beside a block without asking anyone", async () => {
    const decider = new InMemoryHoldDecider();
    const enforcer = new InlineEnforcer({ set: set({ ...denyShell, params: { deny: ["transfer_funds"] } }, holdTransfers(10_000, "allow")), decider });
    const verdict = await enforcer.check(trace().toolStart("transfer_funds", { amount: 1 }));
    expect(verdict.outcomes.map((o) => [o.finding.policyId, o.outcome])).toEqual([
      ["no-shell", "blocked"],
      ["hold-transfers-allow", "flagged"],
    ]);
    expect(verdict.refusal).toBeDefined();
    expect(decider.pending).toEqual([]);
  });

  it("refuses the call when a policy cannot be evaluated", async () => {
    const broken = definePolicyFunction({
      name: "broken",
      version: "1",
      params: z.strictObject({}),
      eventTypes: ["tool.start"],
      create: () => () => {
        throw new TypeError("bug");
      },
    });
    const policies = PolicySet.create([{ kind: "function", id: "b", version: "1", severity: "low", action: "block", function: "broken" }], {
      functions: [broken],
    });
    await expect(policies.evaluate(trace().toolStart("x", {}))).rejects.toThrow(PolicyEvaluationError);
    const verdict = new InlineEnforcer({ set: policies }).check(trace().toolStart("x", {}));
    await expect(verdict).rejects.toThrow('auditgraph policies b could not be evaluated, so the tool call "x" is refused');
  });

  it("counts observed events before it checks the next call", async () => {
    const budget = {
      kind: "function",
      id: "budget",
      version: "1",
      severity: "high",
      action: "block",
      function: "budget",
      params: { scope: "trace", maxTokens: 100 },
    };
    const enforcer = new InlineEnforcer({ set: set(budget) });
    const t = trace();
    expect(await enforcer.check(t.llmStart())).toEqual({ outcomes: [] });
    // Not awaited, as the handler does not: the check below must still see it.
    enforcer.observe(t.llmEnd("x", { usage: { inputTokens: 100, outputTokens: 20, totalTokens: 120 } }));
    const verdict = await enforcer.check(t.llmStart());
    expect(verdict.refusal?.message).toMatch(/^auditgraph policy budget@1 blocked the model call: budget per trace already spent/);
  });

  it("makes policy.flag payloads that the event schema takes", async () => {
    const enforcer = new InlineEnforcer({ set: set(denyShell) });
    const t = trace();
    const start = t.toolStart("shell", {});
    const { outcomes } = await enforcer.check(start);
    const payload = flagPayload(outcomes[0]!);
    expect(payload.concerns).toEqual({ eventId: start.eventId, runId: start.runId, kind: "tool_call" });
    const flag = EventSchema.parse({ ...start, eventId: newEventId(), schemaVersion: SCHEMA_VERSION, type: "policy.flag", payload });
    expect(flag.type === "policy.flag" && flag.payload.outcome).toBe("blocked");
    // Redaction leaves the ids, hash and enums alone, and still reads the field paths (they hold object keys).
    const keyed = { ...flag, payload: { ...payload, evidence: { fields: ["payload.input.ann.lee@example.com"], measures: { violations: 1 } } } };
    const redacted = new Redactor({ pii: true }).redactEvent(EventSchema.parse(keyed));
    if (redacted.type !== "policy.flag") throw new Error("not a flag");
    expect({ ...redacted.payload, evidence: undefined }).toEqual({ ...payload, evidence: undefined });
    expect(redacted.payload.evidence.measures).toEqual({ violations: 1 });
    expect(redacted.payload.evidence.fields).toEqual([expect.stringContaining("[EMAIL]")]);
    expect(JSON.stringify(redacted)).not.toContain("ann.lee@example.com");
    expect(redacted.redactions).toEqual({ email: 1 });
    EventSchema.parse(redacted);
    // Flags are never evaluated again (a flag on a flag would never end).
    expect(
      await PolicySet.create([
        { kind: "rule", id: "any", version: "1", severity: "low", action: "flag", eventTypes: ["tool.start"], when: { field: "runId", op: "exists" } },
      ]).evaluate(flag),
    ).toEqual([]);
  });
});
