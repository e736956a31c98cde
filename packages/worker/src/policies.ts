import type { Logger } from "pino";
import type { AuditEvent, EventOf, Severity, SubjectKeyStore } from "@auditgraph/core";
import { PolicyEvaluationError, PolicySet, loadPolicyFile, type Finding, type PolicyDefinitionInput, type PolicyState } from "@auditgraph/policy";
import type { Ledger } from "@auditgraph/ledger";
import { EventRecorder, type AppendedStream } from "./recorder.js";
import { ApprovalIntegrity } from "./approval-integrity.js";
import { addFinding, byUser, eventsToEvaluate, raisedFrom, type Raised } from "./raised.js";

export { derivedEventId, flagIdOf, escalationIdOf, raisedEvents, heldEscalation } from "./raised.js";

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

export interface PolicyEngineOptions {
  policies: PolicySet;
  state: PolicyState;
  /** Findings at or above it open an escalation whatever their action (default `high`). */
  escalationSeverity?: Severity;
  /** Read for the approvals' evidence; written only by `raise` (the worker writes through its recorder). */
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

/** What the policies found on one stream's share of a job: the events to record (maybe none). Nothing is written yet. */
export interface PolicyEvaluation extends Raised {
  streamId: string;
}

/**
 * The worker's side of the policies, run after a job's events are in the ledger: each event of
 * the job, in order, in the clear as received (never the sealed copy), is evaluated; findings
 * become `policy.flag` events (and `escalation.opened` ones) to append to the same stream (see
 * `raisedFrom` for what is left to the agent). `evaluate` writes nothing; the worker records its
 * events with `recordRaised`. Duplicates (a redelivered job, re-evaluated so that a crash between
 * append and flags loses nothing) are the ledger's: the raised events' ids are derived from the finding.
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
  private async findings(event: AuditEvent): Promise<Finding[]> {
    try {
      return await this.options.policies.evaluate(event, { state: this.options.state });
    } catch (error) {
      if (!(error instanceof PolicyEvaluationError)) throw error;
      // Policy ids and error names only; the others' findings still count.
      this.options.logger.warn({ eventId: event.eventId, failures: error.failures }, "some policies could not be evaluated on an event");
      return error.findings;
    }
  }

  /** The events a stream's records raise. Reads the policies' state and the ledger (for approvals); writes nothing. */
  async evaluate(stream: AppendedStream): Promise<PolicyEvaluation> {
    const events = eventsToEvaluate(stream);
    const findings = new Map<AuditEvent, Finding[]>();
    // The users side by side, each user's events in order (see `byUser`): the round trips to a
    // shared state (Redis) of different users overlap instead of queueing one behind another.
    await Promise.all(
      byUser(events).map(async (list) => {
        for (const event of list) findings.set(event, await this.findings(event));
      }),
    );
    const out = raisedFrom(events, findings, this.escalationSeverity);
    // Approvals proven from the ledger, not taken from the agent: a critical flag per violation (see ApprovalIntegrity).
    for (const { event, finding } of await this.approvals.check(stream.streamId, events, stream.records, out.raised))
      addFinding(out, event, finding, this.escalationSeverity);
    return { streamId: stream.streamId, ...out };
  }

  /** `evaluate`, then its events recorded (sealed with `keys` or the key store), for a caller without the worker's recorder. */
  async raise(stream: AppendedStream, keys?: Pick<SubjectKeyStore, "keyFor">): Promise<RaisedStream | undefined> {
    const { ledger, keyStore } = this.options;
    return recordRaised(new EventRecorder({ ledger, ...(keyStore ? { keyStore } : {}) }), await this.evaluate(stream), keys);
  }
}

/** Records what the policies raised (nothing when they raised nothing), and names the escalations it opened. */
export async function recordRaised(
  recorder: EventRecorder,
  evaluation: PolicyEvaluation,
  keys?: Pick<SubjectKeyStore, "keyFor">,
): Promise<RaisedStream | undefined> {
  const { streamId, raised, flags, escalations } = evaluation;
  if (raised.length === 0) return undefined;
  const appended = await recorder.record(streamId, raised, keys ? { keys } : {});
  // A duplicate maps to its stored record, further back; the new records are the last positions.
  const fresh = new Set(
    [...appended.records]
      .sort((a, b) => b.position - a.position)
      .slice(0, appended.appended)
      .map((r) => r.event.eventId),
  );
  return {
    appended,
    flags,
    escalations,
    opened: raised.filter((e): e is EventOf<"escalation.opened"> => e.type === "escalation.opened" && fresh.has(e.eventId)),
  };
}
