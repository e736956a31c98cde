import {
  canonicalJson,
  isSealed,
  isStreamOfTenant,
  isSystemEvent,
  openEvent,
  sha256Hex,
  upcastEvent,
  type AuditEvent,
  type EventOf,
  type LedgerRecord,
  type SubjectKeyStore,
  type UserEvent,
} from "@auditgraph/core";
import type { Ledger } from "@auditgraph/ledger";
import type { Finding, PolicyState } from "@auditgraph/policy";

/**
 * Approval integrity (issue 14, point 9): frameworks have run tool calls a human rejected, so the
 * worker does not take the agent's word (its `held-allowed` flag) for an approval. When it records
 * a tool run that executed, it proves from the ledger that every hold on the run was released by
 * an allow in time (or by the rule's default `allow` at the deadline), and that a high-impact
 * tool's start was recorded; a run that fails raises a critical flag. The investigation
 * `approval-integrity` applies the same rule to the graph (see `holdViolation`).
 */

export const APPROVAL_VIOLATIONS = ["no-decision", "after-deny", "after-deadline", "no-start"] as const;
export type ApprovalViolation = (typeof APPROVAL_VIOLATIONS)[number];

/** The policy id of a violation's flag: one per kind, so each run gets at most one flag of each kind (ids are derived from it). */
export const approvalPolicyIdOf = (kind: ApprovalViolation) => `approval-integrity.${kind}`;
export const APPROVAL_POLICY_VERSION = "1";

const REASONS: Record<ApprovalViolation, string> = {
  "no-decision": "a held tool call executed without an allow decision on its hold",
  "after-deny": "a held tool call executed after a reviewer denied it",
  "after-deadline": "a held tool call executed after its hold's deadline, whose default is deny",
  "no-start": "a high-impact tool executed with no start event recorded in the ledger",
};

/** What the ledger says of one hold on a run: its deadline and default (the agent's), and the first decision on it. */
export interface HoldEvidence {
  holdId: string;
  escalationId: string | null;
  deadline: string | null;
  defaultDecision: "allow" | "deny" | null;
  /** The first transition of its escalation that carries a decision, in ledger order (the one that released or refused the call). */
  decision: { decision: "allow" | "deny"; at: string } | null;
}

const ms = (iso: string) => Date.parse(iso);

/**
 * The rule, given a hold and the moment (worker time) the run's end was recorded. A decision
 * counts when it was recorded by the deadline (a later one finds the agent gone with the
 * default: `publishHoldDecision` says "too late"). The call may run after an allow decision, or
 * after the deadline when no decision came in time and the default is allow; anything else is a
 * violation: after a deny, after the deadline (default deny, or none recorded), or while the hold
 * still waited (no allow yet). The investigation's Cypher applies the same rule.
 */
export function holdViolation(hold: HoldEvidence, endedAt: string): ApprovalViolation | undefined {
  const { deadline, decision } = hold;
  const inTime = decision !== null && (deadline === null || ms(decision.at) <= ms(deadline));
  if (inTime) {
    if (ms(endedAt) <= ms(decision.at)) return "no-decision";
    return decision.decision === "deny" ? "after-deny" : undefined;
  }
  if (deadline !== null && ms(endedAt) > ms(deadline)) return hold.defaultDecision === "allow" ? undefined : "after-deadline";
  return "no-decision";
}

/** An event as the ledger holds it, with its place and the worker's stamp; `event` is in the clear when it could be opened. */
interface Fact {
  event: AuditEvent | { type: string; runId: string; eventId: string };
  clear: boolean;
  recordedAt: string;
  order: number;
}

const typeOf = (f: Fact) => f.event.type;
const isRefusal = (e: AuditEvent) => e.type === "tool.error" && e.payload.error.name === "PolicyRefusal";

/** A tool end that says the tool ran: a `tool.end`, or a `tool.error` that is not the agent's refusal (a refused call never ran). */
const executed = (f: Fact) => typeOf(f) === "tool.end" || (typeOf(f) === "tool.error" && !(f.clear && isRefusal(f.event as AuditEvent)));

