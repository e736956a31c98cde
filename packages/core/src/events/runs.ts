import { z } from "zod";
import { jsonValue } from "./json.js";
import { FIXED, JSON_SHAPE, KEEP, STRING, array, object, optional, required } from "./hints.js";
import {
  CostSchema,
  ERROR_REDACTION,
  MESSAGE_REDACTION,
  MessageSchema,
  ModelSchema,
  REASONING_STEP_REDACTION,
  ReasoningStepSchema,
  TOOL_CALL_REDACTION,
  TOOL_DEFINITION_REDACTION,
  TimingSchema,
  ToolCallRequestSchema,
  ToolDefinitionSchema,
  UsageSchema,
  envelope,
  errorPayload,
  id,
  type EventTypeIn,
  type FamilyUpcasters,
  type PayloadRedaction,
  type Upcaster,
} from "./common.js";

// Runs: chains (a LangGraph node's among them) and LLM calls, as the graph's `runs` projection reads them.

export const ChainStartEventSchema = z.object({
  ...envelope,
  type: z.literal("chain.start"),
  payload: z.object({
    inputs: jsonValue(),
    /** LangGraph's node and step, when the chain is a graph node's run. */
    graph: z.object({ node: z.string(), step: z.number().int().optional() }).optional(),
  }),
});

export const ChainEndEventSchema = z.object({
  ...envelope,
  type: z.literal("chain.end"),
  payload: z.object({ outputs: jsonValue() }),
});

export const ChainErrorEventSchema = z.object({ ...envelope, type: z.literal("chain.error"), payload: errorPayload });

export const LlmStartEventSchema = z.object({
  ...envelope,
  type: z.literal("llm.start"),
  model: ModelSchema,
  payload: z.object({
    messages: z.array(MessageSchema),
    tools: z.array(ToolDefinitionSchema).optional(),
    toolChoice: jsonValue().optional(),
    /**
     * The prompt template's hash (or version id), when the producer knows it: prompts of one
     * template share it whatever their variables, which the messages' own hash cannot show.
     */
    templateHash: id.optional(),
  }),
});

export const LlmTokenEventSchema = z.object({
  ...envelope,
  type: z.literal("llm.token"),
  payload: z.object({ index: z.number().int().nonnegative(), token: z.string() }),
});

export const LlmEndEventSchema = z.object({
  ...envelope,
  type: z.literal("llm.end"),
  model: ModelSchema,
  usage: UsageSchema.optional(),
  /** Beside `usage`: both are billing facts about the call, and read together. */
  cost: CostSchema.optional(),
  payload: z.object({
    output: z.object({
      text: z.string(),
      toolCalls: z.array(ToolCallRequestSchema),
      finishReason: z.string().optional(),
    }),
    reasoning: z.array(ReasoningStepSchema).optional(),
    timing: TimingSchema.optional(),
    streamed: z.object({ tokens: z.number().int().nonnegative() }).optional(),
  }),
});

export const LlmErrorEventSchema = z.object({ ...envelope, type: z.literal("llm.error"), payload: errorPayload });

export const RUN_EVENTS = [
  ChainStartEventSchema,
  ChainEndEventSchema,
  ChainErrorEventSchema,
  LlmStartEventSchema,
  LlmTokenEventSchema,
  LlmEndEventSchema,
  LlmErrorEventSchema,
] as const;
export type RunEventType = EventTypeIn<typeof RUN_EVENTS>;

export const RUN_REDACTION = {
  "chain.start": object({ inputs: required(JSON_SHAPE, null), graph: optional(object({ node: required(STRING, ""), step: FIXED })) }),
  "chain.end": object({ outputs: required(JSON_SHAPE, null) }),
  "chain.error": object({ error: ERROR_REDACTION }),
  "llm.start": object({
    messages: required(array(MESSAGE_REDACTION), null),
    tools: optional(array(TOOL_DEFINITION_REDACTION)),
    toolChoice: optional(JSON_SHAPE),
    // A hash or version id: nothing personal, and a detector must not take its hex for a secret.
    templateHash: optional(KEEP),
  }),
  "llm.token": object({ index: FIXED, token: required(STRING, "") }),
  "llm.end": object({
    output: required(object({ text: required(STRING, ""), toolCalls: required(array(TOOL_CALL_REDACTION), null), finishReason: optional(STRING) }), null),
    reasoning: optional(array(REASONING_STEP_REDACTION)),
    timing: FIXED,
    streamed: FIXED,
  }),
  "llm.error": object({ error: ERROR_REDACTION }),
} satisfies PayloadRedaction<RunEventType>;

/**
 * Version 1, kept only as far as the step to 2 reads it: any object with schemaVersion 1, whose
 * `llm.end` carried its cost in the payload. The rest of version 1 is unchanged in version 2 and
 * is checked by the current schema. The cost itself is shaped alike in both; should CostSchema
 * change, version 1's shape is to be frozen here, not followed.
 */
const V1LlmEndSchema = z.looseObject({ payload: z.looseObject({ cost: CostSchema.optional() }) });

const llmEndFromV1: Upcaster = (event) => {
  const v1 = V1LlmEndSchema.safeParse(event);
  if (!v1.success) return { success: false, error: v1.error };
  // The received values are moved, not zod's copies of them: members the schema does not know stay.
  const { cost, ...payload } = event.payload as Record<string, unknown>;
  return { success: true, data: { ...event, payload, ...(cost === undefined ? {} : { cost }) } };
};

export const RUN_UPCASTERS = { 1: { "llm.end": llmEndFromV1 } } satisfies FamilyUpcasters<RunEventType>;
