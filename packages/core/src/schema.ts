import { z } from "zod";
import { v7 as uuidv7 } from "uuid";
import { SubjectRefSchema } from "./subjects/ref.js";

/**
 * The version producers write and this schema validates. Older events (a rolled-back agent's,
 * or the ledger's) are brought up to it by the upcasters in `upcast.ts`, never rejected for
 * their age. 2: `llm.end`'s cost moved from `payload.cost` to the envelope, beside `usage`.
 */
export const SCHEMA_VERSION = 2;

const nonEmpty = z.string().min(1);

/**
 * The longest id and the longest name an event may carry where the graph keys or indexes it
 * (tenant, user, agent, trace, run, session, tool call, model, tool, policy, document, ...).
 * Neo4j refuses an index key over about 8 KB ("Property value is too large to index"), and a
 * projection that fails on one event would retry it forever and hold its whole stream: such an
 * event is refused here, naming the field, and dead-lettered instead of reaching the ledger.
 * 256 characters (up to 1 KB in UTF-8) keeps a composite key of four of them under the limit.
 */
export const MAX_ID_LENGTH = 256;
export const MAX_NAME_LENGTH = 256;
/** Redaction digests an event keeps per detector kind: past it values are still redacted and counted, not told apart. */
export const MAX_DIGESTS_PER_KIND = 256;
const id = nonEmpty.max(MAX_ID_LENGTH);
const name = nonEmpty.max(MAX_NAME_LENGTH);

export const UserIdentitySchema = z.object({
  id,
  tenantId: id,
  roles: z.array(nonEmpty).optional(),
});

export const AgentIdentitySchema = z.object({
  id,
  name,
  version: name,
});

/** Who asked (the user) and who acted on their behalf (the agent): on every event. */
export const IdentitySchema = z.object({
  user: UserIdentitySchema,
  agent: AgentIdentitySchema,
});

/** The requested model on `llm.start`; the served model (with its version) on `llm.end`. */
export const ModelSchema = z.object({
  provider: name,
  name,
  version: name.optional(),
  /** The provider's build of the served model (OpenAI's `system_fingerprint` and the like). */
  fingerprint: name.optional(),
  /** Invocation parameters: sampling (temperature, top_p, max tokens, seed, stop) and the rest. */
  params: z.record(z.string(), z.json()).default({}),
});

const tokens = z.number().int().nonnegative();

export const UsageSchema = z.object({
  inputTokens: tokens,
  outputTokens: tokens,
  totalTokens: tokens,
  cacheReadTokens: tokens.optional(),
  cacheCreationTokens: tokens.optional(),
  reasoningTokens: tokens.optional(),
});

export const CostSchema = z.object({
  currency: z.string().length(3),
  input: z.number().nonnegative(),
  output: z.number().nonnegative(),
  total: z.number().nonnegative(),
});

/** A tool as the model was offered it. */
export const ToolDefinitionSchema = z.object({
  name,
  description: z.string().optional(),
  parameters: z.json().optional(),
});

/**
 * One step of the model's reasoning, in the order it produced them: thinking/reasoning
 * content, an agent's action log, a tool call it asked for.
 */
export const ReasoningStepSchema = z.object({
  index: z.number().int().nonnegative(),
  kind: z.enum(["reasoning", "action_log", "tool_call"]),
  text: z.string().optional(),
  toolCall: z.lazy(() => ToolCallRequestSchema).optional(),
});

export const DocumentSchema = z.object({
  id: z.string().max(MAX_ID_LENGTH).optional(),
  pageContent: z.string(),
  metadata: z.record(z.string(), z.json()),
});

export const ToolCallRequestSchema = z.object({
  id: z.string().max(MAX_ID_LENGTH).optional(),
  name,
  args: z.json(),
});

export const MessageSchema = z.object({
  role: nonEmpty,
  content: z.json(),
  name: z.string().optional(),
  toolCallId: z.string().max(MAX_ID_LENGTH).optional(),
  toolCalls: z.array(ToolCallRequestSchema).optional(),
});

export const ErrorInfoSchema = z.object({
  name: z.string(),
  message: z.string(),
});

