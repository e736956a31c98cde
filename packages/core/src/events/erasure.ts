import { z } from "zod";
import { FIXED, STRING, object, optional } from "./hints.js";
import { SubjectRefSchema } from "../subjects/ref.js";
import { id, nonEmpty, systemEnvelope, type EventTypeIn, type PayloadRedaction } from "./common.js";

// Erasure: a data subject's key destroyed (the graph's `erasure` projection).

/**
 * A data subject's key was destroyed: their sealed payloads are unreadable from here on. It
 * names the subject by pseudonym only, and has no identity. Strict, unlike the others: events
 * are stored as received, and this one must not carry personal data in a field nobody checks.
 */
export const SubjectErasedEventSchema = z.strictObject({
  ...systemEnvelope,
  type: z.literal("subject.erased"),
  subject: SubjectRefSchema,
  payload: z.strictObject({
    /** The destroyed data key. */
    keyId: id,
    erasedAt: z.iso.datetime({ offset: true }),
    reason: z.string().min(1).optional(),
    /** The operator who asked for the erasure (an operator id, not the subject's). */
    requestedBy: nonEmpty.optional(),
  }),
});

export const ERASURE_EVENTS = [SubjectErasedEventSchema] as const;
export type ErasureEventType = EventTypeIn<typeof ERASURE_EVENTS>;

export const ERASURE_REDACTION = {
  "subject.erased": object({ keyId: FIXED, erasedAt: FIXED, reason: optional(STRING), requestedBy: optional(STRING) }),
} satisfies PayloadRedaction<ErasureEventType>;
