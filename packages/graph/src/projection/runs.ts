import neo4j from "neo4j-driver";
import { sha256Hex } from "@auditgraph/core";
import { type Batch, type Step, base, json, ofType } from "./common.js";
import { requestedCallIds } from "./tools.js";
import { statement } from "./statement.js";

// Runs: a root chain's start and end (its trace), model calls, their outputs and reasoning steps.
// Nested chains, agent actions and finishes, text and llm.token events have nothing of their own.

const ROOT_START = statement("runs", "root-start");

const ROOT_END = statement("runs", "root-end");

// A model call that starts after a retrieval of its trace ended may have the retrieved documents
// in its context (see RETRIEVAL_USED_BY for the rule); linked from both sides, so that the order
// the two are projected in does not matter.
const LLM_START = statement("runs", "llm-start");

const LLM_END = statement("runs", "llm-end");

// Steps first, then their order: two statements, so that NEXT never depends on row order.
const REASONING_STEPS = statement("runs", "reasoning-steps");

const REASONING_ORDER = statement("runs", "reasoning-order");

const LLM_ERROR = statement("runs", "llm-error");

/** The root runs of the batch: a trace's own start and end. */
const roots = (b: Batch) => b.records.filter((r) => r.event.parentRunId === null);

function reasoningRows(b: Batch) {
  return ofType(b.records, "llm.end")
    .filter((r) => r.event.payload.reasoning?.length)
    .map((r) => ({
      ...base(r),
      steps: r.event.payload.reasoning!.map((step, i, all) => ({
        id: `${r.event.eventId}#${step.index}`,
        prevId: i > 0 ? `${r.event.eventId}#${all[i - 1]!.index}` : null,
        index: neo4j.int(step.index),
        kind: step.kind,
        text: step.text ?? null,
        toolCall: step.toolCall ? json(step.toolCall) : null,
        callId: step.toolCall ? (step.toolCall.id ?? null) : null,
      })),
    }));
}

export const runSteps = {
  rootStart: {
    cypher: ROOT_START,
    rows: (b) => ofType(b.derive(roots), "chain.start").map((r) => ({ ...base(r), name: r.event.name ?? null, input: json(r.event.payload.inputs) })),
  },
  rootEnd: {
    cypher: ROOT_END,
    rows: (b) =>
      ofType(b.derive(roots), "chain.end", "chain.error").map((r) => ({
        ...base(r),
        status: r.event.type === "chain.end" ? "ok" : "error",
        output: r.event.type === "chain.end" ? json(r.event.payload.outputs) : null,
        error: r.event.type === "chain.error" ? json(r.event.payload.error) : null,
      })),
  },
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
      })),
  },
  reasoningSteps: { cypher: REASONING_STEPS, rows: (b) => b.derive(reasoningRows) },
  // Only the keys: the steps' text went with REASONING_STEPS, and would only be sent again.
  reasoningOrder: {
    cypher: REASONING_ORDER,
    rows: (b) => b.derive(reasoningRows).map((r) => ({ tenantId: r.tenantId, steps: r.steps.map(({ id, prevId }) => ({ id, prevId })) })),
  },
  llmError: { cypher: LLM_ERROR, rows: (b) => ofType(b.records, "llm.error").map((r) => ({ ...base(r), error: json(r.event.payload.error) })) },
} satisfies Record<string, Step>;
