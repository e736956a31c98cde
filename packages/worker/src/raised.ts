import {
  SCHEMA_VERSION,
  SEVERITIES,
  EventSchema,
  isSystemEvent,
  parseWith,
  sha256Hex,
  upcastEvent,
  type AuditEvent,
  type EventOf,
  type Severity,
  type UserEvent,
} from "@auditgraph/core";
import { INLINE_ACTIONS, PRE_CALL_EVENT_TYPES, flagPayload, holdIdOf, type Finding } from "@auditgraph/policy";
import type { AppendedStream } from "./recorder.js";

// The pure side of the worker's policies: what a job's records and their findings raise, as
// events, with no I/O (the clock alone, for `occurredAt`). Evaluating (which reads the policies'
// state) and recording (through the worker's recorder) are the engine's and the pipeline's: see
// `PolicyEngine` and `recordJob`.

/**
 * An id in UUIDv7 form derived from `seed`: the time bits of `timeOf` (a UUIDv7, the concerned
 * event's), then bits of the seed's hash. The same finding on the same event always gets the same
 * id, so a redelivered job's flags are the ledger's duplicates by event id and never counted twice,
 * and the id still sorts beside the event it is about.
 */
export function derivedEventId(timeOf: string, seed: string): string {
  const time = timeOf.replace(/-/g, "").slice(0, 12);
  if (!/^[0-9a-f]{12}$/i.test(time)) throw new TypeError(`derivedEventId: timeOf must be a UUIDv7, got ${timeOf.length} characters`);
  const h = sha256Hex(seed);
  const variant = ((parseInt(h[3]!, 16) & 0x3) | 0x8).toString(16);
  return `${time.slice(0, 8)}-${time.slice(8, 12)}-7${h.slice(0, 3)}-${variant}${h.slice(4, 7)}-${h.slice(7, 19)}`.toLowerCase();
}

export const flagIdOf = (concernedEventId: string, policyId: string) => derivedEventId(concernedEventId, `policy.flag|${concernedEventId}|${policyId}`);
export const escalationIdOf = (concernedEventId: string, policyId: string) => derivedEventId(concernedEventId, `escalation|${concernedEventId}|${policyId}`);

const rank = (s: Severity) => SEVERITIES.indexOf(s);

/** The events one finding raises: its flag, and an escalation when it escalates or is severe enough. */
export function raisedEvents(event: UserEvent, finding: Finding, escalationSeverity: Severity): AuditEvent[] {
  const escalates = finding.action === "escalate" || rank(finding.severity) >= rank(escalationSeverity);
  const concerned = finding.concerns.eventId ?? event.eventId;
  const flagId = flagIdOf(concerned, finding.policyId);
  const occurredAt = new Date().toISOString();
  const flag = parseWith(
    EventSchema,
    {
      eventId: flagId,
      schemaVersion: SCHEMA_VERSION,
      type: "policy.flag",
      occurredAt,
      traceId: event.traceId,
      runId: event.runId,
      parentRunId: event.parentRunId,
      sessionId: event.sessionId,
      identity: event.identity,
      name: finding.policyId,
      payload: flagPayload({ finding, outcome: escalates ? "escalated" : "flagged" }),
    },
    `flag of policy ${finding.policyId}`,
  );
  if (!escalates) return [flag];
  return [flag, openedEvent(event, finding, flagId, concerned, occurredAt)];
}

type EscalatedFinding = Pick<Finding, "severity" | "policyId" | "policyVersion" | "policySetHash" | "reason"> & {
  concerns: Finding["concerns"];
};

/** What an escalation about a held call carries of its hold; no deadline from an agent that did not record one. */
type HoldOfEscalation = { holdId: string; deadline?: string; defaultDecision?: "allow" | "deny" };

function openedEvent(event: UserEvent, finding: EscalatedFinding, flagId: string, concerned: string, occurredAt: string, hold?: HoldOfEscalation) {
  const escalationId = escalationIdOf(concerned, finding.policyId);
  return parseWith(
    EventSchema,
    {
      eventId: escalationId,
      schemaVersion: SCHEMA_VERSION,
      type: "escalation.opened",
      occurredAt,
      // The concerned trace's: the ledger's trace read finds the escalation beside its evidence.
      traceId: event.traceId,
      runId: escalationId,
      parentRunId: null,
      sessionId: null,
      tenantId: event.identity.user.tenantId,
      payload: {
        escalationId,
        severity: finding.severity,
        policyId: finding.policyId,
        policyVersion: finding.policyVersion,
        policySetHash: finding.policySetHash,
        flagEventIds: [flagId],
        concerns: finding.concerns,
        reason: finding.reason,
        ...(hold ?? {}),
      },
    },
    `escalation of policy ${finding.policyId}`,
  ) as EventOf<"escalation.opened">;
}

