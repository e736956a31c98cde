import neo4j from "neo4j-driver";
import { sha256Hex, type EventOf, type PlainRecord } from "@auditgraph/core";
import { type Step, base, json, ofType } from "./common.js";
import { requestedCallIds } from "./tools.js";
import { statement } from "./statement.js";

// Runs: model calls, their outputs and reasoning steps (a root chain's start and end are its
// trace's: see traces.ts). Nested chains, agent actions and finishes, text and llm.token events
// have nothing of their own.

// A model call that starts after a retrieval of its trace ended may have the retrieved documents
// in its context (see RETRIEVER_END in retrievals.ts for the rule); linked from both sides, so that the order
// the two are projected in does not matter.
const LLM_START = statement("runs", "llm-start");

// With the call's reasoning steps, then their order (each in a subquery of its own, so that NEXT
// never depends on step order): one statement rather than three.
const LLM_END = statement("runs", "llm-end");

const LLM_ERROR = statement("runs", "llm-error");

/** An llm.end's reasoning steps, in order (none: an empty list). */
const reasoningSteps = (r: PlainRecord & { event: EventOf<"llm.end"> }) =>
  (r.event.payload.reasoning ?? []).map((step, i, all) => ({
    id: `${r.event.eventId}#${step.index}`,
    prevId: i > 0 ? `${r.event.eventId}#${all[i - 1]!.index}` : null,
    index: neo4j.int(step.index),
    kind: step.kind,
    text: step.text ?? null,
    toolCall: step.toolCall ? json(step.toolCall) : null,
    callId: step.toolCall ? (step.toolCall.id ?? null) : null,
  }));

export const runSteps = {
  llmStart: {
    cypher: LLM_START,
    rows: (b) =>
      ofType(b.records, "llm.start").map((r) => {
        // The messages are an array, so their property text is their canonical JSON: hashed as it is
        // (what hashCanonical would give), not serialised a second time.
        const messages = json(r.event.payload.messages);
        return {
          ...base(r),
          provider: r.event.model.provider,
          model: r.event.model.name,
          params: json(r.event.model.params),
          // Hashed here, not in the agent: it is the same for every reader and costs the agent nothing.
          promptHash: sha256Hex(messages),
          messages,
          templateHash: r.event.payload.templateHash ?? null,
        };
      }),
  },
  llmEnd: {
    cypher: LLM_END,
    rows: (b) =>
      ofType(b.records, "llm.end").map((r) => ({
        ...base(r),
        provider: r.event.model.provider,
        model: r.event.model.name,
        version: r.event.model.version ?? r.event.model.name,
        text: r.event.payload.output.text,
        toolCallsJson: json(r.event.payload.output.toolCalls),
        // Parallel lists (properties cannot hold maps): what TOOL_LINKS and TOOL_REQUESTS read.
        toolCallIds: requestedCallIds(r),
        toolCallNames: r.event.payload.output.toolCalls.map((tc) => tc.name),
        toolCallArgs: r.event.payload.output.toolCalls.map((tc) => json(tc.args)),
        inputTokens: neo4j.int(r.event.usage?.inputTokens ?? 0),
        outputTokens: neo4j.int(r.event.usage?.outputTokens ?? 0),
        totalTokens: neo4j.int(r.event.usage?.totalTokens ?? 0),
        // Cost sits beside usage since schema v2 (null when the handler had no price for the model).
        costCurrency: r.event.cost?.currency ?? null,
        costTotal: r.event.cost?.total ?? null,
        steps: reasoningSteps(r),
      })),
  },
  llmError: { cypher: LLM_ERROR, rows: (b) => ofType(b.records, "llm.error").map((r) => ({ ...base(r), error: json(r.event.payload.error) })) },
} satisfies Record<string, Step>;
