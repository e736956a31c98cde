import type { Logger } from "pino";
import {
  SCHEMA_VERSION,
  SEVERITIES,
  isSystemEvent,
  parseWith,
  EventSchema,
  sealEvent,
  sha256Hex,
  upcastEvent,
  type AuditEvent,
  type EventOf,
  type Severity,
  type StoredEvent,
  type SubjectKeyStore,
  type UserEvent,
} from "@auditgraph/core";
import {
  INLINE_ACTIONS,
  PRE_CALL_EVENT_TYPES,
  PolicyEvaluationError,
  PolicySet,
  flagPayload,
  holdIdOf,
  loadPolicyFile,
  type Finding,
  type PolicyDefinitionInput,
  type PolicyState,
} from "@auditgraph/policy";
import type { Ledger } from "@auditgraph/ledger";
import type { AppendedStream } from "./process.js";
import { ApprovalIntegrity } from "./approval-integrity.js";

/**
 * The worker's policies when AUDITGRAPH_POLICIES names no file: the built-ins that need no
 * deployment-specific settings. Secrets or PII seen by redaction and repeated tool errors are
 * flagged; prompt-injection markers in what tools and retrievers fed back to the model are high
 * severity and escalated. Budgets, allow-lists, blocked terms and tenant maps need a file.
 */
export const DEFAULT_WORKER_POLICIES: readonly PolicyDefinitionInput[] = [
  { kind: "function", id: "default.pii-or-secret", version: "1", severity: "medium", action: "flag", function: "pii-or-secret", params: {} },
  { kind: "function", id: "default.prompt-injection", version: "1", severity: "high", action: "escalate", function: "prompt-injection", params: {} },
  { kind: "function", id: "default.repeated-tool-errors", version: "1", severity: "medium", action: "flag", function: "repeated-tool-errors", params: {} },
];

/** The policy set of a worker: the file at `path` (JSON or YAML), else `DEFAULT_WORKER_POLICIES`. */
export async function loadWorkerPolicies(path: string | undefined): Promise<PolicySet> {
  return path ? loadPolicyFile(path) : PolicySet.create([...DEFAULT_WORKER_POLICIES]);
}

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
export const escalationIdOf = (concernedEventId: string, policyId: string) =>
  derivedEventId(concernedEventId, `escalation|${concernedEventId}|${policyId}`);

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

export interface PolicyEngineOptions {
  policies: PolicySet;
  state: PolicyState;
  /** Findings at or above it open an escalation whatever their action (default `high`). */
  escalationSeverity?: Severity;
  ledger: Ledger;
  keyStore?: SubjectKeyStore;
  logger: Logger;
  /** Tools whose start must be on record before they run (the handlers' `highImpactTools`): see `ApprovalIntegrity`. */
  highImpactTools?: readonly string[];
}

export interface RaisedStream {
  appended: AppendedStream;
  flags: number;
  escalations: number;
  /** The escalations this call put in the ledger (not those a redelivered job found there already): the ones to notify. */
  opened: EventOf<"escalation.opened">[];
}

/**
 * The worker's side of the policies, run after a job's events are in the ledger: each event of
 * the job, in order, in the clear as received (never the sealed copy), is evaluated; findings
 * become `policy.flag` events (and `escalation.opened` ones) appended to the same stream.
 *
 * Left to the agent: `block` and `hold` findings on the calls it checks inline (it records their
 * outcome itself, maybe much later than the call's start reaches the worker), and any finding the
 * job shows the agent already recorded (a `policy.flag` of the same policy on the same run).
 * Duplicates (a redelivered job, re-evaluated so that a crash between append and flags loses
 * nothing) are the ledger's: the raised events' ids are derived from the finding.
 */
export class PolicyEngine {
  readonly escalationSeverity: Severity;
  private readonly approvals: ApprovalIntegrity;

  constructor(private readonly options: PolicyEngineOptions) {
    this.escalationSeverity = options.escalationSeverity ?? "high";
    this.approvals = new ApprovalIntegrity({
      ledger: options.ledger,
      state: options.state,
      ...(options.highImpactTools ? { highImpactTools: options.highImpactTools } : {}),
      ...(options.keyStore ? { keyStore: options.keyStore } : {}),
    });
  }

