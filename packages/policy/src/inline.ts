import { z } from "zod";
import {
  AuditgraphError,
  SEVERITIES,
  SeveritySchema,
  parseWith,
  type AuditEvent,
  type EventOf,
  type EventType,
  type HeldCall,
  type PolicyAction,
} from "@auditgraph/core";
import type { Finding } from "./finding.js";
import { awaitHold, type HoldDecider, type HoldDecision } from "./hold.js";
import { holdIdOf } from "./redis-hold.js";
import { PolicyEvaluationError, type PolicySet } from "./policy-set.js";
import { InMemoryPolicyState, type PolicyState } from "./state.js";

/** The actions the agent process enforces; `flag` and `escalate` are the worker's. */
export const INLINE_ACTIONS: readonly PolicyAction[] = ["block", "hold"];
/** The actions the worker acts on; the agent process only screens for them, to send urgent events first. */
export const ESCALATION_ACTIONS: readonly PolicyAction[] = ["flag", "escalate"];
/** The events after which a call runs: the last moment it can still be stopped. */
export const PRE_CALL_EVENT_TYPES: readonly EventType[] = ["tool.start", "llm.start"];

export type FlagPayload = EventOf<"policy.flag">["payload"];

/** One inline finding and what came of the call. */
export interface InlineOutcome {
  finding: Finding;
  outcome: FlagPayload["outcome"];
  /** Absent for a finding recorded without deciding anything (a hold beside a block). */
  decision?: HoldDecision;
  /** For a call that waited (or waits) on a hold: its id, deadline and default, on every flag of the hold. */
  hold?: HeldCall;
}

/** A call refused by an inline policy. Its message is the policy's reason: no event content. */
export class PolicyRefusal extends AuditgraphError {
  override readonly name = "PolicyRefusal";
  /** Stable code for every inline refusal: a `block` rule, a denied or timed-out `hold`, or rules that could not be evaluated. */
  override readonly code = "AUDITGRAPH_E_POLICY_REFUSED";
  constructor(
    message: string,
    readonly outcomes: readonly InlineOutcome[],
  ) {
    super("AUDITGRAPH_E_POLICY_REFUSED", message);
  }
}

export interface InlineVerdict {
  /** Every finding, each to be recorded as a `policy.flag` event. */
  outcomes: InlineOutcome[];
  /** Set when the call must not run: throw it. */
  refusal?: PolicyRefusal;
}

const hasMethods = (v: unknown, ...names: string[]): boolean =>
  typeof v === "object" && v !== null && names.every((name) => typeof (v as Record<string, unknown>)[name] === "function");

export const InlineEnforcerOptionsSchema = z.strictObject({
  set: z.custom<PolicySet>((v) => hasMethods(v, "evaluate", "appliesTo"), "must be a PolicySet"),
  /** Required when the set has `hold` rules. */
  decider: z.custom<HoldDecider>((v) => hasMethods(v, "decide"), "must be a HoldDecider (decide(finding, signal))").optional(),
  /** Default: an in-memory state of this enforcer's own. */
  state: z.custom<PolicyState>((v) => hasMethods(v, "add", "get"), "must be a PolicyState (add and get)").optional(),
  /**
   * Escalation-first: an event on which a `flag` or `escalate` rule of `minSeverity` or above
   * finds something, or a call held by a hold rule of that severity (a human must see it to
   * release it), is handed to `onUrgent`, so the transport sends it ahead of ordinary events.
   * The worker still evaluates and records these findings; this only decides what goes first.
   */
  escalation: z
    .strictObject({
      minSeverity: SeveritySchema,
      onUrgent: z.custom<(event: AuditEvent) => void>((v) => typeof v === "function", "must be a function"),
    })
    .optional(),
});
export type InlineEnforcerOptions = z.input<typeof InlineEnforcerOptionsSchema>;

const describeCall = (event: AuditEvent): string => (event.type === "tool.start" ? `tool call "${event.name ?? "unnamed"}"` : "model call");

