import type { EventOf, PlainRecord } from "@auditgraph/core";
import { type Batch, type Step, type UserRecord, base, distinctBy, json, keyOf, ofType } from "./common.js";
import { statement } from "./statement.js";

// Tool runs, the LLM calls that asked for them, and the requests no run answers.

// Each tool run is a ToolCall of its own, keyed by its run: providers reuse tool-call ids across
// turns, so a model's call id names a request only within the LLM call that made it (see
// TOOL_LINKS). A retriever run inside a tool run (a retriever tool) is linked to its tool call,
// from whichever side is projected second.
const TOOL_START = statement("tools", "tool-start");

const TOOL_END = statement("tools", "tool-end");

// The LLM call that asked for a tool run: the latest one of its trace, before the run (by event
// id, the producer's capture order), whose output requested the run's call id. Recomputed whole
// for every (trace, call id) a batch touches, from whichever side is projected second, so the
// links do not depend on the order batches arrive in; a stale link (an earlier asker, seen before
// the later one was projected) goes. The run's requested arguments are its asker's.
// A tool call the model asked for that no run answers (yet, or ever: a held or denied call) is a
// ToolCall of status 'requested', keyed by its request (the LLM call, the call id); it goes once a
// run of that request is projected, which takes its links. Both in one statement, per (trace, call
// id): links first, then requests; the groups touch disjoint nodes, so doing them group by group
// leaves what doing all links, then all requests, did.
const TOOL_GROUPS = statement("tools", "tool-groups");

/** A tool run's call id: the model's tool-call id when it has one, else the run id (a tool a chain ran itself). */
export const callIdOf = (r: UserRecord, toolCallId: string | undefined) => toolCallId ?? r.event.runId;

/** The call ids an LLM call's output asks for (a request without an id is named by its place). */
export const requestedCallIds = (r: PlainRecord & { event: EventOf<"llm.end"> }) =>
  r.event.payload.output.toolCalls.map((tc, i) => tc.id ?? `${r.event.runId}#${i}`);

// Every (trace, call id) this batch asks for or runs: its runs are relinked, its requests settled.
function toolGroups(b: Batch) {
  return distinctBy(
    [
      ...ofType(b.records, "llm.end").flatMap((r) =>
        requestedCallIds(r).map((callId) => ({ tenantId: r.event.identity.user.tenantId, traceId: r.event.traceId, callId })),
      ),
      ...ofType(b.records, "tool.start", "tool.end", "tool.error").map((r) => ({
        tenantId: r.event.identity.user.tenantId,
        traceId: r.event.traceId,
        callId: callIdOf(r, r.event.payload.toolCallId),
      })),
    ],
    (row) => keyOf(row.tenantId, row.traceId, row.callId),
  );
}

export const toolSteps = {
  toolStart: {
    cypher: TOOL_START,
    rows: (b) =>
      ofType(b.records, "tool.start").map((r) => ({
        ...base(r),
        callId: callIdOf(r, r.event.payload.toolCallId),
        name: r.event.name ?? "unknown",
        input: json(r.event.payload.input),
      })),
  },
  toolEnd: {
    cypher: TOOL_END,
    rows: (b) =>
      ofType(b.records, "tool.end", "tool.error").map((r) => ({
        ...base(r),
        callId: callIdOf(r, r.event.payload.toolCallId),
        status: r.event.type === "tool.end" ? "ok" : "error",
        output: r.event.type === "tool.end" ? json(r.event.payload.output) : null,
        error: r.event.type === "tool.error" ? json(r.event.payload.error) : null,
        name: r.event.name ?? null,
        // The agent's own refusal (a block or a denied hold): the call never ran. Kept apart from
        // `error`, which erasure clears.
        refused: r.event.type === "tool.error" && r.event.payload.error.name === "PolicyRefusal",
      })),
  },
  toolGroups: { cypher: TOOL_GROUPS, rows: toolGroups },
} satisfies Record<string, Step>;
