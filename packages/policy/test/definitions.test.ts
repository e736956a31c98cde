import { describe, expect, it } from "vitest";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ValidationError } from "@auditgraph/core";
import { z } from "zod";
import { PolicySet, definePolicyFunction, loadPolicyFile, loadPolicySet, type PolicyDefinitionInput } from "../src/index.js";
import { trace } from "./events.js";

const YAML = `
policies:
  - kind: rule
    id: refund-over-limit
    version: 2
    description: refunds above 500 need a second look
    severity: high
    action: escalate
    eventTypes: [tool.start]
    when:
      all:
        - { field: name, op: equals, value: refund }
        - { field: payload.input.amount, op: gt, value: 500 }
  - kind: function
    id: no-shell
    version: "1"
    severity: critical
    action: block
    function: tool-guard
    params:
      deny: [shell]
`;

const JSON_FILE = {
  policies: [
    {
      kind: "rule",
      id: "refund-over-limit",
      version: "2",
      description: "refunds above 500 need a second look",
      severity: "high",
      action: "escalate",
      eventTypes: ["tool.start"],
      when: {
        all: [
          { field: "name", op: "equals", value: "refund" },
          { field: "payload.input.amount", op: "gt", value: 500 },
        ],
      },
    },
    { kind: "function", id: "no-shell", version: "1", severity: "critical", action: "block", function: "tool-guard", params: { deny: ["shell"] } },
  ],
};

/** The ValidationError's issues, as `path: message` lines. */
function refusal(load: () => unknown): string[] {
  try {
    load();
  } catch (error) {
    if (error instanceof ValidationError) return error.issues.map((i) => `${i.path}: ${i.message}`);
    throw error;
  }
  throw new Error("loaded, but should have been refused");
}

const rule = (overrides: Record<string, unknown> = {}) =>
  ({
    kind: "rule",
    id: "r",
    version: "1",
    severity: "low",
    action: "flag",
    eventTypes: ["llm.end"],
    when: { field: "payload.output.text", op: "matches", pattern: "refund" },
    ...overrides,
  }) as PolicyDefinitionInput;