function refusalMessage(event: AuditEvent, refused: InlineOutcome): string {
  const { finding } = refused;
  const policy = `auditgraph policy ${finding.policyId}@${finding.policyVersion}`;
  const call = describeCall(event);
  switch (refused.outcome) {
    case "held-denied":
      return `${policy} held the ${call} and the reviewer denied it: ${finding.reason}`;
    case "held-timeout":
      return `${policy} held the ${call}; no decision came in time and the rule's default is deny: ${finding.reason}`;
    default:
      return finding.action === "hold"
        ? `${policy} held the ${call} and the hold could not be decided, so it is refused: ${finding.reason}`
        : `${policy} blocked the ${call}: ${finding.reason}`;
  }
}

/**
 * The agent process's side of the policies: `block` and `hold` rules, evaluated on a call's
 * start event before the call runs, with no Redis or Neo4j in the way. Every other event is
 * `observe`d so that counters (budgets, tool errors) are current when the next call is checked.
 * Evaluations run one at a time, in the order the events came; holds wait outside that line,
 * so one held call does not stop the others from being checked.
 */
export class InlineEnforcer {
  readonly set: PolicySet;
  private readonly decider: HoldDecider | undefined;
  private readonly state: PolicyState;
  private tail: Promise<unknown> = Promise.resolve();
  private readonly escalation: InlineEnforcerOptions["escalation"];
  /** The event types an urgent-severity flag/escalate rule looks at: a Set, so `watches` costs nothing for the rest. */
  private readonly urgentTypes: ReadonlySet<EventType>;
  /** Evaluations of observed (or screened) events that failed (their counters may be short). */
  observeFailures = 0;

  constructor(input: InlineEnforcerOptions) {
    const options = parseWith(InlineEnforcerOptionsSchema, input, "inline policies options");
    this.set = options.set;
    this.decider = options.decider;
    this.state = options.state ?? new InMemoryPolicyState();
    this.escalation = options.escalation;
    const min = options.escalation ? SEVERITIES.indexOf(options.escalation.minSeverity) : Infinity;
    this.urgentTypes = new Set(
      options.set.policies.filter((p) => ESCALATION_ACTIONS.includes(p.action) && SEVERITIES.indexOf(p.severity) >= min).flatMap((p) => [...p.eventTypes]),
    );
    const holds = options.set.policies.filter((p) => p.action === "hold").map((p) => p.id);
    if (holds.length > 0 && !options.decider) throw new TypeError(`inline policies: the set has hold rules (${holds.join(", ")}) but no decider to ask`);
  }

  /** Whether `check` has anything to do for events of `type`. */
  checks(type: EventType): boolean {
    return PRE_CALL_EVENT_TYPES.includes(type) && this.set.appliesTo(type, INLINE_ACTIONS);
  }

  private inLine<T>(work: () => Promise<T>): Promise<T> {
    const run = this.tail.then(work, work);
    this.tail = run.catch(() => undefined);
    return run;
  }

  /** Feeds an event the inline rules only count (findings on it come too late to stop anything). Never throws. */
  observe(event: AuditEvent): void {
    if (!this.set.appliesTo(event.type, INLINE_ACTIONS)) return;
    this.inLine(() => this.set.evaluate(event, { state: this.state, actions: INLINE_ACTIONS })).catch(() => {
      this.observeFailures += 1;
    });
  }

  /** Resolves once every evaluation started so far (observed, screened or checked) has finished and reported. */
  settled(): Promise<void> {
    // One more turn than the tail: a screen's report to onUrgent is chained after the tail's own step.
    return this.tail.then(() => undefined);
  }

  /** Whether `screen` has anything to do for events of `type`. Allocation-free: it runs on every event. */
  watches(type: EventType): boolean {
    return this.urgentTypes.has(type);
  }

