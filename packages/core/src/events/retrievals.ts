import { z } from "zod";
import { FIXED, STRING, array, object, required } from "./hints.js";
import {
  DOCUMENT_REDACTION,
  DocumentSchema,
  ERROR_REDACTION,
  TimingSchema,
  envelope,
  errorPayload,
  type EventTypeIn,
  type PayloadRedaction,
} from "./common.js";

// Retrievals: a retriever's query and the documents it returned (the graph's `retrievals` projection).

export const RetrieverStartEventSchema = z.object({ ...envelope, type: z.literal("retriever.start"), payload: z.object({ query: z.string() }) });

export const RetrieverEndEventSchema = z.object({
  ...envelope,
  type: z.literal("retriever.end"),
  payload: z.object({ documents: z.array(DocumentSchema), timing: TimingSchema.optional() }),
});

export const RetrieverErrorEventSchema = z.object({ ...envelope, type: z.literal("retriever.error"), payload: errorPayload });

export const RETRIEVAL_EVENTS = [RetrieverStartEventSchema, RetrieverEndEventSchema, RetrieverErrorEventSchema] as const;
export type RetrievalEventType = EventTypeIn<typeof RETRIEVAL_EVENTS>;

export const RETRIEVAL_REDACTION = {
  "retriever.start": object({ query: required(STRING, "") }),
  "retriever.end": object({ documents: required(array(DOCUMENT_REDACTION), null), timing: FIXED }),
  "retriever.error": object({ error: ERROR_REDACTION }),
} satisfies PayloadRedaction<RetrievalEventType>;
