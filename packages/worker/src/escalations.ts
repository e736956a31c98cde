import { z } from "zod";
import {
  AuditgraphError,
  ESCALATION_STATES,
  EscalationTransitionError,
  EventSchema,
  SCHEMA_VERSION,
  canTransition,
  foldEscalation,
  isSealed,
  newEventId,
  parseWith,
  upcastEvent,
  type EscalationView,
  type EventOf,
  type LedgerRecord,
} from "@auditgraph/core";
import type { Cluster, Redis } from "ioredis";
import type { Ledger } from "@auditgraph/ledger";
import type { Graph } from "@auditgraph/graph";
import { publishHoldDecision, type HoldDecision, type PublishHoldDecisionResult } from "@auditgraph/policy";
import { escalationChangesOf, publishEscalationChanges } from "./escalation-changes.js";

/** No escalation by that id (in that tenant, when one is named): the same words either way, so a tenant cannot probe another's ids. */
export class EscalationNotFoundError extends AuditgraphError {
  override readonly name = "EscalationNotFoundError";
  constructor(
    readonly escalationId: string,
    tenantId?: string,
  ) {
    super("AUDITGRAPH_E_ESCALATION_NOT_FOUND", `escalation ${escalationId}: no such escalation${tenantId ? ` in tenant ${tenantId}` : ""}`);
  }
}

const text = z.string().trim().min(1);

export const TransitionRequestSchema = z.object({
  escalationId: z.uuidv7("must be an escalation id (a UUIDv7)"),
  to: z.enum(ESCALATION_STATES),
  reviewer: z.object({ id: text, name: text.optional() }),
  reason: text,
  /** When given, the escalation must be this tenant's. */
  tenantId: text.optional(),
  holdDecision: z.enum(["allow", "deny"]).optional(),
});
export type TransitionRequest = z.input<typeof TransitionRequestSchema>;

export interface TransitionResult {
  event: EventOf<"escalation.transition">;
  record: LedgerRecord;
  /** The escalation after the transition. */
  view: EscalationView;
  /** False when the ledger took it but the graph could not (yet): the projection catches up from the ledger. */
  projected: boolean;
  projectionError?: string;
  /** For an escalation about a held call: what publishing the decision did (`too-late`: the agent had taken its default). */
  hold?: { holdId: string; decision: HoldDecision; published?: PublishHoldDecisionResult; error?: string };
}

export interface TransitionHolds {
  /** Where the agents' holds wait (see `RedisHoldDecider`); the transition is also announced there (`ESCALATION_CHANGES_CHANNEL`). */
  redis: Redis | Cluster;
  prefix?: string;
}

/** What a move decides for a held call: resolving lets it run, dismissing refuses it; the others leave it waiting. */
export function holdDecisionOf(to: (typeof ESCALATION_STATES)[number], given: HoldDecision | undefined): HoldDecision | undefined {
  if (to === "resolved") return given ?? "allow";
  if (to === "dismissed") return given ?? "deny";
  return given;
}

const asEvent = (record: LedgerRecord) => (isSealed(record.event) ? undefined : upcastEvent(record.event));

/**
 * An escalation as its ledger events say it is: its opening and every transition, folded (see
 * `foldEscalation`). The opening's event id is the escalation's id; its trace holds the transitions.
 */
export async function readEscalation(ledger: Pick<Ledger, "readEvent" | "readTrace">, escalationId: string, tenantId?: string): Promise<EscalationView> {
  return (await locateEscalation(ledger, escalationId, tenantId)).view;
}

/**
 * The escalation and the stream its opening is in: the tenant's shard its trace went to, where
 * its transitions go too (a trace's records never span shards).
 */
