import { z } from "zod";
import { jsonValue } from "./json.js";
import { FIXED, JSON_SHAPE, KEEP, STRING, object, optional, required } from "./hints.js";
import { MAX_ID_LENGTH, MAX_NAME_LENGTH, envelope, type EventTypeIn, type PayloadRedaction } from "./common.js";

// The rest of a trace: an agent's actions and finish, free text, custom data and corrections.
// The graph keeps them on the trace (its `traces` projection reads `custom`), not as runs of their own.

export const AgentActionEventSchema = z.object({
  ...envelope,
  type: z.literal("agent.action"),
  payload: z.object({
    tool: z.string().max(MAX_NAME_LENGTH),
    toolInput: jsonValue(),
    /** The action's log: the reasoning the agent wrote before acting. */
    log: z.string(),
    /** The LLM call whose output the action was parsed from (the trace's last one before it). */
    llmRunId: z.string().max(MAX_ID_LENGTH).optional(),
  }),
});

export const AgentFinishEventSchema = z.object({
  ...envelope,
  type: z.literal("agent.finish"),
  payload: z.object({ returnValues: jsonValue(), log: z.string() }),
});

export const TextEventSchema = z.object({ ...envelope, type: z.literal("text"), payload: z.object({ text: z.string() }) });

export const CustomEventSchema = z.object({
  ...envelope,
  type: z.literal("custom"),
  payload: z.object({ name: z.string(), data: jsonValue() }),
});

export const CorrectionEventSchema = z.object({
  ...envelope,
  type: z.literal("correction"),
  /** Nothing in the ledger is edited: a correction is a new event pointing at the one it corrects. */
  payload: z.object({
    correctsEventId: z.uuidv7(),
    reason: z.string().min(1),
    /** The corrected values (a partial payload, or whatever the correction needs to say). */
    correction: jsonValue(),
  }),
});

export const TRACE_EVENTS = [AgentActionEventSchema, AgentFinishEventSchema, TextEventSchema, CustomEventSchema, CorrectionEventSchema] as const;
export type TraceEventType = EventTypeIn<typeof TRACE_EVENTS>;

export const TRACE_REDACTION = {
  "agent.action": object({ tool: required(STRING, ""), toolInput: required(JSON_SHAPE, null), log: required(STRING, ""), llmRunId: optional(KEEP) }),
  "agent.finish": object({ returnValues: required(JSON_SHAPE, null), log: required(STRING, "") }),
  text: object({ text: required(STRING, "") }),
  custom: object({ name: required(STRING, ""), data: required(JSON_SHAPE, null) }),
  correction: object({ correctsEventId: FIXED, reason: required(STRING, ""), correction: required(JSON_SHAPE, null) }),
} satisfies PayloadRedaction<TraceEventType>;
