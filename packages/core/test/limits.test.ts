import { describe, expect, it } from "vitest";
import { MAX_ID_LENGTH, MAX_NAME_LENGTH, newEventId, parseEvent } from "../src/index.js";
import { sampleEvent } from "./fixtures.js";

/**
 * Ids and names the graph keys or indexes are bounded: Neo4j refuses an index key over ~8 KB,
 * and an event that cannot be projected would hold its tenant's whole stream. At the limit an
 * event is valid; one character over, it is refused naming the field.
 */
const toolCall = { id: "call_1", name: "add", args: { a: 1 } };
const flagPayload = {
  policyId: "p1",
  policyVersion: "1",
  policySetHash: "0".repeat(64),
  severity: "low",
  action: "flag",
  concerns: { runId: "run-1", kind: "output" },
  reason: "r",
  evidence: { fields: [], measures: {} },
  outcome: "flagged",
};
const BASES = {
  "llm.start": () =>
    sampleEvent({
      parentRunId: "parent-1",
      sessionId: "s1",
      model: { provider: "fake", name: "m", version: "v", params: {} },
      payload: { messages: [{ role: "tool", content: "3", toolCallId: "call_1" }], tools: [{ name: "add" }] },
    }),
  "llm.end": () =>
    sampleEvent({ type: "llm.end", payload: { output: { text: "", toolCalls: [toolCall] }, reasoning: [{ index: 0, kind: "tool_call", toolCall }] } }),
  "tool.start": () => sampleEvent({ type: "tool.start", name: "add", model: undefined, payload: { toolCallId: "call_1", input: "{}" } }),
  "tool.end": () => sampleEvent({ type: "tool.end", name: "add", model: undefined, payload: { toolCallId: "call_1", output: "3" } }),
  "tool.error": () => sampleEvent({ type: "tool.error", name: "add", model: undefined, payload: { toolCallId: "call_1", error: { name: "E", message: "m" } } }),
  "retriever.end": () => sampleEvent({ type: "retriever.end", model: undefined, payload: { documents: [{ id: "doc-1", pageContent: "x", metadata: {} }] } }),
  "policy.flag": () => sampleEvent({ type: "policy.flag", model: undefined, payload: flagPayload }),
  deployment: () => {
    const {
      identity: _identity,
      model: _model,
      ...rest
    } = sampleEvent({
      type: "deployment",
      tenantId: "t1",
      payload: { target: "agent", agentId: "a1", version: "1", action: "rollout", environment: "production" },
    }) as unknown as Record<string, unknown>;
    return rest;
  },
  "model deployment": () => {
    const {
      identity: _identity,
      model: _model,
      ...rest
    } = sampleEvent({
      type: "deployment",
      tenantId: "t1",
      payload: { target: "model", provider: "fake", name: "m", version: "1", action: "rollout" },
    }) as unknown as Record<string, unknown>;
    return rest;
  },
} satisfies Record<string, () => unknown>;

const LIMITED: [keyof typeof BASES, string, number][] = [
  ["llm.start", "traceId", MAX_ID_LENGTH],
  ["llm.start", "runId", MAX_ID_LENGTH],
  ["llm.start", "parentRunId", MAX_ID_LENGTH],
  ["llm.start", "sessionId", MAX_ID_LENGTH],
  ["llm.start", "identity.user.id", MAX_ID_LENGTH],
  ["llm.start", "identity.user.tenantId", MAX_ID_LENGTH],
  ["llm.start", "identity.agent.id", MAX_ID_LENGTH],
  ["llm.start", "identity.agent.name", MAX_NAME_LENGTH],
  ["llm.start", "identity.agent.version", MAX_NAME_LENGTH],
  ["llm.start", "model.provider", MAX_NAME_LENGTH],
  ["llm.start", "model.name", MAX_NAME_LENGTH],
  ["llm.start", "model.version", MAX_NAME_LENGTH],
  ["llm.start", "payload.messages.0.toolCallId", MAX_ID_LENGTH],
  ["llm.start", "payload.tools.0.name", MAX_NAME_LENGTH],
  ["llm.end", "payload.output.toolCalls.0.id", MAX_ID_LENGTH],
  ["llm.end", "payload.output.toolCalls.0.name", MAX_NAME_LENGTH],
  ["llm.end", "payload.reasoning.0.toolCall.id", MAX_ID_LENGTH],
  ["tool.start", "name", MAX_NAME_LENGTH],
  ["tool.start", "payload.toolCallId", MAX_ID_LENGTH],
  ["tool.end", "payload.toolCallId", MAX_ID_LENGTH],
  ["tool.error", "payload.toolCallId", MAX_ID_LENGTH],
  ["retriever.end", "payload.documents.0.id", MAX_ID_LENGTH],
  ["policy.flag", "payload.policyId", MAX_ID_LENGTH],
  ["policy.flag", "payload.policyVersion", MAX_NAME_LENGTH],
  ["policy.flag", "payload.concerns.runId", MAX_ID_LENGTH],
  ["deployment", "tenantId", MAX_ID_LENGTH],
  ["deployment", "payload.agentId", MAX_ID_LENGTH],
  ["deployment", "payload.version", MAX_NAME_LENGTH],
  ["deployment", "payload.environment", MAX_NAME_LENGTH],
  ["model deployment", "payload.provider", MAX_NAME_LENGTH],
  ["model deployment", "payload.name", MAX_NAME_LENGTH],
];

const issuesOf = (result: ReturnType<typeof parseEvent>) => (result.success ? [] : result.error.issues);

function withValue(event: unknown, path: string, value: string): unknown {
  const copy = structuredClone(event) as Record<string, unknown>;
  const keys = path.split(".");
  let at = copy as Record<string, unknown>;
  for (const key of keys.slice(0, -1)) at = at[key] as Record<string, unknown>;
  at[keys.at(-1)!] = value;
  return { ...copy, eventId: newEventId() };
}

describe("id and name limits", () => {
  it("the base events are valid", () => {
    for (const [type, base] of Object.entries(BASES)) expect(parseEvent(base()).success, type).toBe(true);
  });

  it.each(LIMITED)("%s: %s is accepted at its limit and refused one character over, naming the field", (type, path, max) => {
    const base = BASES[type]();
    expect(parseEvent(withValue(base, path, "x".repeat(max))).success).toBe(true);
    const over = parseEvent(withValue(base, path, "x".repeat(max + 1)));
    expect(over.success).toBe(false);
    expect(issuesOf(over).map((i) => i.path.join("."))).toContain(path);
  });

  it("a 40 KB trace id is refused, naming traceId", () => {
    const result = parseEvent(withValue(sampleEvent(), "traceId", "t".repeat(40_000)));
    expect(result.success).toBe(false);
    expect(issuesOf(result)).toEqual([expect.objectContaining({ path: ["traceId"], message: expect.stringMatching(/256/) })]);
  });
});