const envelope = {
  eventId: z.uuidv7(),
  schemaVersion: z.literal(SCHEMA_VERSION),
  /** Client clock; the worker's `recordedAt` is the timestamp that counts. */
  occurredAt: z.iso.datetime({ offset: true }),
  traceId: id,
  runId: id,
  parentRunId: id.nullable(),
  sessionId: id.nullable(),
  identity: IdentitySchema,
  /** The run's name: a tool's is the Tool node's key. */
  name: z.string().max(MAX_NAME_LENGTH).optional(),
  tags: z.array(z.string()).optional(),
  /** What redaction replaced in this event, by detector kind (counts only, never values). */
  redactions: z.record(z.string(), z.number().int().positive()).optional(),
  /**
   * Keyed digests (HMAC-SHA-256, 16 hex) of the distinct values redaction replaced, by detector
   * kind: they tell repeated values apart (a value is flagged once per trace), never what they were.
   */
  redactionDigests: z.record(z.string(), z.array(z.string().regex(/^[0-9a-f]{16}$/, "must be 16 hex digits")).max(MAX_DIGESTS_PER_KIND)).optional(),
};

const errorPayload = z.object({ error: ErrorInfoSchema });

/** Client-side timing of a run, from its start callback to its end callback. */
const TimingSchema = z.object({
  latencyMs: z.number().nonnegative(),
  timeToFirstTokenMs: z.number().nonnegative().optional(),
});

/** What every deployment says besides its target. */
const deploymentFields = {
  action: z.enum(["rollout", "rollback"]),
  /** Absent: `DEFAULT_ENVIRONMENT`. */
  environment: name.optional(),
  /** The version live before this one, when the caller knows it (the graph links the previous deployment anyway). */
  previousVersion: name.optional(),
  reason: z.string().min(1).optional(),
  /** The operator or pipeline that deployed (an operator id, not a user's). */
  by: nonEmpty.optional(),
};

/** The environment a deployment without one is in. */
export const DEFAULT_ENVIRONMENT = "production";

/** An escalation's lifecycle: open -> acknowledged -> resolved | dismissed, and back to open (reopened). */
export const ESCALATION_STATES = ["open", "acknowledged", "resolved", "dismissed"] as const;
export type EscalationState = (typeof ESCALATION_STATES)[number];

/** Lowest first: escalation thresholds compare severities by their place in this list. */
export const SEVERITIES = ["info", "low", "medium", "high", "critical"] as const;
export const SeveritySchema = z.enum(SEVERITIES);
/** `block` and `hold` act in the agent process, before the call runs; `flag` and `escalate` after the fact. */
export const PolicyActionSchema = z.enum(["flag", "escalate", "block", "hold"]);
/** What part of the agent's work a finding is about: the graph links the flag to that node. */
export const ConcernKindSchema = z.enum(["output", "tool_call", "prompt", "document"]);

/** One policy's finding on one event, as recorded with its flag. */
export const PolicyFindingSchema = z.object({
  policyId: id,
  policyVersion: name,
  /** The loaded policy set's hash: which rules, in which versions, produced the finding. */
  policySetHash: z.string().regex(/^[0-9a-f]{64}$/, "must be a SHA-256 hex digest"),
  severity: SeveritySchema,
  action: PolicyActionSchema,
  /** The event (absent: the run as a whole) the finding is about. */
  concerns: z.object({ eventId: z.uuidv7().optional(), runId: id, kind: ConcernKindSchema }),
  /** Built by the policy from its own settings and counts: never a value taken from the event. */
  reason: z.string().min(1),
  /** Pointers, never values: the event's field paths, and numbers (counts by category, totals, limits). */
  evidence: z.object({ fields: z.array(z.string()), measures: z.record(z.string(), z.number()) }),
});

/** A held call's hold, as its agent recorded it when the hold started: ids, a time and an enum only. */
export const HeldCallSchema = z.strictObject({
  holdId: nonEmpty.max(512),
  /** The moment the hold stops waiting: its rule's timeout after the hold started. */
  deadline: z.iso.datetime({ offset: true }),
  /** What happens at the deadline when no one decided (the rule's `defaultOutcome`). */
  defaultDecision: z.enum(["allow", "deny"]),
});
export type HeldCall = z.output<typeof HeldCallSchema>;

/**
 * The envelope of a system event (an erasure, a deployment, ...): no user asked for it, so no
 * identity; `tenantId` picks the ledger stream, as `identity.user.tenantId` does for the others.
 */
