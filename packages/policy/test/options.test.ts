import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ValidationError } from "@auditgraph/core";
import { EscalationNotifier, InlineEnforcer, PolicySet, loadPolicyFile, loadPolicySet, type PolicyDefinitionInput } from "../src/index.js";

const rule: PolicyDefinitionInput = {
  kind: "rule",
  id: "refund-over-limit",
  version: "1",
  severity: "high",
  action: "escalate",
  eventTypes: ["tool.start"],
  when: { field: "name", op: "equals", value: "refund" },
};

/** The ValidationError `make` throws; fails the test when it throws anything else or nothing. */
function refusalOf(make: () => unknown): ValidationError {
  try {
    make();
  } catch (error) {
    expect(error).toBeInstanceOf(ValidationError);
    return error as ValidationError;
  }
  throw new Error("the options were accepted");
}

async function rejectionOf(make: () => Promise<unknown>): Promise<ValidationError> {
  const error = await make().then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ValidationError);
  return error as ValidationError;
}

describe("every options object of @auditgraph/policy refuses unknown keys, naming them", () => {
  it("the policy set's options", () => {
    const error = refusalOf(() => PolicySet.create([rule], { function: [] } as never));
    expect(error.message).toMatch(/policy set options: .*"function"/);
    expect(PolicySet.create([rule], { functions: [] }).policies).toHaveLength(1);
  });

  it("policy definitions and files, at every level", () => {
    expect(refusalOf(() => PolicySet.create([{ ...rule, severty: "high" } as unknown as PolicyDefinitionInput])).message).toMatch(/policies\.0: .*"severty"/);
    expect(
      refusalOf(() => PolicySet.create([{ ...rule, when: { field: "name", op: "equals", valeu: 1 } } as unknown as PolicyDefinitionInput])).message,
    ).toMatch(/"valeu"/);
    expect(refusalOf(() => PolicySet.create({ policies: [rule], polices: [] } as never)).message).toMatch(/"polices"/);
  });

  it("loadPolicySet's and loadPolicyFile's options", async () => {
    const text = JSON.stringify({ policies: [rule] });
    expect(refusalOf(() => loadPolicySet(text, { format: "json", sauce: "x" } as never)).message).toMatch(/policy file options: .*"sauce"/);
    expect(loadPolicySet(text, { format: "json", source: "p.json" }).policies).toHaveLength(1);
    const dir = await mkdtemp(join(tmpdir(), "auditgraph-policy-options-"));
    await writeFile(join(dir, "p.json"), text);
    expect((await rejectionOf(() => loadPolicyFile(join(dir, "p.json"), { fromat: "json" } as never))).message).toMatch(/"fromat"/);
    expect((await loadPolicyFile(join(dir, "p.json"), { format: "json" })).policies).toHaveLength(1);
  });

  it("the inline enforcer's options", () => {
    const set = PolicySet.create([rule]);
    expect(refusalOf(() => new InlineEnforcer({ set, decidr: {} } as never)).message).toMatch(/inline policies options: .*"decidr"/);
    expect(refusalOf(() => new InlineEnforcer({ set, escalation: { minSeverity: "high", onUrgent: () => undefined, urgent: 1 } } as never)).message).toMatch(
      /escalation: .*"urgent"/,
    );
  });

  it("the notifier's options and its webhook's", () => {
    expect(refusalOf(() => new EscalationNotifier({ callback: () => undefined, concurency: 2 } as never)).message).toMatch(
      /EscalationNotifier options: .*"concurency"/,
    );
    const webhook = { url: "http://127.0.0.1:1/", secret: "0123456789abcdef0123", retries: 3 };
    const error = refusalOf(() => new EscalationNotifier({ webhook } as never));
    expect(error.issues.map((issue) => issue.path)).toEqual(["webhook"]);
    expect(error.message).toMatch(/"retries"/);
    // Whatever else is wrong, the secret is never echoed.
    expect(error.message).not.toContain(webhook.secret);
  });
});