  /** The findings on one event; a policy that failed is logged and left out, the others' findings kept. */
  private async evaluate(event: AuditEvent): Promise<Finding[]> {
    try {
      return await this.options.policies.evaluate(event, { state: this.options.state });
    } catch (error) {
      if (!(error instanceof PolicyEvaluationError)) throw error;
      // Policy ids and error names only; the others' findings still count.
      this.options.logger.warn({ eventId: event.eventId, failures: error.failures }, "some policies could not be evaluated on an event");
      return error.findings;
    }
  }

  async raise(stream: AppendedStream, keys?: Pick<SubjectKeyStore, "keyFor">): Promise<RaisedStream | undefined> {
    const events: AuditEvent[] = [];
    const seen = new Set<string>();
    for (const record of stream.records) {
      const raw = stream.inHand.get(record.event.eventId);
      if (!raw || seen.has(raw.eventId)) continue;
      seen.add(raw.eventId);
      events.push(upcastEvent(raw));
    }
    const recordedByAgent = new Set(
      events.filter((e): e is EventOf<"policy.flag"> => e.type === "policy.flag").map((e) => `${e.payload.policyId}|${e.payload.concerns.runId}`),
    );
    // Each user's events in order, the users side by side: every counter of the stateful policies
    // (per trace, per user) still sees its events in the order of the job, while the round trips
    // to a shared state (Redis) of different users overlap instead of queueing one behind another.
    const byUser = new Map<string, UserEvent[]>();
    for (const event of events) {
      if (isSystemEvent(event) || event.type === "policy.flag") continue;
      const { tenantId, id } = event.identity.user;
      const key = `${tenantId}\u0000${id}`;
      const list = byUser.get(key);
      if (list) list.push(event);
      else byUser.set(key, [event]);
    }
    const evaluated = new Map<AuditEvent, { event: UserEvent; findings: Finding[] }>();
    await Promise.all(
      [...byUser.values()].map(async (list) => {
        for (const event of list) evaluated.set(event, { event, findings: await this.evaluate(event) });
      }),
    );
    const raised: AuditEvent[] = [];
    let flags = 0;
    let escalations = 0;
    for (const event of events) {
      if (event.type === "policy.flag" && event.payload.action === "hold" && event.payload.outcome === "held") {
        raised.push(heldEscalation(event));
        escalations += 1;
        continue;
      }
      const evaluation = evaluated.get(event);
      if (!evaluation) continue;
      for (const finding of evaluation.findings) {
        if (INLINE_ACTIONS.includes(finding.action) && PRE_CALL_EVENT_TYPES.includes(event.type)) continue;
        if (recordedByAgent.has(`${finding.policyId}|${finding.concerns.runId}`)) continue;
        const out = raisedEvents(evaluation.event, finding, this.escalationSeverity);
        flags += 1;
        escalations += out.length - 1;
        raised.push(...out);
      }
    }
    // Approvals proven from the ledger, not taken from the agent: a critical flag per violation (see ApprovalIntegrity).
    for (const { event, finding } of await this.approvals.check(stream.streamId, events, stream.records, raised)) {
      const out = raisedEvents(event, finding, this.escalationSeverity);
      flags += 1;
      escalations += out.length - 1;
      raised.push(...out);
    }
    if (raised.length === 0) return undefined;
    const { ledger, keyStore } = this.options;
    const sealer = keys ?? keyStore;
    const stored: StoredEvent[] = sealer ? await Promise.all(raised.map((e) => (isSystemEvent(e) ? e : sealEvent(e, sealer)))) : raised;
    const result = await ledger.append(stream.streamId, stored);
    // A duplicate maps to its stored record, further back; the new records are the last positions.
    const fresh = new Set(
      [...result.records]
        .sort((a, b) => b.position - a.position)
        .slice(0, result.appended)
        .map((r) => r.event.eventId),
    );
    return {
      appended: { streamId: stream.streamId, records: result.records, appended: result.appended, inHand: new Map(raised.map((e) => [e.eventId, e])) },
      flags,
      escalations,
      opened: raised.filter((e): e is EventOf<"escalation.opened"> => e.type === "escalation.opened" && fresh.has(e.eventId)),
    };
  }
}

