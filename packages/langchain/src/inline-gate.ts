import { ValidationError, type AuditEvent, type EventType } from "@auditgraph/core";
import { InlineEnforcer, PolicyRefusal, flagPayload, type InlineOutcome, type InlineVerdict } from "@auditgraph/policy";
import type { z } from "zod";
import { errorInfo, type EventExtra, type RunContext } from "./events.js";
import type { InlinePoliciesSchema } from "./handler-options.js";
import type { Transport } from "./transport-contract.js";

/** What the gate needs of the handler: its way of recording events and of containing its own failures. */
export interface GateHost {
  emit(type: EventType, runId: string, payload: unknown, extra?: EventExtra): AuditEvent;
  emitDurably(type: EventType, runId: string, payload: unknown, extra?: EventExtra): Promise<AuditEvent>;
  guard<T>(callback: string, body: () => T): T | undefined;
  context(runId: string): RunContext | undefined;
}

/**
 * Inline policy enforcement in the agent's process: a `block` rule refuses a tool or model call
 * before it runs, a `hold` rule makes it wait for a reviewer; every finding is a `policy.flag` event.
 */
export class InlineGate {
  private readonly enforcer: InlineEnforcer;
  private readonly expedite: ((event: AuditEvent) => void) | undefined;

  /** Throws a `ValidationError` naming `inlinePolicies.decider` when the set cannot be enforced. */
  constructor(
    options: z.output<typeof InlinePoliciesSchema>,
    transport: Transport,
    private readonly host: GateHost,
  ) {
    const { set, decider, state, escalateAt } = options;
    this.expedite = transport.expedite?.bind(transport);
    const escalation = escalateAt && this.expedite ? { minSeverity: escalateAt, onUrgent: this.expedite } : undefined;
    try {
      this.enforcer = new InlineEnforcer({ set, ...(decider ? { decider } : {}), ...(state ? { state } : {}), ...(escalation ? { escalation } : {}) });
    } catch (error) {
      throw new ValidationError("AuditCallbackHandler options", [{ path: "inlinePolicies.decider", message: (error as Error).message }]);
    }
  }

  /** Resolves once the screening and counting of every event observed so far is done. */
  settled(): Promise<void> {
    return this.enforcer.settled();
  }

  /**
   * Follows every recorded event: the counters of the inline rules (budgets, tool errors) and the
   * urgent rules' screening. A call's start is evaluated by `enforce` instead, which counts it as well.
   */
  observe(event: AuditEvent): void {
    if (!this.enforcer.checks(event.type)) this.enforcer.observe(event);
    // A Set lookup: events no urgent rule looks at cost nothing more.
    if (this.enforcer.watches(event.type)) this.enforcer.screen(event);
  }

  /**
   * The inline policies' verdict on a call whose start event was just recorded: its findings
   * become `policy.flag` events; a refused call gets its error event (the run ends there, as
   * LangChain reports no error for a call that never started) and the refusal is thrown.
   * Undefined when no inline rule looks at this event type, so the call is not delayed.
   */
  enforce(start: AuditEvent, failure: "tool.error" | "llm.error", tags: string[] | undefined): Promise<void> | undefined {
    const inline = this.enforcer;
    if (!inline.checks(start.type)) return undefined;
    const host = this.host;
    return (async () => {
      let verdict: InlineVerdict;
      try {
        verdict = await inline.check(start, { onHeld: (held) => this.held(start.runId, held, tags) });
      } catch (error) {
        // Fail closed: these rules guard calls that must not run unchecked.
        verdict = {
          outcomes: [],
          refusal: error instanceof PolicyRefusal ? error : new PolicyRefusal("auditgraph inline policies failed, so the call is refused", []),
        };
      }
      host.guard("policy.flag", () => {
        for (const outcome of verdict.outcomes) host.emit("policy.flag", start.runId, flagPayload(outcome), { tags });
      });
      const refusal = verdict.refusal;
      if (!refusal) return;
      const context = host.context(start.runId);
      const payload = { ...(failure === "tool.error" && context?.toolCallId ? { toolCallId: context.toolCallId } : {}), error: errorInfo(refusal) };
      if (context?.highImpact) await host.emitDurably(failure, start.runId, payload, { tags, end: true }).catch(() => undefined);
      else host.guard(failure, () => host.emit(failure, start.runId, payload, { tags, end: true }));
      throw refusal;
    })();
  }

  /**
   * A call is about to wait for a reviewer: its `held` flags go out now, ahead of the linger, so
   * that the worker opens the escalation a reviewer answers while the agent waits. The final
   * `held-*` flag follows once the hold is decided.
   */
  private held(runId: string, held: InlineOutcome[], tags: string[] | undefined): void {
    this.host.guard("policy.flag", () => {
      let last: AuditEvent | undefined;
      for (const outcome of held) last = this.host.emit("policy.flag", runId, flagPayload(outcome), { tags });
      if (last) this.expedite?.(last);
    });
  }
}
