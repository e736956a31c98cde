import type { EventType } from "@auditgraph/core";
import type { Step } from "./common.js";
import { accessSteps } from "./access.js";
import { deploymentSteps } from "./deployments.js";
import { erasureSteps } from "./erasure.js";
import { policySteps } from "./policy.js";
import { retrievalSteps } from "./retrievals.js";
import { runSteps } from "./runs.js";
import { toolSteps } from "./tools.js";
import { traceSteps } from "./traces.js";

const FAMILIES = { ...traceSteps, ...runSteps, ...toolSteps, ...retrievalSteps, ...deploymentSteps, ...policySteps, ...accessSteps, ...erasureSteps };
export type StepName = keyof typeof FAMILIES;
/** Every projection step, by name: each family module holds its row builders and names its statements (graph-schema/projection/<family>/). */
export const STEPS: Readonly<Record<StepName, Step>> = FAMILIES;

/**
 * The order the steps of one batch run in, in one transaction, each seeing the writes of those
 * before it. Steps a batch has no rows for are skipped. Projecting is idempotent and batches
 * arrive in any order, so each cross-event link is written from whichever side comes second;
 * the order below is what a batch needs within itself.
 */
/**
 * Erasure's steps, last in ORDER (after this batch's own events, so that what a batch projects
 * before its erasure is erased too). Each statement finds the subject's nodes through the User:
 * `erasedUsers`, which replaces the user's id, comes last, and `erasedAccesses` (found by that id)
 * just before it.
 */
const ERASURE = [
  "erasedTraces",
  "erasedCalls",
  "erasedPrompts",
  "erasedOutputs",
  "erasedSteps",
  "erasedToolRuns",
  "erasedToolRequests",
  "erasedRetrievals",
  "erasedAccesses",
  "erasedUsers",
] as const satisfies readonly StepName[];

export const ORDER = [
  // A trace (and its tenant, user, agent version, session) first: every run statement MATCHes it.
  "traces",
  "replayOf",
  "reviews",
  // Sessions after their traces, whose kind (set by `traces`) keeps replays out of the order.
  "sessions",
  // Runs (a trace's root run is in its `traces` row). An llm.end's reasoning steps are in its own statement.
  "llmStart",
  "llmEnd",
  "llmError",
  // Tool runs, then their links to the LLM call that asked (its Output and reasoning steps are
  // in by now) and the requests no run answers (after the links, in the same statement).
  "toolStart",
  "toolEnd",
  "toolGroups",
  // Retrievals after tool runs (a retriever inside a tool run links to its ToolCall); USED_BY
  // after the retrieval's documents and this batch's prompts.
  "retrieverStart",
  "retrieverEnd",
  "retrieverError",
  // Deployments, then the PREVIOUS chain of each target they touch.
  "deployments",
  "agentDeploymentChain",
  "modelDeploymentChain",
  // Flags after every node a flag can be about (outputs, prompts, tool calls, documents).
  "flags",
  "flagTargets",
  // An escalation before its transitions: it must be created open (ON CREATE) before they MERGE
  // it; the fold after the transitions' nodes, which it marks applied; one statement per transition.
  "escalations",
  "escalationTransitions",
  "escalationState",
  "escalationNotifications",
  // Accesses after escalations, which they MATCH (an access never creates one).
  "accesses",
  // Erasure last (see ERASURE).
  ...ERASURE,
] as const satisfies readonly StepName[];

// A step left out of ORDER would never run: this line does not compile until each one is in it.
const everyStepOrdered: Exclude<StepName, (typeof ORDER)[number]> extends never ? true : never = true;
void everyStepOrdered;

/**
 * What the projection does with each event type: the steps that read its records. A new event
 * type does not compile until it is given an entry here (empty when it has nothing to project).
 * Besides these, every user event (every type but the system events) is an event of its trace:
 * `traces`, `replayOf` (its replay tag) and the session steps read all of them.
 */
export const PROJECTED_BY = {
  // A root run's start and end are its trace's (in the trace's row of `traces`).
  "chain.start": ["traces"],
  "chain.end": ["traces"],
  "chain.error": ["traces"],
  "llm.start": ["llmStart"],
  "llm.token": [],
  "llm.end": ["llmEnd", "toolGroups"],
  "llm.error": ["llmError"],
  "tool.start": ["toolStart", "toolGroups"],
  "tool.end": ["toolEnd", "toolGroups"],
  "tool.error": ["toolEnd", "toolGroups"],
  "retriever.start": ["retrieverStart"],
  "retriever.end": ["retrieverEnd"],
  "retriever.error": ["retrieverError"],
  "agent.action": [],
  "agent.finish": [],
  text: [],
  // A replay review's record only (see traces.ts); any other custom event is an event of its trace.
  custom: ["reviews"],
  correction: [],
  "subject.erased": ERASURE,
  deployment: ["deployments", "agentDeploymentChain", "modelDeploymentChain"],
  "policy.flag": ["flags", "flagTargets"],
  "escalation.opened": ["escalations"],
  "escalation.transition": ["escalationTransitions", "escalationState"],
  "escalation.notification": ["escalationNotifications"],
  access: ["accesses"],
  // Where a tenant's records are, not what anyone did: the ledger holds it, the graph has no use for it.
  "shards.changed": [],
} as const satisfies Record<EventType, readonly StepName[]>;