describe("policy files", () => {
  it("load from YAML and JSON to the same set, hash included", async () => {
    const fromYaml = loadPolicySet(YAML, { format: "yaml" });
    const fromJson = loadPolicySet(JSON.stringify(JSON_FILE), { format: "json" });
    expect(fromYaml.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(fromJson.hash).toBe(fromYaml.hash);
    expect(fromYaml.policies.map((p) => [p.id, p.version, p.action])).toEqual([
      ["refund-over-limit", "2", "escalate"],
      ["no-shell", "1", "block"],
    ]);

    const dir = await mkdtemp(join(tmpdir(), "policy-"));
    await writeFile(join(dir, "p.yml"), YAML);
    await writeFile(join(dir, "p.json"), JSON.stringify(JSON_FILE));
    expect((await loadPolicyFile(join(dir, "p.yml"))).hash).toBe(fromYaml.hash);
    expect((await loadPolicyFile(join(dir, "p.json"))).hash).toBe(fromYaml.hash);
    await expect(loadPolicyFile(join(dir, "p.txt"))).rejects.toThrow(/unknown format/);
  });

  it("evaluate what they say: a rule over a tool's JSON input, a built-in by name", async () => {
    const set = loadPolicySet(YAML, { format: "yaml" });
    const t = trace();
    const big = t.toolStart("refund", { amount: 900, note: "damaged" });
    const [finding, ...rest] = await set.evaluate(big);
    expect(rest).toEqual([]);
    expect(finding).toMatchObject({
      policyId: "refund-over-limit",
      policyVersion: "2",
      policySetHash: set.hash,
      severity: "high",
      action: "escalate",
      concerns: { eventId: big.eventId, runId: big.runId, traceId: t.traceId, kind: "tool_call" },
      reason: "refunds above 500 need a second look",
      evidence: { fields: ["name", "payload.input.amount"], measures: { matches: 2 } },
    });
    expect(await set.evaluate(t.toolStart("refund", { amount: 20 }))).toEqual([]);
    expect((await set.evaluate(t.toolStart("shell", { cmd: "ls" }))).map((f) => f.policyId)).toEqual(["no-shell"]);
  });

  it("refuses bad files, naming the field", () => {
    const yaml = (body: string) => () => loadPolicySet(`policies:\n${body}`, { format: "yaml", source: "bad.yaml" });
    // The subject names the file.
    expect(() => yaml("  - kind: rule\n")()).toThrow(/^invalid policy file bad\.yaml: /);

    expect(
      refusal(() =>
        PolicySet.create([
          rule({
            when: {
              all: [
                { field: "a", op: "exists" },
                { field: "b", op: "bogus" },
              ],
            },
          }),
        ]),
      ),
    ).toEqual([expect.stringMatching(/^policies\.0\.when\.all\.1\.op: .*'equals' \| 'in' \| 'matches'/)]);
    expect(refusal(() => PolicySet.create([rule({ when: { any: [{ not: { field: "a", op: "matches", pattern: "(" } }] } })]))).toEqual([
      expect.stringMatching(/^policies\.0\.when\.any\.0\.not\.pattern: not a valid regular expression/),
    ]);
    expect(refusal(() => PolicySet.create([rule({ when: { field: "usage.totalTokens", op: "gt", value: "many" } })]))).toEqual([
      expect.stringMatching(/^policies\.0\.when\.value: .*expected number/),
    ]);
    expect(refusal(() => PolicySet.create([rule({ when: { field: "a..b", op: "exists" } })]))).toEqual([expect.stringMatching(/^policies\.0\.when\.field: /)]);
    expect(refusal(() => PolicySet.create([rule({ severity: "urgent" })]))).toEqual([expect.stringMatching(/^policies\.0\.severity: /)]);
    expect(refusal(() => PolicySet.create([rule({ eventTypes: ["policy.flag"] })]))).toEqual([expect.stringMatching(/^policies\.0\.eventTypes\.0: /)]);
    expect(refusal(() => PolicySet.create([rule({ action: "hold" })]))).toEqual([expect.stringMatching(/^policies\.0\.hold: action hold needs/)]);
    expect(refusal(() => PolicySet.create([rule({ hold: { timeoutMs: 1000, defaultOutcome: "deny" } })]))).toEqual([
      expect.stringMatching(/^policies\.0\.hold: only action hold/),
    ]);
    expect(refusal(() => PolicySet.create([rule({ action: "hold", hold: { timeoutMs: 0, defaultOutcome: "maybe" } })]))).toEqual([
      expect.stringMatching(/^policies\.0\.hold\.timeoutMs: /),
      expect.stringMatching(/^policies\.0\.hold\.defaultOutcome: /),
    ]);
    expect(refusal(() => PolicySet.create([rule(), rule()]))).toEqual(["policies.1.id: duplicate policy id (also policies.0.id)"]);
    expect(refusal(() => PolicySet.create([rule({ colour: "red" })]))).toEqual([expect.stringMatching(/^policies\.0: Unrecognized key: "colour"/)]);

    // Function policies: the name must be registered, the parameters fit the function's schema.
    const fn = (function_: string, params: unknown) =>
      ({ kind: "function", id: "f", version: "1", severity: "low", action: "flag", function: function_, params }) as PolicyDefinitionInput;
    expect(refusal(() => PolicySet.create([fn("nope", {})]))).toEqual([
      expect.stringMatching(/^policies\.0\.function: no policy function named nope \(registered: .*budget/),
    ]);
    expect(refusal(() => PolicySet.create([fn("budget", { scope: "trace", maxTokens: -5 })]))).toEqual([
      expect.stringMatching(/^policies\.0\.params\.maxTokens: /),
    ]);
    expect(refusal(() => PolicySet.create([fn("budget", { scope: "trace" })]))).toEqual(["policies.0.params.maxTokens: set maxTokens, maxCost or both"]);
    expect(refusal(() => PolicySet.create([fn("tool-guard", { bounds: { transfer: { amount: { type: "number", min: 10, max: 1 } } } })]))).toEqual([
      "policies.0.params.bounds.transfer.amount.max: must not be below min",
    ]);
    expect(refusal(() => PolicySet.create([fn("blocked-output", { patterns: [{ id: "p", pattern: "[" }] })]))).toEqual([
      expect.stringMatching(/^policies\.0\.params\.patterns\.0\.pattern: not a valid regular expression/),
    ]);

    // Syntax errors name the line.
    expect(refusal(yaml("  - kind: rule\n    id: a\n    id: b\n"))).toEqual([expect.stringMatching(/^: not valid YAML: Map keys must be unique at line 4/)]);
    expect(refusal(() => loadPolicySet("{ policies: [", { format: "json" }))).toEqual([expect.stringMatching(/^: not valid JSON/)]);
  });
});

describe("the set hash", () => {
  const a = rule({ id: "a" });
  const b = {
    kind: "function",
    id: "b",
    version: "1",
    severity: "high",
    action: "block",
    function: "tool-guard",
    params: { deny: ["shell"] },
  } as PolicyDefinitionInput;

  it("does not change with the order of the policies, nor with defaults spelled out", () => {
    const hash = PolicySet.create([a, b]).hash;
    expect(PolicySet.create([b, a]).hash).toBe(hash);
    expect(PolicySet.create({ policies: [b, a] }).hash).toBe(hash);
    // tool-guard's `bounds` defaults to {}: the same behaviour, the same hash.
    expect(PolicySet.create([a, { ...b, params: { deny: ["shell"], bounds: {} } } as PolicyDefinitionInput]).hash).toBe(hash);
  });

  it("changes when any policy changes: version, severity, action, condition, parameters, or the function's code version", () => {
    const hash = PolicySet.create([a, b]).hash;
    const variants: PolicyDefinitionInput[][] = [
      [{ ...a, version: "2" }, b],
      [{ ...a, severity: "medium" }, b],
      [{ ...a, action: "escalate" }, b],
      [{ ...a, when: { field: "payload.output.text", op: "matches", pattern: "refunds" } } as PolicyDefinitionInput, b],
      [a, { ...b, params: { deny: ["shell", "rm"] } } as PolicyDefinitionInput],
      [a],
    ];
    const hashes = variants.map((policies) => PolicySet.create(policies).hash);
    for (const h of hashes) expect(h).not.toBe(hash);
    expect(new Set(hashes).size).toBe(hashes.length);

    const custom = (version: string) =>
      definePolicyFunction({ name: "always", version, params: z.strictObject({}), eventTypes: ["llm.end"], create: () => () => ({ reason: "always" }) });
    const withFn = (version: string) =>
      PolicySet.create([a, { kind: "function", id: "c", version: "1", severity: "low", action: "flag", function: "always" }], { functions: [custom(version)] })
        .hash;
    expect(withFn("1")).toBe(withFn("1"));
    expect(withFn("2")).not.toBe(withFn("1"));
  });

  it("is recorded with every finding", async () => {
    const set = PolicySet.create([a, b]);
    const [finding] = await set.evaluate(trace().llmEnd("Your refund is on its way."));
    expect(finding?.policySetHash).toBe(set.hash);
  });

  it("refuses a function registered under a taken name", () => {
    const clash = definePolicyFunction({ name: "budget", version: "1", params: z.strictObject({}), eventTypes: ["llm.end"], create: () => () => undefined });
    expect(() => PolicySet.create([], { functions: [clash] })).toThrow(/functions: policy function budget is registered twice/);
  });
});

describe("conditions", () => {
  const t = trace();
  const end = t.make("retriever.end", {
    documents: [
      { pageContent: "Shipping takes 2 days.", metadata: { source: "shipping.md", rank: 1 } },
      { pageContent: "Returns within 30 days.", metadata: { source: "returns.md", rank: 2 } },
    ],
  });
  const match = async (when: unknown) => {
    const set = PolicySet.create([rule({ eventTypes: ["retriever.end"], when })]);
    const [finding] = await set.evaluate(end);
    return finding?.evidence.fields;
  };

  it("hold when any value at a wildcard path passes, and point at the ones that did", async () => {
    expect(await match({ field: "payload.documents.*.pageContent", op: "matches", pattern: "^returns", flags: "i" })).toEqual([
      "payload.documents.1.pageContent",
    ]);
    expect(await match({ field: "payload.documents.*.metadata.rank", op: "gte", value: 1 })).toEqual([
      "payload.documents.0.metadata.rank",
      "payload.documents.1.metadata.rank",
    ]);
    expect(await match({ field: "payload.documents.0.metadata.source", op: "in", values: ["faq.md", "shipping.md"] })).toEqual([
      "payload.documents.0.metadata.source",
    ]);
    expect(await match({ field: "payload.documents.1.metadata", op: "equals", value: { rank: 2, source: "returns.md" } })).toEqual([
      "payload.documents.1.metadata",
    ]);
    expect(await match({ field: "payload.documents.5", op: "exists" })).toBeUndefined();
    expect(await match({ field: "payload.documents.*.metadata.rank", op: "lt", value: 1 })).toBeUndefined();
    // Type-strict: a number never matches a pattern, a string is never greater than a number.
    expect(await match({ field: "payload.documents.*.metadata.rank", op: "matches", pattern: "1" })).toBeUndefined();
    expect(await match({ field: "payload.documents.*.pageContent", op: "gt", value: 0 })).toBeUndefined();
  });

  it("combine with all, any and not", async () => {
    const shipping = { field: "payload.documents.*.pageContent", op: "matches", pattern: "Shipping" };
    const refunds = { field: "payload.documents.*.pageContent", op: "matches", pattern: "Refund" };
    expect(await match({ all: [shipping, { not: refunds }] })).toEqual(["payload.documents.0.pageContent"]);
    expect(await match({ all: [shipping, refunds] })).toBeUndefined();
    expect(await match({ any: [refunds, shipping] })).toEqual(["payload.documents.0.pageContent"]);
    expect(await match({ not: shipping })).toBeUndefined();
  });
});
