import neo4j from "neo4j-driver";
import { type Batch, type Step, json, ofType } from "./common.js";
import { statement } from "./statement.js";

// Policy: flags and what they are about, escalations, their transitions and notification attempts.

// Policy flags (the agent's inline ones and the worker's), each linked to the policy version that
// raised it. A Policy node is one version of a policy: its key is `policyId@version`, so the flags
// of two versions stay apart and a version's flags are one hop away.
const FLAGS = statement("policy", "flags");

// The node a flag is about, by its concern's kind and the ids the projection keys those nodes by:
// the Output (llm.end's event id), the Prompt (llm.start's event id, else its call's prompt), the
// ToolCall (its run), the documents a retrieval returned (those the evidence points at, else all).
// A concern with no node of its kind (a chain's output, an agent action) hangs on its model call,
// else on its trace, so that no flag is left unlinked.
const FLAG_TARGETS = statement("policy", "flag-targets");

// An escalation starts open; its state is the fold of its transitions (see foldEscalation), which
// ESCALATION_STATE applies. A flag projected later (or earlier) meets it by id.
const ESCALATIONS = statement("policy", "escalations");

// Every transition is a node of its own, in ledger order, kept whether it took effect or not.
const ESCALATION_TRANSITIONS = statement("policy", "escalation-transitions");
// Each notification attempt (webhook request, callback call) hangs off its escalation, failed ones included.
const ESCALATION_NOTIFICATIONS = statement("policy", "escalation-notifications");

// The fold, one transition at a time in ledger order (rows are sorted, one statement each): it
// takes effect when it starts from the current state and comes after the last one that did, so
// projecting a transition twice, or a stale one (a reviewer who lost a race), changes nothing.
const ESCALATION_STATE = statement("policy", "escalation-state");

function flagRows(b: Batch) {
  return ofType(b.records, "policy.flag").map((r) => {
    const p = r.event.payload;
    // The documents the evidence points at (payload.documents.N...), by their rank in the retrieval.
    const ranks = [...new Set(p.evidence.fields.flatMap((f) => /^payload\.documents\.(\d+)(\.|$)/.exec(f)?.[1] ?? []))].map((n) => neo4j.int(Number(n)));
    return {
      tenantId: r.event.identity.user.tenantId,
      id: r.event.eventId,
      policyKey: `${p.policyId}@${p.policyVersion}`,
      kind: p.concerns.kind,
      eventId: p.concerns.eventId ?? null,
      runId: p.concerns.runId,
      traceId: r.event.traceId,
      ranks,
      props: {
        policyId: p.policyId,
        policyVersion: p.policyVersion,
        policySetHash: p.policySetHash,
        severity: p.severity,
        action: p.action,
        outcome: p.outcome,
        decision: p.decision ?? null,
        reason: p.reason,
        kind: p.concerns.kind,
        concernsEventId: p.concerns.eventId ?? null,
        runId: p.concerns.runId,
        traceId: r.event.traceId,
        evidence: json(p.evidence),
        // The worker's time counts, as for outputs: flag rates per day bucket by it.
        at: r.recordedAt,
        occurredAt: r.event.occurredAt,
        streamId: r.streamId,
        position: neo4j.int(r.position),
      },
    };
  });
}

// The transitions in ledger order: ESCALATION_STATE folds them one at a time.
function transitionRows(batch: Batch) {
  return ofType(batch.all, "escalation.transition")
    .sort((a, b) => (a.streamId === b.streamId ? a.position - b.position : a.streamId < b.streamId ? -1 : 1))
    .map((r) => {
      const p = r.event.payload;
      return {
        tenantId: r.event.tenantId,
        id: r.event.eventId,
        escalationId: p.escalationId,
        props: {
          from: p.from,
          to: p.to,
          reviewerId: p.reviewer.id,
          reviewerName: p.reviewer.name ?? null,
          reason: p.reason,
          holdDecision: p.holdDecision ?? null,
          at: r.recordedAt,
          position: neo4j.int(r.position),
        },
      };
    });
}

export const policySteps = {
  flags: { cypher: FLAGS, rows: (b) => b.derive(flagRows) },
  flagTargets: { cypher: FLAG_TARGETS, rows: (b) => b.derive(flagRows) },
  escalations: {
    cypher: ESCALATIONS,
    rows: (b) =>
      ofType(b.all, "escalation.opened").map((r) => {
        const p = r.event.payload;
        return {
          tenantId: r.event.tenantId,
          id: p.escalationId,
          flagIds: p.flagEventIds,
          props: {
            severity: p.severity,
            policyId: p.policyId,
            policyVersion: p.policyVersion,
            policySetHash: p.policySetHash,
            reason: p.reason,
            traceId: p.concerns.traceId,
            concernKind: p.concerns.kind,
            concernsEventId: p.concerns.eventId ?? null,
            holdId: p.holdId ?? null,
            deadline: p.deadline ?? null,
            defaultDecision: p.defaultDecision ?? null,
            openedAt: r.recordedAt,
            position: neo4j.int(r.position),
          },
        };
      }),
  },
  escalationTransitions: { cypher: ESCALATION_TRANSITIONS, rows: (b) => b.derive(transitionRows) },
  escalationState: { cypher: ESCALATION_STATE, rows: (b) => b.derive(transitionRows), eachRow: true },
  escalationNotifications: {
    cypher: ESCALATION_NOTIFICATIONS,
    rows: (b) =>
      ofType(b.all, "escalation.notification").map((r) => {
        const p = r.event.payload;
        return {
          tenantId: r.event.tenantId,
          id: r.event.eventId,
          escalationId: p.escalationId,
          props: {
            deliveryId: p.deliveryId,
            channel: p.channel,
            attempt: neo4j.int(p.attempt),
            status: p.status,
            httpStatus: p.httpStatus === undefined ? null : neo4j.int(p.httpStatus),
            error: p.error ?? null,
            at: p.at,
            nextRetryAt: p.nextRetryAt ?? null,
            position: neo4j.int(r.position),
          },
        };
      }),
  },
} satisfies Record<string, Step>;
