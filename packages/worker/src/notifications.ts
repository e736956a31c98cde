import type { Logger } from "pino";
import { AuditgraphError, EventSchema, SCHEMA_VERSION, newEventId, parseWith, type EventOf } from "@auditgraph/core";
import type { Ledger } from "@auditgraph/ledger";
import { EscalationNotifier, type EscalationNotificationInput, type EscalationNotifierOptions, type NotificationAttempt } from "@auditgraph/policy";
import type { EventRecorder } from "./recorder.js";

/**
 * How the worker notifies: a signed webhook, a callback in code, or both (see
 * `EscalationNotifier`). `onAttempt` is the worker's own: every attempt becomes an
 * `escalation.notification` event in the stream (the tenant's shard) of the escalation's opening.
 */
export type WorkerNotifierOptions = Omit<EscalationNotifierOptions, "onAttempt" | "logger">;

/** What an escalation's notification says: ids, the policy and its reason, a lineage hint, a held call's hold. Nothing from the event itself. */
export function notificationOf(opened: EventOf<"escalation.opened">): EscalationNotificationInput {
  const p = opened.payload;
  return {
    escalationId: p.escalationId,
    tenantId: opened.tenantId,
    severity: p.severity,
    policyId: p.policyId,
    policyVersion: p.policyVersion,
    policySetHash: p.policySetHash,
    concerns: { ...(p.concerns.eventId ? { eventId: p.concerns.eventId } : {}), runId: p.concerns.runId, traceId: p.concerns.traceId, kind: p.concerns.kind },
    reason: p.reason,
    openedAt: opened.occurredAt,
    lineage: { traceId: p.concerns.traceId, runId: p.concerns.runId, ...(p.concerns.eventId ? { eventId: p.concerns.eventId } : {}) },
    // A call is waiting: the receiver must know which, until when, and what happens if no one answers.
    ...(p.holdId ? { holdId: p.holdId } : {}),
    ...(p.holdId && p.deadline ? { deadline: p.deadline } : {}),
    ...(p.holdId && p.defaultDecision ? { defaultDecision: p.defaultDecision } : {}),
  };
}

interface Pending {
  tenantId: string;
  traceId: string;
  /** The stream of the escalation's opening, once looked up (the first attempt). */
  streamId?: Promise<string>;
  /** Channels still delivering: the entry goes when the last one is done. */
  channels: number;
}

/**
 * The worker's notifier: escalations it opened are handed over after their append, and it never
 * holds up a job (delivery is in the background). Each attempt is appended to the ledger before
 * the next attempt is made (the notifier awaits `onAttempt`), through the worker's recorder.
 */
export class WorkerNotifications {
  readonly notifier: EscalationNotifier;
  private readonly pending = new Map<string, Pending>();
  private readonly channels: number;
  /** Attempts that could not be appended (the notifier counts them as hook errors too). */
  appendFailures = 0;

  constructor(
    options: WorkerNotifierOptions,
    /** The worker's: it appends each attempt and offers it to the projection. */
    private readonly recorder: EventRecorder,
    private readonly log: Logger,
    /** Where an escalation's opening is found: its attempts go to the same stream (shard). */
    private readonly ledger: Pick<Ledger, "readTrace">,
  ) {
    this.channels = (options.webhook ? 1 : 0) + (options.callback ? 1 : 0);
    this.notifier = new EscalationNotifier({ ...options, logger: log, onAttempt: (attempt) => this.record(attempt) });
  }

  notify(opened: EventOf<"escalation.opened">): boolean {
    this.pending.set(opened.payload.escalationId, { tenantId: opened.tenantId, traceId: opened.traceId, channels: this.channels });
    let accepted = false;
    try {
      accepted = this.notifier.notify(notificationOf(opened));
    } catch (error) {
      // A notification the schema refuses is our bug, not the job's: the escalation is in the ledger regardless.
      this.log.error({ escalationId: opened.payload.escalationId, error: (error as Error).message }, "escalation notification refused by its schema");
    }
    if (!accepted) this.pending.delete(opened.payload.escalationId);
    return accepted;
  }

  private async record(attempt: NotificationAttempt): Promise<void> {
    const context = this.pending.get(attempt.escalationId);
    if (!context) return;
    if (attempt.status === "ok" || attempt.nextRetryAt === undefined) {
      context.channels -= 1;
      if (context.channels <= 0) this.pending.delete(attempt.escalationId);
    }
    const event = parseWith(
      EventSchema,
      {
        eventId: newEventId(),
        schemaVersion: SCHEMA_VERSION,
        type: "escalation.notification",
        occurredAt: attempt.at,
        traceId: context.traceId,
        runId: attempt.escalationId,
        parentRunId: null,
        sessionId: null,
        tenantId: context.tenantId,
        payload: attempt,
      },
      "escalation.notification event",
    ) as EventOf<"escalation.notification">;
    try {
      const lookup = (context.streamId ??= this.streamOfOpening(attempt.escalationId, context));
      // A lookup that failed (the ledger unreadable for a moment) is tried again at the next attempt.
      const streamId = await lookup.catch((error: unknown) => {
        if (context.streamId === lookup) delete context.streamId;
        throw error;
      });
      await this.recorder.record(streamId, [event]);
    } catch (error) {
      this.appendFailures += 1;
      // Ids and the error's name: the attempt itself was logged by the notifier.
      this.log.warn(
        { escalationId: attempt.escalationId, attempt: attempt.attempt, error: (error as Error).name },
        "could not record a notification attempt in the ledger",
      );
      throw error;
    }
  }

  /**
   * The stream holding the escalation's opening (appended before it was handed over here): a
   * trace's records never span streams, whichever shard count is in force now.
   */
  private async streamOfOpening(escalationId: string, context: Pending): Promise<string> {
    const opening = (await this.ledger.readTrace(context.traceId, { tenantId: context.tenantId })).find(
      (r) => r.event.eventId === escalationId && r.event.type === "escalation.opened",
    );
    if (!opening)
      throw new AuditgraphError(
        "AUDITGRAPH_E_ESCALATION_NOT_FOUND",
        `escalation ${escalationId}: its opening is in none of tenant ${context.tenantId}'s streams; its notification attempt is not recorded`,
      );
    return opening.streamId;
  }

  /** Waits up to `graceMs` for deliveries under way (their attempts recorded), then cuts the rest short. */
  close(graceMs: number): Promise<void> {
    return this.notifier.close(graceMs);
  }
}
