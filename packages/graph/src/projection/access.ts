import neo4j from "neo4j-driver";
import type { EventOf, PlainRecord } from "@auditgraph/core";
import type { Step } from "./common.js";
import { statement } from "./statement.js";

// Access events (the console's readers: who viewed or decided what, when, from where), each an
// (:Access) node of its tenant keyed by its event id, so projecting a record again changes nothing.
// The trace it read is merged by its tenant key, as REPLAY_OF merges an original: the trace may
// sit in another shard and be projected later, and meets this node by id when it is. The
// escalation is only matched: an escalation is opened in its tenant's stream before anyone can
// read it, so it is there when its reader is projected, and merging it here would make one
// without its opening state (ESCALATIONS sets that on create only).
const ACCESSES = statement("access", "accesses");

type AccessRecord = PlainRecord & { event: EventOf<"access"> };

const isAccess = (r: PlainRecord): r is AccessRecord => r.event.type === "access";

/** The rows ACCESSES projects, one per access record of `records` (the others are not its business). */
export function accessRows(records: readonly PlainRecord[]) {
  return records.filter(isAccess).map((r) => {
    const { actor, action, subject, from } = r.event.payload;
    return {
      tenantId: r.event.tenantId,
      eventId: r.event.eventId,
      props: {
        eventId: r.event.eventId,
        actorId: actor.id,
        actorName: actor.name ?? null,
        via: actor.via,
        action,
        // What was read: ids only. `traceId` is the trace read (the event's own trace is its id).
        traceId: subject.traceId ?? null,
        subjectEventId: subject.eventId ?? null,
        escalationId: subject.escalationId ?? null,
        userId: subject.userId ?? null,
        reviewId: subject.reviewId ?? null,
        ip: from.ip,
        userAgent: from.userAgent ?? null,
        // The worker's (ledger's) time counts, as for every projected event; the console's beside it.
        at: r.recordedAt,
        occurredAt: r.event.occurredAt,
        streamId: r.streamId,
        position: neo4j.int(r.position),
      },
    };
  });
}

export const accessSteps = {
  accesses: { cypher: ACCESSES, rows: (b) => accessRows(b.all) },
} satisfies Record<string, Step>;
