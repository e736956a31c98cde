import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import { DEFAULT_ENVIRONMENT, ESCALATION_STATES, SEVERITIES, parseWith } from "@auditgraph/core";
import type { Graph } from "./graph.js";
import { ACCESS_INVESTIGATIONS } from "./access-investigations.js";
import { SEARCH_INVESTIGATIONS, startingAt } from "./search-investigations.js";

// Shipped inside this package (see package.json "files"): dist/ and src/ both sit one level below it.
export const DEFAULT_QUERIES_DIR = fileURLToPath(new URL("../graph-schema/queries/", import.meta.url));

import { count, id, includeReplays, optionalText, scoped, time, window } from "./investigation-fields.js";

const environment = id.default(DEFAULT_ENVIRONMENT);
/** Parsed from the JSON text the projection stores in properties (null stays null: erased, or never set). */
const jsonText = z
  .string()
  .nullable()
  .transform((s) => (s === null ? null : (JSON.parse(s) as unknown)));

/** A deployment that made a version live: what it deployed, how, when, and who said why. */
const LiveVersionSchema = z
  .object({
    id: z.string(),
    version: z.string(),
    action: z.enum(["rollout", "rollback"]),
    at: z.string(),
    environment: z.string(),
    previousVersion: optionalText,
    reason: optionalText,
    by: optionalText,
  })
  .nullable();

const severity = z.enum(SEVERITIES);
const EscalationStateSchema = z.enum(ESCALATION_STATES);

/** A policy flag as the projection stores it (`PolicyFlag`, with its `Policy` version). */
const FlagSchema = z.object({
  id: z.string(),
  severity: severity.nullable(),
  action: optionalText,
  /** flagged, escalated, or an inline rule's blocked / held-* */
  outcome: optionalText,
  decision: optionalText,
  reason: optionalText,
  at: optionalText,
  policySetHash: optionalText,
  policyId: optionalText,
  policyVersion: optionalText,
});

/** One output's lineage, as `trace-output` returns it. */
export const TraceOutputRowSchema = z.object({
  output: z.object({ id: z.string(), text: optionalText, toolCalls: jsonText, recordedAt: z.string(), position: count }),
  llmCall: z.object({
    id: z.string(),
    status: optionalText,
    error: jsonText,
    requestedProvider: optionalText,
    requestedModel: optionalText,
    params: jsonText,
    inputTokens: count.nullable(),
    outputTokens: count.nullable(),
    totalTokens: count.nullable(),
    startedAt: optionalText,
    endedAt: optionalText,
  }),
  prompt: z.object({ id: z.string(), hash: optionalText, templateHash: optionalText, messages: jsonText }).nullable(),
  model: z.object({ provider: z.string(), name: z.string(), version: z.string() }).nullable(),
  /** The trace's reasoning, up to this output, in the order it was produced. */
  reasoningSteps: z.array(z.object({ llmCallId: z.string(), index: count, kind: z.string(), text: optionalText, toolCall: jsonText })),
  /** The trace's tool calls up to this output (those it asked for included), in the order they were made. */
  toolCalls: z.array(
    z.object({
      callId: z.string(),
      name: optionalText,
      requestedArgs: jsonText,
      input: jsonText,
      output: jsonText,
      error: jsonText,
      status: optionalText,
      startedAt: optionalText,
      endedAt: optionalText,
      /** The LLM call that asked for it (null: a tool a chain ran itself). */
      requestedBy: optionalText,
    }),
  ),
  /** The documents this output's model call used (see graph-schema/README.md for the rule), and which retrievals returned them. */
  documents: z.array(
    z.object({
      id: z.string(),
      sourceId: optionalText,
      content: optionalText,
      metadata: jsonText,
      contentHash: optionalText,
      retrievedBy: z.array(
        z.object({
          retrievalId: z.string(),
          retriever: optionalText,
          query: optionalText,
          rank: count.nullable(),
          contentHash: optionalText,
          toolCallId: optionalText,
        }),
      ),
    }),
  ),
  trace: z.object({ id: z.string(), name: optionalText, status: optionalText, startedAt: optionalText, endedAt: optionalText }),
  session: z.object({ id: z.string() }).nullable(),
  user: z.object({ id: z.string(), erased: z.boolean().nullable() }).nullable(),
  agent: z.object({ id: z.string(), name: optionalText, version: z.string() }).nullable(),
  /** The agent version a deployment had made live when the output was recorded (null: no deployment of the agent before it). */
  liveAgentVersion: LiveVersionSchema,
  /** Likewise for the output's model (provider and requested name). */
  liveModelVersion: LiveVersionSchema,
  /** Policy flags on the lineage's nodes, in the order they were recorded. */
  flags: z.array(
    FlagSchema.extend({
      /** The label and id of the node the flag is on (an Output, LLMCall, Prompt, ToolCall, ...). */
      onLabel: z.string(),
      onId: optionalText,
    }),
  ),
  /** The escalations of those flags, their state the fold of their transitions. */
  escalations: z.array(
    z.object({
      id: z.string(),
      state: EscalationStateSchema.nullable(),
      severity: optionalText,
      openedAt: optionalText,
      updatedAt: optionalText,
      lastReviewer: optionalText,
      flagId: z.string(),
    }),
  ),
});
export type TraceOutputRow = z.infer<typeof TraceOutputRowSchema>;

