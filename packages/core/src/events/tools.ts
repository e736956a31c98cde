import { z } from "zod";
import { jsonValue } from "./json.js";
import { FIXED, JSON_SHAPE, STRING, object, optional, required } from "./hints.js";
import { ERROR_REDACTION, MAX_ID_LENGTH, TimingSchema, envelope, errorPayload, type EventTypeIn, type PayloadRedaction } from "./common.js";

// Tool runs, as the graph's `tools` projection reads them (the calls the model asked for are on `llm.end`).

const toolCallId = z.string().max(MAX_ID_LENGTH).optional();

export const ToolStartEventSchema = z.object({
  ...envelope,
  type: z.literal("tool.start"),
  payload: z.object({ toolCallId, input: jsonValue() }),
});

export const ToolEndEventSchema = z.object({
  ...envelope,
  type: z.literal("tool.end"),
  payload: z.object({ toolCallId, output: jsonValue(), timing: TimingSchema.optional() }),
});

export const ToolErrorEventSchema = z.object({
  ...envelope,
  type: z.literal("tool.error"),
  payload: errorPayload.extend({ toolCallId }),
});

export const TOOL_EVENTS = [ToolStartEventSchema, ToolEndEventSchema, ToolErrorEventSchema] as const;
export type ToolEventType = EventTypeIn<typeof TOOL_EVENTS>;

export const TOOL_REDACTION = {
  "tool.start": object({ toolCallId: optional(STRING), input: required(JSON_SHAPE, null) }),
  "tool.end": object({ toolCallId: optional(STRING), output: required(JSON_SHAPE, null), timing: FIXED }),
  "tool.error": object({ error: ERROR_REDACTION, toolCallId: optional(STRING) }),
} satisfies PayloadRedaction<ToolEventType>;