/**
 * The escalation of a call the agent holds: its `held` flag (recorded when the hold starts) is the
 * evidence, and the escalation carries the hold's id, so resolving or dismissing it releases the
 * call. Opened whatever the rule's severity: only a human can release a held call.
 */
export function heldEscalation(flag: EventOf<"policy.flag">): EventOf<"escalation.opened"> {
  const p = flag.payload;
  const concerned = p.concerns.eventId ?? flag.eventId;
  // The id is derived, as the CLI derives it; the deadline and default are the agent's (an older agent's flag has none).
  const hold = { holdId: holdIdOf(p), ...(p.hold ? { deadline: p.hold.deadline, defaultDecision: p.hold.defaultDecision } : {}) };
  return openedEvent(flag, { ...p, concerns: { ...p.concerns, traceId: flag.traceId } }, flag.eventId, concerned, new Date().toISOString(), hold);
}

/** The events of a stream the policies look at: each once, in the clear as received (never the sealed copy), upcast, in ledger order. */
export function eventsToEvaluate(stream: AppendedStream): AuditEvent[] {
  const events: AuditEvent[] = [];
  const seen = new Set<string>();
  for (const record of stream.records) {
    const raw = stream.inHand.get(record.event.eventId);
    if (!raw || seen.has(raw.eventId)) continue;
    seen.add(raw.eventId);
    events.push(upcastEvent(raw));
  }
  return events;
}

/**
 * The events to evaluate, grouped by user, each user's in order: every counter of the stateful
 * policies (per trace, per user) still sees its events in the order of the job, while different
 * users' round trips to a shared state may overlap. System events and flags are never evaluated.
 */
export function byUser(events: AuditEvent[]): UserEvent[][] {
  const users = new Map<string, UserEvent[]>();
  for (const event of events) {
    if (isSystemEvent(event) || event.type === "policy.flag") continue;
    const { tenantId, id } = event.identity.user;
    const key = `${tenantId}\u0000${id}`;
    const list = users.get(key);
    if (list) list.push(event);
    else users.set(key, [event]);
  }
  return [...users.values()];
}

/** What a stream's findings raise: the events to record, and how many flags and escalations they are. */
export interface Raised {
  raised: AuditEvent[];
  flags: number;
  escalations: number;
}

/** Adds the events one finding raises to `into`. */
export function addFinding(into: Raised, event: UserEvent, finding: Finding, escalationSeverity: Severity): void {
  const out = raisedEvents(event, finding, escalationSeverity);
  into.flags += 1;
  into.escalations += out.length - 1;
  into.raised.push(...out);
}

/**
 * What the findings on a stream's events raise, in the events' order. Left to the agent: `block`
 * and `hold` findings on the calls it checks inline (it records their outcome itself), and any
 * finding the stream shows the agent already recorded (a `policy.flag` of the same policy on the
 * same run). A held call's flag opens its escalation.
 */
export function raisedFrom(events: AuditEvent[], findings: ReadonlyMap<AuditEvent, Finding[]>, escalationSeverity: Severity): Raised {
  const recordedByAgent = new Set(
    events.filter((e): e is EventOf<"policy.flag"> => e.type === "policy.flag").map((e) => `${e.payload.policyId}|${e.payload.concerns.runId}`),
  );
  const out: Raised = { raised: [], flags: 0, escalations: 0 };
  for (const event of events) {
    if (event.type === "policy.flag" && event.payload.action === "hold" && event.payload.outcome === "held") {
      out.raised.push(heldEscalation(event));
      out.escalations += 1;
      continue;
    }
    if (isSystemEvent(event) || event.type === "policy.flag") continue;
    for (const finding of findings.get(event) ?? []) {
      if (INLINE_ACTIONS.includes(finding.action) && PRE_CALL_EVENT_TYPES.includes(event.type)) continue;
      if (recordedByAgent.has(`${finding.policyId}|${finding.concerns.runId}`)) continue;
      addFinding(out, event, finding, escalationSeverity);
    }
  }
  return out;
}
