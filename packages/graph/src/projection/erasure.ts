import type { Batch, Step } from "./common.js";
import { ERASED_ACCESSES } from "./access.js";

// Corrections and erasure. A `correction` event (a new event pointing at the one it corrects) has
// nothing of its own to project: it is an event of its trace (the trace steps), no more.
// A `subject.erased` event takes the subject's payload text out of the graph.

// Erasure: the payload text of every trace the subject requested goes, the structure stays (nodes,
// relationships, ids, times, token counts), so lineage and counts still answer. Each statement
// reaches its nodes from the subject's User, along the relationships the projection writes.
const ERASED_TRACES = `
UNWIND $rows AS r
MATCH (:User {tenantId: r.tenantId, subject: r.subject})<-[:REQUESTED_BY]-(t:Trace)
SET t.input = null, t.output = null, t.error = null, t.erased = true`;

const ERASED_CALLS = `
UNWIND $rows AS r
MATCH (:User {tenantId: r.tenantId, subject: r.subject})<-[:REQUESTED_BY]-(:Trace)<-[:PART_OF]-(c:LLMCall)
SET c.error = null, c.erased = true`;

// The prompt's hash goes too: over a short message list it is as good as the text to a guesser.
// The template's hash stays: it is the same for every user of the template.
const ERASED_PROMPTS = `
UNWIND $rows AS r
MATCH (:User {tenantId: r.tenantId, subject: r.subject})<-[:REQUESTED_BY]-(:Trace)<-[:PART_OF]-(:LLMCall)<-[:INPUT_TO]-(p:Prompt)
SET p.messages = null, p.hash = null, p.erased = true`;

const ERASED_OUTPUTS = `
UNWIND $rows AS r
MATCH (:User {tenantId: r.tenantId, subject: r.subject})<-[:REQUESTED_BY]-(:Trace)<-[:PART_OF]-(:LLMCall)-[:GENERATED]->(o:Output)
SET o.text = null, o.toolCalls = null, o.toolCallArgs = null, o.erased = true`;

const ERASED_STEPS = `
UNWIND $rows AS r
MATCH (:User {tenantId: r.tenantId, subject: r.subject})<-[:REQUESTED_BY]-(:Trace)<-[:PART_OF]-(:LLMCall)<-[:STEP_OF]-(s:ReasoningStep)
SET s.text = null, s.toolCall = null, s.erased = true`;

const ERASED_TOOL_RUNS = `
UNWIND $rows AS r
MATCH (:User {tenantId: r.tenantId, subject: r.subject})<-[:REQUESTED_BY]-(:Trace)<-[:PART_OF]-(x:ToolCall)
SET x.requestedArgs = null, x.input = null, x.output = null, x.error = null, x.erased = true`;

// A tool call the model asked for but that never ran has no PART_OF, only its LLM call's REQUESTED.
const ERASED_TOOL_REQUESTS = `
UNWIND $rows AS r
MATCH (:User {tenantId: r.tenantId, subject: r.subject})<-[:REQUESTED_BY]-(:Trace)<-[:PART_OF]-(:LLMCall)-[:REQUESTED]->(x:ToolCall)
SET x.requestedArgs = null, x.input = null, x.output = null, x.error = null, x.erased = true`;

// The query is the subject's; the documents are the tenant's corpus, shared by every user who
// retrieved them, and stay.
const ERASED_RETRIEVALS = `
UNWIND $rows AS r
MATCH (:User {tenantId: r.tenantId, subject: r.subject})<-[:REQUESTED_BY]-(:Trace)<-[:PART_OF]-(x:Retrieval)
SET x.query = null, x.error = null, x.erased = true`;

// Last, since the statements above find the subject's nodes through it. The user id is the
// personal datum of the node: the subject ref takes its place (a second erasure of a returning
// user, whose first node already holds the ref, adds the destroyed key's id to stay unique).
const ERASED_USERS = `
UNWIND $rows AS r
MATCH (u:User {tenantId: r.tenantId, subject: r.subject})
OPTIONAL MATCH (taken:User {tenantId: r.tenantId, id: r.subject})
SET u.id = CASE WHEN taken IS NULL OR taken = u THEN r.subject ELSE r.subject + '/' + r.keyId END,
    u.erased = true, u.erasedAt = coalesce(u.erasedAt, r.erasedAt), u.erasedKeyId = coalesce(u.erasedKeyId, r.keyId)`;

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