/** The holds on run `runId` among a trace's facts (one tenant's stream): from its escalations and from the agent's hold flags. */
export function holdsOf(facts: readonly Fact[], runId: string): HoldEvidence[] {
  const holds = new Map<string, HoldEvidence>();
  const at = (holdId: string) => {
    let hold = holds.get(holdId);
    if (!hold) holds.set(holdId, (hold = { holdId, escalationId: null, deadline: null, defaultDecision: null, decision: null }));
    return hold;
  };
  for (const f of facts) {
    if (!f.clear) continue;
    const e = f.event as AuditEvent;
    if (e.type === "escalation.opened" && e.payload.holdId && e.payload.concerns.runId === runId) {
      const hold = at(e.payload.holdId);
      hold.escalationId = e.payload.escalationId;
      hold.deadline ??= e.payload.deadline ?? null;
      hold.defaultDecision ??= e.payload.defaultDecision ?? null;
    }
    if (e.type === "policy.flag" && e.payload.hold && e.payload.concerns.runId === runId) {
      const hold = at(e.payload.hold.holdId);
      hold.deadline ??= e.payload.hold.deadline;
      hold.defaultDecision ??= e.payload.hold.defaultDecision;
    }
  }
  const sorted = [...facts].sort((a, b) => a.order - b.order);
  for (const hold of holds.values()) {
    const first = sorted.find(
      (f) =>
        f.clear &&
        f.event.type === "escalation.transition" &&
        (f.event as EventOf<"escalation.transition">).payload.escalationId === hold.escalationId &&
        (f.event as EventOf<"escalation.transition">).payload.holdDecision,
    );
    if (first) hold.decision = { decision: (first.event as EventOf<"escalation.transition">).payload.holdDecision!, at: first.recordedAt };
  }
  return [...holds.values()];
}

export interface ApprovalIntegrityOptions {
  ledger: Pick<Ledger, "readTrace">;
  /** Where the worker remembers (across jobs and workers) which runs started, were held or ran: the policies' state. */
  state: PolicyState;
  /** Tools whose start must be on record before they run: the same names as the handlers' `highImpactTools`. */
  highImpactTools?: readonly string[];
  keyStore?: Pick<SubjectKeyStore, "byId">;
}

/** A violation found on a run: the finding to record, and the event (the run's end) it is about. */
export interface ApprovalFinding {
  event: UserEvent;
  finding: Finding;
}

const key = (what: string, tenantId: string, runId: string) => `approval|${what}|${canonicalJson([tenantId, runId])}`;

/**
 * The worker's side. A ledger read per trace costs a scan of the segment ledger, so it is done only
 * for runs worth proving: an executed run that a hold applied to (or a held flag whose run already
 * ended), and a high-impact run whose start the worker has not seen. Which runs started, were held
 * or ran is kept in the policies' state, so it holds across jobs, redeliveries and workers.
 */
export class ApprovalIntegrity {
  private readonly highImpact: Set<string>;
  /** The hash that stands for "which rules": this check's version and its list of high-impact tools. */
  readonly policySetHash: string;

  constructor(private readonly options: ApprovalIntegrityOptions) {
    this.highImpact = new Set(options.highImpactTools ?? []);
    this.policySetHash = sha256Hex(
      canonicalJson({ check: "approval-integrity", version: APPROVAL_POLICY_VERSION, highImpactTools: [...this.highImpact].sort() }),
    );
  }

  /**
   * The violations on the runs of one stream's job (`events` in the clear, `recorded` their
   * records), `raised` being what the policies raise on it now (escalations of held calls not yet
   * in the ledger).
   */
  async check(streamId: string, events: readonly AuditEvent[], recorded: readonly LedgerRecord[], raised: readonly AuditEvent[]): Promise<ApprovalFinding[]> {
    const { state } = this.options;
    const candidates = new Map<string, { traceId: string; tenantId: string; runId: string }>();
    const candidate = (e: UserEvent) =>
      candidates.set(canonicalJson([e.traceId, e.runId]), { traceId: e.traceId, tenantId: e.identity.user.tenantId, runId: e.runId });
    const user = events.filter((e): e is UserEvent => !isSystemEvent(e));
    const ran = (e: UserEvent) => (e.type === "tool.end" || e.type === "tool.error") && !isRefusal(e);
    const holds = (e: UserEvent) => e.type === "policy.flag" && e.payload.action === "hold";
    // Every fact recorded before any is looked up (one round trip each, side by side): of a run's
    // end and its hold flag in two jobs at once, at least one sees the other.
    await Promise.all(
      user.flatMap((e) => {
        const tenantId = e.identity.user.tenantId;
        if (e.type === "tool.start" && this.highImpact.has(e.name ?? "")) return [state.add(key("start", tenantId, e.runId), e.eventId, 1)];
        if (holds(e)) return [state.add(key("hold", tenantId, e.runId), e.eventId, 1)];
        if (ran(e)) return [state.add(key("ran", tenantId, e.runId), e.eventId, 1)];
        return [];
      }),
    );
    await Promise.all(
      user.map(async (e) => {
        const tenantId = e.identity.user.tenantId;
        if (ran(e)) {
          if ((await state.get(key("hold", tenantId, e.runId))) > 0) candidate(e);
          else if (this.highImpact.has(e.name ?? "") && (await state.get(key("start", tenantId, e.runId))) === 0) candidate(e);
        }
        if (holds(e) && (await state.get(key("ran", tenantId, e.runId))) > 0) candidate(e);
      }),
    );
    if (candidates.size === 0) return [];

    const stampOf = new Map(recorded.map((r) => [r.event.eventId, r]));
    const now = new Date().toISOString();
    const found: ApprovalFinding[] = [];
    const traces = new Map<string, Fact[]>();
    for (const { traceId, tenantId, runId } of candidates.values()) {
      let facts = traces.get(traceId);
      if (!facts) traces.set(traceId, (facts = await this.factsOf(streamId, tenantId, traceId, events, stampOf, raised, now)));
      found.push(...this.violations(facts, runId));
    }
    return found;
  }

