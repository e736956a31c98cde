import { z } from "zod";
import { FIXED, KEEP, PLACEHOLDER, STRING, array, object, optional, required } from "./hints.js";
import { MAX_ID_LENGTH, id, name, nonEmpty, systemEnvelope, envelope, type EventTypeIn, type PayloadRedaction } from "./common.js";

// Policy: flags, the escalations they open, their lifecycle and notifications (the graph's `policy` projection).

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
 * A policy's finding on an event of the same run, and what came of it. Inline rules (block,
 * hold) record it from the agent process with the call's outcome; the others are `flagged`.
 */
export const PolicyFlagEventSchema = z.object({
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
});

/**
 * A flag (or several) that needs a human: raised by the worker after the ledger append. A system
 * event (no user asked for it): it names its tenant, and its `traceId` is the concerned trace's,
 * so the ledger's trace read finds the escalation beside the events it is about. Its `eventId`
 * is the escalation's id (`payload.escalationId`).
 */
export const EscalationOpenedEventSchema = z.object({
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
});

/**
 * A reviewer moved an escalation along its lifecycle. Nothing is edited: an escalation's state
 * is the fold of its transitions over its opening (see `foldEscalation`).
 */
export const EscalationTransitionEventSchema = z.object({
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
});

/**
 * One attempt to notify someone of an escalation (a webhook request, a callback call), as the
 * worker's notifier reports it: ids, a channel, a status and an error category, never the URL,
 * the secret, a response body or event content. Every attempt is its own event: a receiver that
 * was down shows up as failed attempts before the one that got through.
 */
export const EscalationNotificationEventSchema = z.strictObject({
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
});

export const POLICY_EVENTS = [PolicyFlagEventSchema, EscalationOpenedEventSchema, EscalationTransitionEventSchema, EscalationNotificationEventSchema] as const;
export type PolicyEventType = EventTypeIn<typeof POLICY_EVENTS>;

export const POLICY_REDACTION = {
  // Ids, hashes and enums stay (a detector must not take the set hash for a secret). The reason
  // and field paths are scanned all the same: a custom policy could word them carelessly, and a
  // path holds the event's object keys, which redaction never rewrites where they stand.
  "policy.flag": object({
    policyId: FIXED,
    policyVersion: FIXED,
    policySetHash: FIXED,
    severity: FIXED,
    action: FIXED,
    outcome: FIXED,
    decision: optional(KEEP),
    hold: optional(KEEP),
    concerns: FIXED,
    reason: required(STRING, PLACEHOLDER),
    evidence: required(object({ fields: required(array(STRING), null), measures: FIXED }), null),
  }),
  // Ids, hashes, enums and pointers key the graph and the lifecycle: kept. Reasons are scanned.
  "escalation.opened": object({
    escalationId: FIXED,
    severity: FIXED,
    policyId: FIXED,
    policyVersion: FIXED,
    policySetHash: FIXED,
    flagEventIds: FIXED,
    concerns: FIXED,
    reason: required(STRING, PLACEHOLDER),
    holdId: optional(KEEP),
    deadline: optional(KEEP),
    defaultDecision: optional(KEEP),
  }),
  "escalation.transition": object({
    escalationId: FIXED,
    from: FIXED,
    to: FIXED,
    reviewer: required(object({ id: required(KEEP, null), name: optional(STRING) }), null),
    reason: required(STRING, PLACEHOLDER),
    holdDecision: optional(KEEP),
  }),
  // Ids, enums, numbers and timestamps only; the error is a category the notifier words itself.
  "escalation.notification": object({
    escalationId: FIXED,
    deliveryId: FIXED,
    channel: FIXED,
    attempt: FIXED,
    status: FIXED,
    httpStatus: optional(KEEP),
    error: optional(STRING),
    at: FIXED,
    nextRetryAt: optional(KEEP),
  }),
} satisfies PayloadRedaction<PolicyEventType>;
