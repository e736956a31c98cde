import { AuditgraphError } from "./errors.js";
import type { EscalationState, EventOf } from "./schema.js";

/** Where each state may go: a reviewer acknowledges, resolves or dismisses; a closed escalation can only be reopened. */
export const ESCALATION_TRANSITIONS: Readonly<Record<EscalationState, readonly EscalationState[]>> = {
  open: ["acknowledged", "resolved", "dismissed"],
  acknowledged: ["resolved", "dismissed"],
  resolved: ["open"],
  dismissed: ["open"],
};

/** A transition the lifecycle does not allow (`AUDITGRAPH_E_ESCALATION_TRANSITION`). The message names the states, never the reason text. */
export class EscalationTransitionError extends AuditgraphError {
  override readonly name = "EscalationTransitionError";
  constructor(
    readonly escalationId: string,
    readonly from: EscalationState,
    readonly to: EscalationState,
  ) {
    const allowed = ESCALATION_TRANSITIONS[from];
    super(
      "AUDITGRAPH_E_ESCALATION_TRANSITION",
      `cannot move escalation ${escalationId} to ${to}: it is ${from}, and a ${from} escalation can only go to ${allowed.join(" or ")}` +
        (to === from ? ` (it is ${from} already)` : ""),
    );
  }
}

export const canTransition = (from: EscalationState, to: EscalationState): boolean => ESCALATION_TRANSITIONS[from].includes(to);

/** One escalation as its events say it is now. */
export interface EscalationView {
  escalationId: string;
  tenantId: string;
  state: EscalationState;
  opened: EventOf<"escalation.opened">;
  /** Every transition on record, in ledger order, with whether it took effect (a stale `from` is a race lost). */
  transitions: Array<{ event: EventOf<"escalation.transition">; applied: boolean }>;
}

/**
 * The state of an escalation: the fold of its transitions, in ledger order, over its opening.
 * A transition whose `from` is not the state at its turn (two reviewers acting at once) or that
 * the lifecycle does not allow stays on record but changes nothing: the ledger is never edited,
 * and every reader folds the same events to the same state.
 */
export function foldEscalation(opened: EventOf<"escalation.opened">, transitions: readonly EventOf<"escalation.transition">[]): EscalationView {
  let state: EscalationState = "open";
  const out: EscalationView["transitions"] = [];
  for (const event of transitions) {
    if (event.payload.escalationId !== opened.payload.escalationId) continue;
    const applied = event.payload.from === state && canTransition(state, event.payload.to);
    if (applied) state = event.payload.to;
    out.push({ event, applied });
  }
  return { escalationId: opened.payload.escalationId, tenantId: opened.tenantId, state, opened, transitions: out };
}
