import { z } from "zod";
import { v7 as uuidv7 } from "uuid";

export const SCHEMA_VERSION = 1;

const nonEmpty = z.string().min(1);

export const UserIdentitySchema = z.object({
  id: nonEmpty,
  tenantId: nonEmpty,
});

export const AgentIdentitySchema = z.object({
  id: nonEmpty,
  name: nonEmpty,
  version: nonEmpty,
});

/** Who asked (the user) and who acted on their behalf (the agent): on every event. */
export const IdentitySchema = z.object({
  user: UserIdentitySchema,
  agent: AgentIdentitySchema,
});

/** The requested model on `llm.start`; the served model (with its version) on `llm.end`. */
export const ModelSchema = z.object({
  provider: nonEmpty,
  name: nonEmpty,
  version: nonEmpty.optional(),
  params: z.record(z.string(), z.json()).default({}),
});

export const UsageSchema = z.object({
  inputTokens: z.number().int().nonnegative(),
  outputTokens: z.number().int().nonnegative(),
  totalTokens: z.number().int().nonnegative(),
});

export const ToolCallRequestSchema = z.object({
  id: z.string().optional(),
  name: nonEmpty,
  args: z.json(),
});

export const MessageSchema = z.object({
  role: nonEmpty,
  content: z.json(),
  name: z.string().optional(),
  toolCallId: z.string().optional(),
  toolCalls: z.array(ToolCallRequestSchema).optional(),
});

export const ErrorInfoSchema = z.object({
  name: z.string(),
  message: z.string(),
});

const envelope = {
  eventId: z.uuidv7(),
  schemaVersion: z.literal(SCHEMA_VERSION),
  /** Client clock; the worker's `recordedAt` is the timestamp that counts. */
  occurredAt: z.iso.datetime({ offset: true }),
  traceId: nonEmpty,
  runId: nonEmpty,
  parentRunId: nonEmpty.nullable(),
  sessionId: nonEmpty.nullable(),
  identity: IdentitySchema,
  name: z.string().optional(),
  tags: z.array(z.string()).optional(),
  /** What redaction replaced in this event, by detector kind (counts only, never values). */
  redactions: z.record(z.string(), z.number().int().positive()).optional(),
};

const errorPayload = z.object({ error: ErrorInfoSchema });

export const EventSchema = z.discriminatedUnion("type", [
  z.object({
    ...envelope,
    type: z.literal("chain.start"),
    payload: z.object({ inputs: z.json() }),
  }),
  z.object({
    ...envelope,
    type: z.literal("chain.end"),
    payload: z.object({ outputs: z.json() }),
  }),
  z.object({ ...envelope, type: z.literal("chain.error"), payload: errorPayload }),
  z.object({
    ...envelope,
    type: z.literal("llm.start"),
    model: ModelSchema,
    payload: z.object({
      messages: z.array(MessageSchema),
      /** Hash of the canonical message list: equal prompts share it. */
      promptHash: z.string().regex(/^[0-9a-f]{64}$/),
    }),
  }),
  z.object({
    ...envelope,
    type: z.literal("llm.end"),
    model: ModelSchema,
    usage: UsageSchema.optional(),
    payload: z.object({
      output: z.object({
        text: z.string(),
        toolCalls: z.array(ToolCallRequestSchema),
      }),
    }),
  }),
  z.object({ ...envelope, type: z.literal("llm.error"), payload: errorPayload }),
  z.object({
    ...envelope,
    type: z.literal("tool.start"),
    payload: z.object({ toolCallId: z.string().optional(), input: z.json() }),
  }),
  z.object({
    ...envelope,
    type: z.literal("tool.end"),
    payload: z.object({ toolCallId: z.string().optional(), output: z.json() }),
  }),
  z.object({
    ...envelope,
    type: z.literal("tool.error"),
    payload: errorPayload.extend({ toolCallId: z.string().optional() }),
  }),
]);

export type AuditEvent = z.infer<typeof EventSchema>;
export type EventType = AuditEvent["type"];
export type EventOf<T extends EventType> = Extract<AuditEvent, { type: T }>;
export type Identity = z.infer<typeof IdentitySchema>;
export type Model = z.infer<typeof ModelSchema>;
export type Usage = z.infer<typeof UsageSchema>;
export type Message = z.infer<typeof MessageSchema>;
export type ToolCallRequest = z.infer<typeof ToolCallRequestSchema>;
export type ErrorInfo = z.infer<typeof ErrorInfoSchema>;

export const newEventId = (): string => uuidv7();