async function locateEscalation(
  ledger: Pick<Ledger, "readEvent" | "readTrace">,
  escalationId: string,
  tenantId?: string,
): Promise<{ view: EscalationView; streamId: string }> {
  const record = await ledger.readEvent(escalationId);
  const opened = record && asEvent(record);
  if (!opened || opened.type !== "escalation.opened" || (tenantId !== undefined && opened.tenantId !== tenantId))
    throw new EscalationNotFoundError(escalationId, tenantId);
  const transitions = (await ledger.readTrace(opened.traceId, { streamId: record.streamId }))
    .filter((r) => r.streamId === record.streamId)
    .sort((a, b) => a.position - b.position)
    .map(asEvent)
    .filter((e): e is EventOf<"escalation.transition"> => e?.type === "escalation.transition" && e.payload.escalationId === escalationId);
  return { view: foldEscalation(opened, transitions), streamId: record.streamId };
}

/**
 * Moves an escalation along its lifecycle: the `escalation.transition` event (reviewer, reason)
 * is appended to the ledger stream of the escalation's opening, then projected. The current state is folded from the
 * ledger, not read from the graph, which may lag; a transition the lifecycle does not allow is
 * refused with an EscalationTransitionError naming the state, and nothing is appended.
 */
export async function transitionEscalation(
  ledger: Pick<Ledger, "readEvent" | "readTrace" | "append">,
  graph: Pick<Graph, "project"> | undefined,
  request: TransitionRequest,
  holds?: TransitionHolds,
): Promise<TransitionResult> {
  const req = parseWith(TransitionRequestSchema, request, "escalation transition");
  const { view: before, streamId } = await locateEscalation(ledger, req.escalationId, req.tenantId);
  if (!canTransition(before.state, req.to)) throw new EscalationTransitionError(req.escalationId, before.state, req.to);
  const holdId = before.opened.payload.holdId;
  const decision = holdId ? holdDecisionOf(req.to, req.holdDecision) : req.holdDecision;
  if (holdId && decision && !holds)
    throw new TypeError(`escalation ${req.escalationId} is about a held call (hold ${holdId}): holds (a Redis connection) is required to release it`);
  const event = parseWith(
    EventSchema,
    {
      eventId: newEventId(),
      schemaVersion: SCHEMA_VERSION,
      type: "escalation.transition",
      occurredAt: new Date().toISOString(),
      traceId: before.opened.traceId,
      runId: req.escalationId,
      parentRunId: null,
      sessionId: null,
      tenantId: before.tenantId,
      payload: {
        escalationId: req.escalationId,
        from: before.state,
        to: req.to,
        reviewer: { id: req.reviewer.id, ...(req.reviewer.name ? { name: req.reviewer.name } : {}) },
        reason: req.reason,
        ...(decision ? { holdDecision: decision } : {}),
      },
    },
    "escalation.transition event",
  ) as EventOf<"escalation.transition">;
  // In the ledger first: a call is never released without the decision on record. In the stream
  // (shard) of its opening, whatever the shard count is now: the trace stays in one stream.
  const { records } = await ledger.append(streamId, [event]);
  const record = records[0]!;
  const view = foldEscalation(before.opened, [...before.transitions.map((t) => t.event), event]);
  let hold: TransitionResult["hold"];
  if (holdId && decision && holds) {
    try {
      const published = await publishHoldDecision(holds.redis, holdId, decision, req.reviewer.id, holds.prefix ? { prefix: holds.prefix } : {});
      hold = { holdId, decision, published };
    } catch (error) {
      hold = { holdId, decision, error: (error as Error).message };
    }
  }
  const done = { event, record, view, ...(hold ? { hold } : {}) };
  let result: TransitionResult;
  if (!graph) result = { ...done, projected: false };
  else
    try {
      await graph.project([{ ...record, event }]);
      result = { ...done, projected: true };
    } catch (error) {
      result = { ...done, projected: false, projectionError: (error as Error).message };
    }
  // After the projection: a listener (the console's inbox) that reads the graph on the notice sees the move.
  if (holds) await publishEscalationChanges(holds.redis, escalationChangesOf([event]));
  return result;
}

