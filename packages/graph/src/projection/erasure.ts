import type { Batch, Step } from "./common.js";
import { statement } from "./statement.js";

// Corrections and erasure. A `correction` event (a new event pointing at the one it corrects) has
// nothing of its own to project: it is an event of its trace (the trace steps), no more.
// A `subject.erased` event takes the subject's payload text out of the graph.

// Erasure: the payload text of every trace the subject requested goes, the structure stays (nodes,
// relationships, ids, times, token counts), so lineage and counts still answer. Each statement
// reaches its nodes from the subject's User, along the relationships the projection writes.
const ERASED_TRACES = statement("erasure", "erased-traces");

const ERASED_CALLS = statement("erasure", "erased-calls");

// The prompt's hash goes too: over a short message list it is as good as the text to a guesser.
// The template's hash stays: it is the same for every user of the template.
const ERASED_PROMPTS = statement("erasure", "erased-prompts");

const ERASED_OUTPUTS = statement("erasure", "erased-outputs");

const ERASED_STEPS = statement("erasure", "erased-steps");

const ERASED_TOOL_RUNS = statement("erasure", "erased-tool-runs");

// A tool call the model asked for but that never ran has no PART_OF, only its LLM call's REQUESTED.
const ERASED_TOOL_REQUESTS = statement("erasure", "erased-tool-requests");

// The query is the subject's; the documents are the tenant's corpus, shared by every user who
// retrieved them, and stay.
const ERASED_RETRIEVALS = statement("erasure", "erased-retrievals");

// Erasure: the audited user's id on the accesses to her data goes with her User's (see
// ERASED_USERS, which runs after this and replaces it by the subject ref): found through the
// User while it still holds the id, and given the same ref, so `data-readers` still answers by it.
const ERASED_ACCESSES = statement("erasure", "erased-accesses");

// Last, since the statements above find the subject's nodes through it. The user id is the
// personal datum of the node: the subject ref takes its place (a second erasure of a returning
// user, whose first node already holds the ref, adds the destroyed key's id to stay unique).
const ERASED_USERS = statement("erasure", "erased-users");

const erasures = (b: Batch) =>
  b.all.flatMap((r) =>
    r.event.type === "subject.erased"
      ? [{ tenantId: r.event.tenantId, subject: r.event.subject, keyId: r.event.payload.keyId, erasedAt: r.event.payload.erasedAt }]
      : [],
  );

const erasing = (cypher: string): Step => ({ cypher, rows: (b) => b.derive(erasures) });

export const erasureSteps = {
  erasedTraces: erasing(ERASED_TRACES),
  erasedCalls: erasing(ERASED_CALLS),
  erasedPrompts: erasing(ERASED_PROMPTS),
  erasedOutputs: erasing(ERASED_OUTPUTS),
  erasedSteps: erasing(ERASED_STEPS),
  erasedToolRuns: erasing(ERASED_TOOL_RUNS),
  erasedToolRequests: erasing(ERASED_TOOL_REQUESTS),
  erasedRetrievals: erasing(ERASED_RETRIEVALS),
  erasedAccesses: erasing(ERASED_ACCESSES),
  erasedUsers: erasing(ERASED_USERS),
} satisfies Record<string, Step>;
