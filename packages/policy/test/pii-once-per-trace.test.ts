import { describe, expect, it } from "vitest";
import type { AuditEvent } from "@auditgraph/core";
import { Redactor } from "@auditgraph/redaction";
import { InMemoryPolicyState, PolicySet, type PolicyDefinitionInput, type PolicyState } from "../src/index.js";
import { trace } from "./events.js";

const piiPolicy: PolicyDefinitionInput = {
  kind: "function",
  id: "pii",
  version: "1",
  severity: "medium",
  action: "flag",
  function: "pii-or-secret",
  params: {},
};

async function flaggedIndexes(events: AuditEvent[], state: PolicyState = new InMemoryPolicyState()) {
  const set = PolicySet.create([piiPolicy]);
  const out: Array<[number, Record<string, number>]> = [];
  for (const [i, event] of events.entries()) for (const f of await set.evaluate(event, { state })) out.push([i, f.evidence.measures]);
  return out;
}

describe("pii-or-secret: each distinct value is one finding per trace", () => {
  it("a tool result's e-mail repeated by every later chain and model event is flagged once, where it first appears", async () => {
    const redactor = new Redactor({ pii: true });
    const t = trace({ user: { id: "u", tenantId: "acme" } });
    const result = "customer ann.lee@example.com";
    const events = [
      t.llmStart("Look up order 42"),
      t.toolEnd("crm_lookup", result),
      t.make("chain.end", { outputs: { messages: [{ role: "tool", content: result }] } }),
      t.llmStart(`tool said: ${result}`),
      t.make("chain.start", { inputs: { messages: [result] } }),
      t.make("chain.end", { outputs: { text: `Found ANN.LEE@example.com` } }),
    ].map((e) => redactor.redactEvent(e));
    expect(events.filter((e) => e.redactions).length).toBe(5);
    expect(await flaggedIndexes(events)).toEqual([[1, { email: 1 }]]);
  });

  it("a second distinct value is its own finding; the same value in another trace or tenant is flagged there", async () => {
    const redactor = new Redactor({ pii: true });
    const state = new InMemoryPolicyState();
    const t = trace({ user: { id: "u", tenantId: "acme" } });
    const first = await flaggedIndexes(
      [t.toolEnd("a", "ann@example.com"), t.toolEnd("b", "ann@example.com and bo@example.org, +1 415 555 2671"), t.toolEnd("c", "bo@example.org")].map((e) =>
        redactor.redactEvent(e),
      ),
      state,
    );
    expect(first).toEqual([
      [0, { email: 1 }],
      [1, { email: 1, phone: 1 }],
    ]);
    const sameTenantOtherTrace = trace({ user: { id: "u", tenantId: "acme" } });
    const otherTenantSameTrace = trace({ user: { id: "u", tenantId: "globex" }, traceId: t.traceId });
    for (const other of [sameTenantOtherTrace, otherTenantSameTrace]) {
      expect(await flaggedIndexes([redactor.redactEvent(other.toolEnd("a", "ann@example.com"))], state)).toEqual([[0, { email: 1 }]]);
    }
  });

  it("a redelivered first event is flagged again (its flag id is the same, so the ledger keeps one); a later one is not", async () => {
    const redactor = new Redactor({ pii: true });
    const state = new InMemoryPolicyState();
    const t = trace();
    const first = redactor.redactEvent(t.toolEnd("a", "ann@example.com"));
    const later = redactor.redactEvent(t.llmStart("ann@example.com"));
    expect(await flaggedIndexes([first, later, first, later], state)).toEqual([
      [0, { email: 1 }],
      [2, { email: 1 }],
    ]);
  });

  it("a state without claim (written before it) still flags a value once, and events without digests count as before", async () => {
    const inner = new InMemoryPolicyState();
    const addOnly: PolicyState = { add: (k, e, n) => inner.add(k, e, n), get: (k) => inner.get(k) };
    const redactor = new Redactor({ pii: true });
    const t = trace();
    const events = [t.toolEnd("a", "ann@example.com"), t.llmStart("ann@example.com")].map((e) => redactor.redactEvent(e));
    expect(await flaggedIndexes(events, addOnly)).toEqual([[0, { email: 1 }]]);
    // An older agent's events carry counts only: each counts on its own.
    const legacy = events.map(({ redactionDigests: _d, ...rest }) => rest as AuditEvent);
    expect(await flaggedIndexes(legacy)).toEqual([
      [0, { email: 1 }],
      [1, { email: 1 }],
    ]);
  });
});

describe("pii-or-secret as a block rule", () => {
  it("blocks every call that carries a value, however often the trace held it before", async () => {
    const set = PolicySet.create([{ ...piiPolicy, action: "block", severity: "critical" } as PolicyDefinitionInput]);
    const state = new InMemoryPolicyState();
    const redactor = new Redactor();
    const t = trace();
    const key = "sk-proj-abcdefghijklmnopqrstuvwxyz0123456789ABCD";
    const events = [t.make("chain.start", { inputs: { input: key } }), t.llmStart(`use ${key}`), t.llmStart(`again ${key}`)].map((e) =>
      redactor.redactEvent(e),
    );
    const blocked = [];
    for (const event of events) blocked.push((await set.evaluate(event, { state })).length);
    expect(blocked).toEqual([1, 1, 1]);
  });
});