  /**
   * Looks for urgent-severity `flag`/`escalate` findings on an event, in the background, and
   * reports the event to `onUrgent` if there are any. Never throws, never delays the caller.
   */
  screen(event: AuditEvent): void {
    const escalation = this.escalation;
    if (!escalation || !this.urgentTypes.has(event.type)) return;
    this.inLine(() => this.set.evaluate(event, { state: this.state, actions: ESCALATION_ACTIONS, minSeverity: escalation.minSeverity })).then(
      (findings) => {
        if (findings.length > 0) this.urgent(event);
      },
      (error: unknown) => {
        this.observeFailures += 1;
        // Some rules failed; the others' findings still count.
        if (error instanceof PolicyEvaluationError && error.findings.length > 0) this.urgent(event);
      },
    );
  }

  private urgent(event: AuditEvent): void {
    try {
      this.escalation?.onUrgent(event);
    } catch {
      // Sending early is an optimisation: the event is on its way regardless.
    }
  }

  /**
   * The verdict on a call about to run, from its start event: blocks refuse it at once (holds
   * beside a block are recorded, not asked); holds wait for the decider, all at once, and the
   * call runs only if every one allows it. A policy that cannot be evaluated refuses the call:
   * these rules guard calls that must not run unchecked.
   */
  async check(event: AuditEvent, { onHeld }: { onHeld?: (held: InlineOutcome[]) => void } = {}): Promise<InlineVerdict> {
    let findings: Finding[];
    try {
      findings = await this.inLine(() => this.set.evaluate(event, { state: this.state, actions: INLINE_ACTIONS }));
    } catch (error) {
      if (!(error instanceof PolicyEvaluationError)) throw error;
      const ids = error.failures.map((f) => f.policyId).join(", ");
      throw new PolicyRefusal(`auditgraph policies ${ids} could not be evaluated, so the ${describeCall(event)} is refused`, []);
    }
    const blocks = findings.filter((f) => f.action === "block");
    if (blocks.length > 0) {
      const outcomes: InlineOutcome[] = findings.map((finding) =>
        finding.action === "block" ? { finding, outcome: "blocked", decision: "deny" } : { finding, outcome: "flagged" },
      );
      return { outcomes, refusal: new PolicyRefusal(refusalMessage(event, outcomes[findings.indexOf(blocks[0]!)]!), outcomes) };
    }
    const holds = findings.filter((f) => f.action === "hold");
    const escalation = this.escalation;
    if (escalation && holds.some((f) => SEVERITIES.indexOf(f.severity) >= SEVERITIES.indexOf(escalation.minSeverity))) this.urgent(event);
    const rules = new Map(this.set.policies.map((p) => [p.id, p]));
    // One deadline per hold, fixed before anything is recorded: the one the reviewer is told is the one the agent keeps.
    const startedAt = Date.now();
    const held = holds.map((finding) => {
      const rule = rules.get(finding.policyId)!.hold!;
      const deadline = startedAt + rule.timeoutMs;
      const hold: HeldCall = { holdId: holdIdOf(finding), deadline: new Date(deadline).toISOString(), defaultDecision: rule.defaultOutcome };
      return { finding, rule, deadline, hold };
    });
    // Before waiting: the caller records that the call is held, so a reviewer can be asked while it waits.
    if (held.length > 0 && onHeld) {
      try {
        onHeld(held.map(({ finding, hold }) => ({ finding, outcome: "held", hold })));
      } catch {
        // Recording is the caller's concern; the hold itself goes on.
      }
    }
    const outcomes = await Promise.all(
      held.map(async ({ finding, rule, deadline, hold }): Promise<InlineOutcome> => {
        const { outcome, decision } = await awaitHold(finding, rule, this.decider!, deadline);
        return { finding, outcome, decision, hold };
      }),
    );
    const denied = outcomes.find((o) => o.decision === "deny");
    return denied ? { outcomes, refusal: new PolicyRefusal(refusalMessage(event, denied), outcomes) } : { outcomes };
  }
}

/** The payload of the `policy.flag` event that records an inline outcome. */
export function flagPayload({ finding, outcome, decision, hold }: InlineOutcome): FlagPayload {
  const { traceId: _traceId, ...concerns } = finding.concerns;
  return { ...finding, concerns, outcome, ...(decision ? { decision } : {}), ...(hold ? { hold } : {}) };
}