/**
 * The named investigations: each a `.cypher` file in graph-schema/queries, a zod schema for its
 * parameters and one for its rows. They run in read transactions only. Parameters are strict: a
 * misspelt one is refused by name rather than silently ignored.
 */
export const INVESTIGATIONS = {
  "on-behalf-of": {
    description: "which users an agent (version) acted for, how often, first and last time",
    params: z.strictObject({ ...scoped, ...window, agentId: id, agentVersion: id.nullable().default(null) }),
    row: z.object({ userId: z.string(), agentVersion: z.string(), traces: count, firstAt: optionalText, lastAt: optionalText }),
  },
  "blast-radius": {
    description: "everything a served model version or an agent version produced in a window, per user, with the flags raised",
    params: z
      .strictObject({
        ...scoped,
        ...window,
        modelVersion: id.nullable().default(null),
        agentId: id.nullable().default(null),
        agentVersion: id.nullable().default(null),
      })
      .refine((p) => (p.modelVersion === null) !== (p.agentVersion === null), {
        path: ["modelVersion"],
        message: "give either modelVersion, or agentId and agentVersion",
      })
      .refine((p) => (p.agentVersion === null) === (p.agentId === null), { path: ["agentId"], message: "agentId and agentVersion go together" }),
    row: z.object({
      userId: z.string(),
      agentId: z.string(),
      agentVersion: z.string(),
      modelVersion: z.string(),
      outputs: count,
      traces: count,
      flags: count,
      firstAt: optionalText,
      lastAt: optionalText,
    }),
  },
  "user-activity": {
    description: "one user's traces and their final outputs, newest first (a subject access request)",
    params: z.strictObject({ ...scoped, userId: id }),
    row: z.object({
      traceId: z.string(),
      sessionId: optionalText,
      agentId: optionalText,
      agentVersion: optionalText,
      startedAt: optionalText,
      status: optionalText,
      outputId: optionalText,
      output: optionalText,
    }),
  },
  "trace-output": {
    description:
      "one output back to its prompt, model version, reasoning steps, tool calls, documents, trace, session, user, agent, the versions live when it was produced, flags and escalations",
    params: z.strictObject({ tenantId: id, outputId: id, environment, includeReplays }),
    row: TraceOutputRowSchema,
  },
  "live-versions": {
    description: "which agent and model versions deployments had made live in an environment at a time (default: now)",
    params: z.strictObject({
      ...scoped,
      environment,
      at: time.default(() => new Date().toISOString()),
      agentId: id.nullable().default(null),
      provider: id.nullable().default(null),
      model: id.nullable().default(null),
    }),
    row: z.object({
      target: z.enum(["agent", "model"]),
      agentId: optionalText,
      provider: optionalText,
      model: optionalText,
      version: z.string(),
      action: z.enum(["rollout", "rollback"]),
      deployedAt: z.string(),
      deploymentId: z.string(),
      previousVersion: optionalText,
    }),
  },
  "flag-rate": {
    description: "policy flags per 1,000 outputs, per day, by model version or by agent version",
    params: z.strictObject({ ...scoped, ...window, by: z.enum(["model", "agent"]) }),
    row: z.object({
      day: z.string(),
      /** provider/name of the model, or the agent id. */
      subject: z.string(),
      version: z.string(),
      outputs: count,
      flags: count,
      /** null: flags on a day without outputs of that version. */
      flagsPer1000: z.number().nullable(),
    }),
  },
  "compare-agent-versions": {
    description: "past replay reviews of an agent's versions, newest first: candidate and baseline versions, snapshot, match rates, divergences, gate",
    params: z.strictObject({ ...scoped, agentId: id.nullable().default(null), version: id.nullable().default(null) }),
    row: z.object({
      reviewId: z.string(),
      at: z.string(),
      agentId: z.string(),
      candidateVersion: z.string(),
      baselineVersions: z.array(z.string()),
      snapshotId: optionalText,
      traces: z.number(),
      outputMatchRate: z.number(),
      trajectoryMatchRate: z.number(),
      divergences: z.number(),
      errors: z.number(),
      gatePassed: z.boolean(),
    }),
  },
  "escalation-queue": {
    description:
      "escalations waiting for a reviewer, most severe and oldest first, with their lineage (output or tool call, model call, prompt, model version, user, agent version)",
    params: z.strictObject({
      ...scoped,
      // A list, or comma-separated text as the CLI's --param gives it.
      states: z
        .preprocess((v) => (typeof v === "string" ? v.split(",").map((x) => x.trim()) : v), z.array(EscalationStateSchema).min(1))
        .default(["open", "acknowledged"]),
      severity: severity.nullable().default(null),
      at: time.default(() => new Date().toISOString()),
    }),
    row: z.object({
      escalationId: z.string(),
      state: EscalationStateSchema,
      severity,
      policyId: optionalText,
      policyVersion: optionalText,
      reason: optionalText,
      openedAt: z.string(),
      updatedAt: optionalText,
      lastReviewer: optionalText,
      ageSeconds: z.number(),
      flagId: optionalText,
      /** The flagged node. */
      concerns: z.object({ label: z.string(), id: optionalText }).nullable(),
      toolCallId: optionalText,
      outputId: optionalText,
      llmCallId: optionalText,
      promptId: optionalText,
      model: z.object({ provider: z.string(), name: z.string(), version: z.string() }).nullable(),
      traceId: optionalText,
      userId: optionalText,
      agent: z.object({ id: z.string(), version: z.string() }).nullable(),
    }),
  },
  "approval-integrity": {
    description:
      "tool runs that executed while a hold applied without an allow decision, after a deny or after the hold's deadline, and runs of high-impact tools with no start event (a correct system: none)",
    params: z.strictObject({
      ...scoped,
      ...window,
      // A list, or comma-separated text as the CLI's --param gives it: the handlers' highImpactTools.
      highImpactTools: z
        .preprocess(
          (v) =>
            typeof v === "string"
              ? v
                  .split(",")
                  .map((x) => x.trim())
                  .filter(Boolean)
              : v,
          z.array(id),
        )
        .default([]),
    }),
    row: z.object({
      runId: z.string(),
      traceId: z.string(),
      callId: optionalText,
      tool: optionalText,
      status: optionalText,
      startedAt: optionalText,
      endedAt: z.string(),
      violation: z.enum(["no-decision", "after-deny", "after-deadline", "no-start"]),
      holdId: optionalText,
      escalationId: optionalText,
      deadline: optionalText,
      defaultDecision: z.enum(["allow", "deny"]).nullable(),
      decision: z.enum(["allow", "deny"]).nullable(),
      decidedAt: optionalText,
      decidedBy: optionalText,
      userId: optionalText,
      agent: z.object({ id: z.string(), version: z.string() }).nullable(),
    }),
  },
  ...SEARCH_INVESTIGATIONS,
  ...ACCESS_INVESTIGATIONS,
} as const;