const systemEnvelope = {
  eventId: envelope.eventId,
  schemaVersion: envelope.schemaVersion,
  occurredAt: envelope.occurredAt,
  traceId: envelope.traceId,
  runId: envelope.runId,
  parentRunId: envelope.parentRunId,
  sessionId: envelope.sessionId,
  name: envelope.name,
  tags: envelope.tags,
  redactions: envelope.redactions,
  redactionDigests: envelope.redactionDigests,
  tenantId: id,
};

/** What a reader of the audit trail did (see the `access` event): views of content, downloads, decisions. */
export const ACCESS_ACTIONS = ["trace.view", "escalation.view", "escalation.decide", "proof.download", "review.view"] as const;
export const AccessActionSchema = z.enum(ACCESS_ACTIONS);
/** What was read: ids only, never the content itself. `userId` is the audited user whose data it was. */
export const AccessSubjectSchema = z.strictObject({
  traceId: id.optional(),
  eventId: z.uuidv7().optional(),
  escalationId: z.uuidv7().optional(),
  userId: id.optional(),
  reviewId: id.optional(),
});
export type AccessAction = z.infer<typeof AccessActionSchema>;
export type AccessSubject = z.infer<typeof AccessSubjectSchema>;

export const EventSchema = z.discriminatedUnion("type", [
  z.object({
    ...envelope,
    type: z.literal("chain.start"),
    payload: z.object({
      inputs: z.json(),
      /** LangGraph's node and step, when the chain is a graph node's run. */
      graph: z.object({ node: z.string(), step: z.number().int().optional() }).optional(),
    }),
  }),
  z.object({
    ...envelope,
    type: z.literal("chain.end"),
    payload: z.object({ outputs: z.json() }),
  }),
  z.object({ ...envelope, type: z.literal("chain.error"), payload: errorPayload }),
  z.object({
    ...envelope,
    type: z.literal("llm.start"),
    model: ModelSchema,
    payload: z.object({
      messages: z.array(MessageSchema),
      tools: z.array(ToolDefinitionSchema).optional(),
      toolChoice: z.json().optional(),
      /**
       * The prompt template's hash (or version id), when the producer knows it: prompts of one
       * template share it whatever their variables, which the messages' own hash cannot show.
       */
      templateHash: id.optional(),
    }),
  }),
  z.object({
    ...envelope,
    type: z.literal("llm.token"),
    payload: z.object({ index: z.number().int().nonnegative(), token: z.string() }),
  }),
  z.object({
    ...envelope,
    type: z.literal("llm.end"),
    model: ModelSchema,
    usage: UsageSchema.optional(),
    /** Beside `usage`: both are billing facts about the call, and read together. */
    cost: CostSchema.optional(),
    payload: z.object({
      output: z.object({
        text: z.string(),
        toolCalls: z.array(ToolCallRequestSchema),
        finishReason: z.string().optional(),
      }),
      reasoning: z.array(ReasoningStepSchema).optional(),
      timing: TimingSchema.optional(),
      streamed: z.object({ tokens: z.number().int().nonnegative() }).optional(),
    }),
  }),
  z.object({ ...envelope, type: z.literal("llm.error"), payload: errorPayload }),
  z.object({
    ...envelope,
    type: z.literal("tool.start"),
    payload: z.object({ toolCallId: z.string().max(MAX_ID_LENGTH).optional(), input: z.json() }),
  }),
  z.object({
    ...envelope,
    type: z.literal("tool.end"),
    payload: z.object({ toolCallId: z.string().max(MAX_ID_LENGTH).optional(), output: z.json(), timing: TimingSchema.optional() }),
  }),
  z.object({
    ...envelope,
    type: z.literal("tool.error"),
    payload: errorPayload.extend({ toolCallId: z.string().max(MAX_ID_LENGTH).optional() }),
  }),
  z.object({ ...envelope, type: z.literal("retriever.start"), payload: z.object({ query: z.string() }) }),
  z.object({
    ...envelope,
    type: z.literal("retriever.end"),
    payload: z.object({ documents: z.array(DocumentSchema), timing: TimingSchema.optional() }),
  }),
  z.object({ ...envelope, type: z.literal("retriever.error"), payload: errorPayload }),
  z.object({
    ...envelope,
    type: z.literal("agent.action"),
    payload: z.object({
      tool: z.string().max(MAX_NAME_LENGTH),
      toolInput: z.json(),
      /** The action's log: the reasoning the agent wrote before acting. */
      log: z.string(),
      /** The LLM call whose output the action was parsed from (the trace's last one before it). */
      llmRunId: z.string().max(MAX_ID_LENGTH).optional(),
    }),
  }),
  z.object({
    ...envelope,
    type: z.literal("agent.finish"),
    payload: z.object({ returnValues: z.json(), log: z.string() }),
  }),
  z.object({ ...envelope, type: z.literal("text"), payload: z.object({ text: z.string() }) }),
  z.object({
    ...envelope,
    type: z.literal("custom"),
    payload: z.object({ name: z.string(), data: z.json() }),
  }),
  z.object({
    ...envelope,
    type: z.literal("correction"),
    /** Nothing in the ledger is edited: a correction is a new event pointing at the one it corrects. */
    payload: z.object({
      correctsEventId: z.uuidv7(),
      reason: z.string().min(1),
      /** The corrected values (a partial payload, or whatever the correction needs to say). */
      correction: z.json(),
    }),
  }),
  /**
   * A data subject's key was destroyed: their sealed payloads are unreadable from here on. It
   * names the subject by pseudonym only, and has no identity. Strict, unlike the others: events
   * are stored as received, and this one must not carry personal data in a field nobody checks.
   */
  z.strictObject({
    ...systemEnvelope,
    type: z.literal("subject.erased"),
    subject: SubjectRefSchema,
    payload: z.strictObject({
      /** The destroyed data key. */
      keyId: id,
      erasedAt: z.iso.datetime({ offset: true }),
      reason: z.string().min(1).optional(),
      /** The operator who asked for the erasure (an operator id, not the subject's). */
      requestedBy: nonEmpty.optional(),
    }),
  }),
  /**
   * An agent version or a model version rolled out (or rolled back to) in an environment, by an
   * operator or a pipeline: no user asked for it, so no identity. `version` is the version live
   * after the event, a rollback's included, so "which version was live at T" is the latest
   * deployment before T. Events are appended, never edited: a rollback is a new deployment.
   */
  z.object({
    ...systemEnvelope,
    type: z.literal("deployment"),
    payload: z.discriminatedUnion("target", [
      z.object({ target: z.literal("agent"), agentId: id, agentName: name.optional(), version: name, ...deploymentFields }),
      z.object({
        target: z.literal("model"),
        /** As the model's events name it: `ModelVersion` (provider, name), with the served `version`. */
        provider: name,
        name,
        version: name,
        ...deploymentFields,
      }),
    ]),
  }),
  /**
   * A policy's finding on an event of the same run, and what came of it. Inline rules (block,
   * hold) record it from the agent process with the call's outcome; the others are `flagged`.
   */
  z.object({
    ...envelope,
    type: z.literal("policy.flag"),
    payload: PolicyFindingSchema.extend({
      /**
       * `escalated`: the worker raised it and opened an escalation for it (`escalation.opened` names it).
       * `held`: the agent's call waits for a reviewer (recorded when the hold starts, so the worker can
       * open its escalation while the agent waits; a `held-*` flag of the same run gives the outcome).
       */
      outcome: z.enum(["flagged", "blocked", "held", "held-allowed", "held-denied", "held-timeout", "escalated"]),
      /** Whether the call went ahead; a timed-out hold took its rule's default, which only this says. */
      decision: z.enum(["allow", "deny"]).optional(),
      /** On a hold's flags: the hold (`holdIdOf`), when the agent stops waiting, and what it then does. */
      hold: HeldCallSchema.optional(),
    }),
  }),
  /**
   * A flag (or several) that needs a human: raised by the worker after the ledger append. A system
   * event (no user asked for it): it names its tenant, and its `traceId` is the concerned trace's,
   * so the ledger's trace read finds the escalation beside the events it is about. Its `eventId`
   * is the escalation's id (`payload.escalationId`).
   */
  z.object({
    ...systemEnvelope,
    type: z.literal("escalation.opened"),
    payload: z.object({
      escalationId: z.uuidv7(),
      severity: SeveritySchema,
      policyId: id,
      policyVersion: name,
      policySetHash: PolicyFindingSchema.shape.policySetHash,
      flagEventIds: z.array(z.uuidv7()).min(1),
      concerns: PolicyFindingSchema.shape.concerns.extend({ traceId: id }),
      /** The policy's reason: built from its settings and counts, never from the event. */
      reason: z.string().min(1),
      /** For a held call: its hold (`holdIdOf`, `<runId>:<policyId>`), which resolving or dismissing the escalation decides. */
      holdId: nonEmpty.max(2 * MAX_ID_LENGTH + 1).optional(),
      /** For a held call: when the agent stops waiting (from its `held` flag) and takes `defaultDecision`. */
      deadline: HeldCallSchema.shape.deadline.optional(),
      defaultDecision: HeldCallSchema.shape.defaultDecision.optional(),
    }),
  }),
  /**
   * A reviewer moved an escalation along its lifecycle. Nothing is edited: an escalation's state
   * is the fold of its transitions over its opening (see `foldEscalation`).
   */
  z.object({
    ...systemEnvelope,
    type: z.literal("escalation.transition"),
    payload: z.object({
      escalationId: z.uuidv7(),
      from: z.enum(ESCALATION_STATES),
      /** `open` from resolved or dismissed: a reopening. */
      to: z.enum(ESCALATION_STATES),
      /** An operator (reviewer), not the agent's user. */
      reviewer: z.object({ id, name: name.optional() }),
      reason: z.string().min(1),
      /** For a held call the escalation is about: what the reviewer decided (phase 2b releases the hold with it). */
      holdDecision: z.enum(["allow", "deny"]).optional(),
    }),
  }),
  /**
   * Someone read or decided something through the console (or an API token): who, what, when
   * (`occurredAt`, the server's clock) and from where. Appended before the content is sent, so
   * the audit trail audits its readers. Its own trace (`traceId` = `runId` = `eventId`); the
   * trace it is about is `subject.traceId`.
   */
  z.strictObject({
    ...systemEnvelope,
    type: z.literal("access"),
    payload: z.strictObject({
      actor: z.strictObject({ id, name: name.optional(), via: z.enum(["password", "oidc", "token"]) }),
      action: AccessActionSchema,
      subject: AccessSubjectSchema,
      from: z.strictObject({ ip: z.string().min(1).max(64), userAgent: z.string().max(512).optional() }),
    }),
  }),
  /**
   * One attempt to notify someone of an escalation (a webhook request, a callback call), as the
   * worker's notifier reports it: ids, a channel, a status and an error category, never the URL,
   * the secret, a response body or event content. Every attempt is its own event: a receiver that
   * was down shows up as failed attempts before the one that got through.
   */
  z.strictObject({
    ...systemEnvelope,
    type: z.literal("escalation.notification"),
    payload: z.strictObject({
      escalationId: z.uuidv7(),
      /** The same on every retry of one notification on one channel (the receiver deduplicates on it). */
      deliveryId: z.uuid(),
      channel: z.enum(["webhook", "callback"]),
      attempt: z.number().int().positive(),
      status: z.enum(["ok", "failed"]),
      httpStatus: z.number().int().optional(),
      error: z.string().max(300).optional(),
      at: z.iso.datetime({ offset: true }),
      /** Absent on the last attempt (delivered, or given up). */
      nextRetryAt: z.iso.datetime({ offset: true }).optional(),
    }),
  }),
]);

export type AuditEvent = z.infer<typeof EventSchema>;
export type EventType = AuditEvent["type"];
export type EventOf<T extends EventType> = Extract<AuditEvent, { type: T }>;
export type Identity = z.infer<typeof IdentitySchema>;
export type Model = z.infer<typeof ModelSchema>;
export type Usage = z.infer<typeof UsageSchema>;
export type Message = z.infer<typeof MessageSchema>;
export type ToolCallRequest = z.infer<typeof ToolCallRequestSchema>;
export type ErrorInfo = z.infer<typeof ErrorInfoSchema>;
export type ReasoningStep = z.infer<typeof ReasoningStepSchema>;
export type ToolDefinition = z.infer<typeof ToolDefinitionSchema>;
export type Cost = z.infer<typeof CostSchema>;
export type Document = z.infer<typeof DocumentSchema>;
export type Severity = z.infer<typeof SeveritySchema>;
export type PolicyAction = z.infer<typeof PolicyActionSchema>;
export type ConcernKind = z.infer<typeof ConcernKindSchema>;
export type PolicyFinding = z.infer<typeof PolicyFindingSchema>;

/** UUIDv7: time-ordered, and monotonic within this process, so ids sort in capture order. */
export const newEventId = (): string => uuidv7();