export const EscalationListingSchema = z.object({
  tenantId: z.string(),
  id: z.string(),
  state: z.enum(ESCALATION_STATES),
  severity: z.string(),
  policyId: z.string().nullable(),
  reason: z.string().nullable(),
  openedAt: z.string().nullable(),
  updatedAt: z.string().nullable(),
  lastReviewer: z.string().nullable(),
  traceId: z.string().nullable(),
  /** A held call's: its hold, when the agent stops waiting and what it then does (null for the others). */
  holdId: z.string().nullable(),
  deadline: z.string().nullable(),
  defaultDecision: z.enum(["allow", "deny"]).nullable(),
  /** Until the deadline, as of the listing; 0 once it passed; null when no call waits (no deadline, or decided). */
  timeLeftMs: z.number().int().nonnegative().nullable(),
});
export type EscalationListing = z.infer<typeof EscalationListingSchema>;

/** `4m 10s`, `1h 5m`, `12s`: whole seconds, rounded up (a call with 0.4 s left is not "0s" from expiry). */
export function formatDuration(ms: number): string {
  const total = Math.ceil(ms / 1000);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const sec = total % 60;
  if (h > 0) return `${h}h ${m}m`;
  return m > 0 ? `${m}m ${sec}s` : `${sec}s`;
}

/**
 * How long a held call still waits for a decision, at `now`: null when no call waits on this
 * escalation (none was held, or it was resolved or dismissed, which decided the hold), 0 once the
 * deadline passed (the agent took the rule's default).
 */
export function timeLeftOf(deadline: string | null | undefined, state: (typeof ESCALATION_STATES)[number], now = Date.now()): number | null {
  if (!deadline || state === "resolved" || state === "dismissed") return null;
  const at = Date.parse(deadline);
  return Number.isNaN(at) ? null : Math.max(0, at - now);
}

const ListOptionsSchema = z.object({
  tenantId: text.nullable().default(null),
  /** Default: the queue, open and acknowledged ones. */
  states: z.array(z.enum(ESCALATION_STATES)).min(1).default(["open", "acknowledged"]),
  limit: z.int().positive().max(10_000).default(100),
});

// Most severe first, then oldest: the order a reviewer works the queue in.
const LIST = `
MATCH (e:Escalation)
WHERE ($tenantId IS NULL OR e.tenantId = $tenantId) AND e.state IN $states
WITH e, CASE e.severity WHEN 'critical' THEN 4 WHEN 'high' THEN 3 WHEN 'medium' THEN 2 WHEN 'low' THEN 1 ELSE 0 END AS rank
ORDER BY rank DESC, e.openedAt, e.id
LIMIT $limit
RETURN e.tenantId AS tenantId, e.id AS id, e.state AS state, e.severity AS severity, e.policyId AS policyId, e.reason AS reason,
       e.openedAt AS openedAt, e.updatedAt AS updatedAt, e.lastReviewer AS lastReviewer, e.traceId AS traceId,
       e.holdId AS holdId, e.deadline AS deadline, e.defaultDecision AS defaultDecision`;

/** Escalations as the graph projects them (one tenant's, or every tenant's for an operator), most severe and oldest first. */
export async function listEscalations(graph: Pick<Graph, "read" | "int">, options: z.input<typeof ListOptionsSchema> = {}): Promise<EscalationListing[]> {
  const o = parseWith(ListOptionsSchema, options, "escalation list options");
  const rows = await graph.read(LIST, { tenantId: o.tenantId, states: o.states, limit: graph.int(o.limit) });
  const now = Date.now();
  return rows.map((row, i) =>
    parseWith(
      EscalationListingSchema,
      { ...row, timeLeftMs: timeLeftOf(row.deadline as string | null, row.state as EscalationListing["state"], now) },
      `escalation row ${i}`,
    ),
  );
}
