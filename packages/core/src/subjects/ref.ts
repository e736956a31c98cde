import { z } from "zod";
import { canonicalJson, sha256Hex } from "../hashing.js";
import type { AuditEvent, EventOf } from "../schema.js";

/** A data subject's pseudonym: 64 lower-case hex digits. */
export const SubjectRefSchema = z.string().regex(/^[0-9a-f]{64}$/, "must be a subject ref (64 lower-case hex digits)");

/**
 * The pseudonym of one user of one tenant, as sealed records, the erasure event and the graph
 * name them: SHA-256 over the canonical JSON of [tenantId, userId]. It carries no personal data
 * of its own, but whoever can guess a user id can recompute it (it is a pseudonym, not an
 * anonymous id): it links records to an erasure, it does not hide who was erased from someone
 * who already knows the id.
 */
export function subjectRef(tenantId: string, userId: string): string {
  if (!tenantId) throw new TypeError("subjectRef: tenantId must be a non-empty string");
  if (!userId) throw new TypeError("subjectRef: userId must be a non-empty string");
  return sha256Hex(canonicalJson([tenantId, userId]));
}

/**
 * Events no user asked for, recorded by an operator or a pipeline: they have no identity, name
 * their tenant in a field of their own, and are never sealed (they have no data subject).
 */
export type SystemEvent = Exclude<AuditEvent, { identity: unknown }>;

/** An event that names its user: every type but the system events (an erasure names a subject ref only). */
export type UserEvent = Extract<AuditEvent, { identity: unknown }>;

// Which types are system events follows from their schemas (no identity); the table makes a new
// one fail to compile until it is listed here, where the runtime check reads it.
const SYSTEM_TYPES = {
  "subject.erased": true,
  deployment: true,
  "escalation.opened": true,
  "escalation.transition": true,
  "escalation.notification": true,
  access: true,
  "shards.changed": true,
} as const satisfies Record<SystemEvent["type"], true>;
export const SYSTEM_EVENT_TYPES = Object.keys(SYSTEM_TYPES) as readonly SystemEvent["type"][];

export const isErasure = (event: AuditEvent): event is EventOf<"subject.erased"> => event.type === "subject.erased";

export const isSystemEvent = (event: AuditEvent): event is SystemEvent => (SYSTEM_EVENT_TYPES as readonly string[]).includes(event.type);

/** The tenant an event belongs to (and so its ledger stream): from its identity, or a system event's own field. */
export function tenantIdOf(event: AuditEvent): string {
  return isSystemEvent(event) ? event.tenantId : event.identity.user.tenantId;
}