export type InvestigationName = keyof typeof INVESTIGATIONS;
export type InvestigationParams<N extends InvestigationName> = z.input<(typeof INVESTIGATIONS)[N]["params"]>;
export type InvestigationRow<N extends InvestigationName> = z.output<(typeof INVESTIGATIONS)[N]["row"]>;

export const isInvestigation = (name: string): name is InvestigationName => Object.hasOwn(INVESTIGATIONS, name);

/** Runs a named investigation: parameters checked (the bad field named), read transaction, rows checked. */
export async function investigate<N extends InvestigationName>(
  graph: Graph,
  name: N,
  params: InvestigationParams<N>,
  dir = DEFAULT_QUERIES_DIR,
): Promise<InvestigationRow<N>[]> {
  const spec = INVESTIGATIONS[name];
  const parsed = parseWith(spec.params, params, `parameters of ${name}`) as Record<string, unknown>;
  const start = "start" in spec ? spec.start(parsed as never) : undefined;
  const text = await readFile(`${dir}${name}.cypher`, "utf8");
  const cypher = start ? startingAt(text, await readFile(`${dir}${start}.cypher`, "utf8"), start) : text;
  // LIMIT takes an INTEGER; a JS number would be sent as a FLOAT.
  const bound = typeof parsed.limit === "number" ? { ...parsed, limit: graph.int(parsed.limit) } : parsed;
  const rows = await graph.read(cypher, bound);
  return rows.map((row, i) => parseWith(spec.row, row, `row ${i} of ${name}`) as InvestigationRow<N>);
}
