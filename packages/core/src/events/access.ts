import { z } from "zod";
import { FIXED, KEEP, object, optional, required } from "./hints.js";
import { id, name, systemEnvelope, type EventTypeIn, type PayloadRedaction } from "./common.js";

// Access: the audit trail's own readers (the graph's `access` projection).

/** What a reader of the audit trail did (see the `access` event): views of content, downloads, decisions. */
export const ACCESS_ACTIONS = ["trace.view", "escalation.view", "escalation.decide", "proof.download", "review.view"] as const;
export const AccessActionSchema = z.enum(ACCESS_ACTIONS);
/** What was read: ids only, never the content itself. `userId` is the audited user whose data it was. */
export const AccessSubjectSchema = z.strictObject({
  traceId: id.optional(),
  eventId: z.uuidv7().optional(),
  escalationId: z.uuidv7().optional(),
  userId: id.optional(),
  reviewId: id.optional(),
});
export type AccessAction = z.infer<typeof AccessActionSchema>;
export type AccessSubject = z.infer<typeof AccessSubjectSchema>;

/**
 * Someone read or decided something through the console (or an API token): who, what, when
 * (`occurredAt`, the server's clock) and from where. Appended before the content is sent, so
 * the audit trail audits its readers. Its own trace (`traceId` = `runId` = `eventId`); the
 * trace it is about is `subject.traceId`.
 */
export const AccessEventSchema = z.strictObject({
  ...systemEnvelope,
  type: z.literal("access"),
  payload: z.strictObject({
    actor: z.strictObject({ id, name: name.optional(), via: z.enum(["password", "oidc", "token"]) }),
    action: AccessActionSchema,
    subject: AccessSubjectSchema,
    from: z.strictObject({ ip: z.string().min(1).max(64), userAgent: z.string().max(512).optional() }),
  }),
});

export const ACCESS_EVENTS = [AccessEventSchema] as const;
export type AccessEventType = EventTypeIn<typeof ACCESS_EVENTS>;

export const ACCESS_REDACTION = {
  // Who read what, from where: ids, enums and the reader's own name and client, as the console
  // recorded them (no audited user's content is in it). A rule rewriting them would falsify the record.
  access: object({
    actor: required(object({ id: FIXED, name: optional(KEEP), via: FIXED }), null),
    action: FIXED,
    subject: FIXED,
    from: required(object({ ip: FIXED, userAgent: optional(KEEP) }), null),
  }),
} satisfies PayloadRedaction<AccessEventType>;