  /**
   * The trace's events in the tenant's streams: the ledger's, then the job's and what is raised now,
   * each once. A trace is in one shard while the shard count stays; one that changed moves the
   * trace's later records to another stream, so all the tenant's streams are read. Records of the
   * other streams come first (written under the earlier count), in the order they were recorded.
   */
  private async factsOf(
    streamId: string,
    tenantId: string,
    traceId: string,
    events: readonly AuditEvent[],
    stampOf: Map<string, LedgerRecord>,
    raised: readonly AuditEvent[],
    now: string,
  ): Promise<Fact[]> {
    const facts = new Map<string, Fact>();
    const stored = (await this.options.ledger.readTrace(traceId, { tenantId })).filter((r) => isStreamOfTenant(r.streamId, tenantId));
    const earlier = stored
      .filter((r) => r.streamId !== streamId)
      .sort((a, b) => a.recordedAt.localeCompare(b.recordedAt) || a.position - b.position)
      .map((r) => r.event.eventId);
    const orderOf = (r: LedgerRecord) => (r.streamId === streamId ? r.position : earlier.indexOf(r.event.eventId) - earlier.length);
    for (const r of stored) {
      let event: Fact["event"] = r.event as Fact["event"];
      let clear = !isSealed(r.event);
      if (!clear && this.options.keyStore) {
        const opened = await openEvent(r.event, this.options.keyStore);
        if (!opened.erased) [event, clear] = [opened.event, true];
      }
      facts.set(r.event.eventId, { event: clear ? upcastEvent(event as AuditEvent) : event, clear, recordedAt: r.recordedAt, order: orderOf(r) });
    }
    // The job's events in the clear (the ledger may hold them sealed); raised ones come after everything recorded.
    for (const e of events) {
      const r = stampOf.get(e.eventId);
      if (e.traceId === traceId && r) facts.set(e.eventId, { event: e, clear: true, recordedAt: r.recordedAt, order: r.position });
    }
    for (const [i, e] of raised.entries())
      if (e.traceId === traceId && !facts.has(e.eventId))
        facts.set(e.eventId, { event: e, clear: true, recordedAt: now, order: Number.MAX_SAFE_INTEGER - raised.length + i });
    return [...facts.values()];
  }

  private violations(facts: Fact[], runId: string): ApprovalFinding[] {
    const ofRun = facts.filter((f) => f.event.runId === runId);
    const end = ofRun.filter((f) => f.clear && executed(f)).sort((a, b) => a.order - b.order)[0];
    if (!end) return [];
    const event = end.event as UserEvent;
    const kinds = new Set<ApprovalViolation>();
    for (const hold of holdsOf(facts, runId)) {
      const kind = holdViolation(hold, end.recordedAt);
      if (kind) kinds.add(kind);
    }
    if (this.highImpact.has(event.name ?? "") && !ofRun.some((f) => typeOf(f) === "tool.start")) kinds.add("no-start");
    return [...kinds].map((kind) => ({ event, finding: this.findingOf(event, kind) }));
  }

  private findingOf(event: UserEvent, kind: ApprovalViolation): Finding {
    return {
      policyId: approvalPolicyIdOf(kind),
      policyVersion: APPROVAL_POLICY_VERSION,
      policySetHash: this.policySetHash,
      severity: "critical",
      action: "flag",
      concerns: { eventId: event.eventId, runId: event.runId, kind: "tool_call", traceId: event.traceId },
      reason: REASONS[kind],
      evidence: { fields: [], measures: {} },
    };
  }
}
