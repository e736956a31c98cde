import { z } from "zod";
import { isSealed, isStreamOfTenant, shardOfStream, subjectRef, type LedgerRecord } from "@auditgraph/core";
import { CheckpointSchema, type Checkpoint } from "./checkpoint.js";

const hex64 = z.string().regex(/^[0-9a-f]{64}$/);
const iso = z.iso.datetime({ offset: true });
const days = z.number().positive();
const DAY_MS = 86_400_000;

/**
 * How long records are kept, in days: by event type first, then by tenant, then `days`; a record
 * none of them names is kept forever. Expiry is by whole segment, so a record can outlive its
 * retention until every record of its segment has.
 */
export const RetentionPolicySchema = z.object({
  days: days.optional(),
  tenants: z.record(z.string().min(1), days).default({}),
  eventTypes: z.record(z.string().min(1), days).default({}),
});
export type RetentionPolicy = z.input<typeof RetentionPolicySchema>;

/** What a legal hold keeps from expiry: a tenant's whole stream, or within it one user or one trace. */
export const HoldRequestSchema = z.object({
  tenantId: z.string().min(1),
  userId: z.string().min(1).optional(),
  traceId: z.string().min(1).optional(),
  reason: z.string().min(1),
  placedBy: z.string().min(1).optional(),
});
export type HoldRequest = z.input<typeof HoldRequestSchema>;

/** A hold as stored: the user only by subject ref, so the holds file holds no personal data. */
export const LegalHoldSchema = z.object({
  id: z.string().min(1),
  /** The tenant's base stream: the hold covers every stream (shard) of the tenant. */
  streamId: z.string().min(1),
  subject: hex64.optional(),
  traceId: z.string().min(1).optional(),
  reason: z.string().min(1),
  placedAt: iso,
  placedBy: z.string().optional(),
  releasedAt: iso.optional(),
  releasedBy: z.string().optional(),
});
export type LegalHold = z.infer<typeof LegalHoldSchema>;

/**
 * A run of records removed by expiry, in place of its segment: what the stream needs to go on
 * being verified and proven without them — the chain's last hash, the Merkle frontier at the
 * range's end, and the signed checkpoint of exactly that size, whose root the frontier must give.
 */
export const ExpiredRangeSchema = z.object({
  streamId: z.string().min(1),
  segment: z.number().int().nonnegative(),
  /** Positions [from, to). */
  from: z.number().int().nonnegative(),
  to: z.number().int().positive(),
  lastHash: hex64,
  frontier: z.array(hex64),
  checkpoint: CheckpointSchema,
  /** The newest record's recordedAt: an auditor can hold it against the policy. */
  newestRecordedAt: iso,
  expiredAt: iso,
});
export type ExpiredRange = z.infer<typeof ExpiredRangeSchema>;

/** What `expire` did to one stream, and why it stopped where it did. */
export interface ExpiryReport {
  streamId: string;
  expired: ExpiredRange[];
  keptBecause: string;
}

/** What `expire` is told: the policy, the checkpoints kept outside the ledger, and the time. */
export interface ExpireOptions {
  policy: RetentionPolicy;
  exported: Checkpoint[];
  now?: Date;
  dryRun?: boolean;
}

/** Retention and legal holds: a ledger capability (the segment files have it). */
export interface Retention {
  /** Places a legal hold: no record it covers expires until it is released. */
  placeHold(request: HoldRequest): Promise<LegalHold>;
  /** Releases a hold (recorded beside it: nothing is edited). */
  releaseHold(id: string, releasedBy?: string): Promise<LegalHold>;
  /** Every hold ever placed, released ones with their release. */
  holds(): Promise<LegalHold[]>;
  /** Removes the records past retention that no hold keeps and an exported checkpoint covers. */
  expire(options: ExpireOptions): Promise<ExpiryReport[]>;
  /** The runs of records of a stream removed by retention, oldest first. */
  expiredRanges(streamId: string): Promise<ExpiredRange[]>;
}

/** The data subject a stored record is about (sealed records name it; plain ones by their user). */
export function subjectOf(record: LedgerRecord): string | undefined {
  const event = record.event as unknown;
  if (isSealed(event)) return event.subject;
  const e = event as { subject?: unknown; identity?: { user?: { tenantId?: string; id?: string } } };
  if (typeof e.subject === "string") return e.subject;
  const user = e.identity?.user;
  return user?.tenantId && user.id ? subjectRef(user.tenantId, user.id) : undefined;
}

/** When a record may go (ms since the epoch), or Infinity. */
export function expiresAt(record: LedgerRecord, policy: z.output<typeof RetentionPolicySchema>): number {
  // The tenant's retention holds in every one of its streams (shards).
  const tenant = Object.entries(policy.tenants).find(([tenantId]) => isStreamOfTenant(record.streamId, tenantId))?.[1];
  const keep = policy.eventTypes[record.event.type] ?? tenant ?? policy.days;
  return keep === undefined ? Infinity : Date.parse(record.recordedAt) + keep * DAY_MS;
}

/** The active hold that keeps `record`, if any. */
export function holding(record: LedgerRecord, holds: readonly LegalHold[]): LegalHold | undefined {
  return holds.find(
    (h) =>
      !h.releasedAt &&
      // A hold names its tenant's base stream and keeps the records of all its shards.
      (h.streamId === record.streamId || h.streamId === shardOfStream(record.streamId).base) &&
      (h.traceId === undefined || h.traceId === record.event.traceId) &&
      (h.subject === undefined || h.subject === subjectOf(record)),
  );
}
