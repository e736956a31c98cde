import { z } from "zod";
import type { Cluster, Redis } from "ioredis";
import type { AuditEvent, PlainRecord } from "@auditgraph/core";

/**
 * The Redis pub/sub channel on which an escalation's opening or transition is announced once it is
 * in the graph, so that the console's inbox refreshes at once. A notice carries ids only (the
 * tenant and the escalation), never content: whoever listens reads the rest through its own
 * tenant-scoped queries. Pub/sub is best-effort; listeners also poll now and then to heal a miss.
 */
export const ESCALATION_CHANGES_CHANNEL = "auditgraph:console:escalations";

export const EscalationChangeSchema = z.strictObject({ tenantId: z.string().min(1), escalationId: z.string().min(1) });
export type EscalationChange = z.infer<typeof EscalationChangeSchema>;

/** The escalations an event opens or moves: what the projection of `events` changed in the inbox. */
export function escalationChangesOf(events: Iterable<AuditEvent>): EscalationChange[] {
  const out = new Map<string, EscalationChange>();
  for (const e of events)
    if (e.type === "escalation.opened" || e.type === "escalation.transition")
      out.set(`${e.tenantId}\u0000${e.payload.escalationId}`, { tenantId: e.tenantId, escalationId: e.payload.escalationId });
  return [...out.values()];
}

/**
 * Announces changed escalations on `ESCALATION_CHANGES_CHANNEL`. Never throws: the change is in the
 * ledger and the graph already, and a missed notice is healed by the listeners' poll. Resolves to
 * how many notices went out.
 */
export async function publishEscalationChanges(redis: Pick<Redis | Cluster, "publish">, changes: EscalationChange[]): Promise<number> {
  let sent = 0;
  for (const change of changes) {
    try {
      await redis.publish(ESCALATION_CHANGES_CHANNEL, JSON.stringify(EscalationChangeSchema.parse(change)));
      sent += 1;
    } catch {
      // Redis away: the listeners' poll picks the change up.
    }
  }
  return sent;
}

/**
 * The worker's announcement of the escalations that records now in the graph opened or moved, on
 * `client` (BullMQ's own: no connection of its own). Never in the projection's way: it neither
 * waits nor throws, and a lost notice is healed by the listeners' poll.
 */
export function announceEscalations(client: () => Promise<unknown>, records: PlainRecord[]): void {
  const changes = escalationChangesOf(records.map((r) => r.event));
  if (changes.length === 0) return;
  try {
    // BullMQ types its client narrowly; it is an ioredis client (Redis or Cluster), which publishes.
    client().then(
      (redis) => publishEscalationChanges(redis as Pick<Redis, "publish">, changes),
      () => undefined,
    );
  } catch {
    // No client (the worker is closing).
  }
}
