import { z } from "zod";
import { jsonValue } from "./json.js";
import { FIXED, JSON_SHAPE, PLACEHOLDER, STRING, array, object, optional, required, type Field, type Shape } from "./hints.js";

// What every event family shares: the envelope, the identity, the pieces several payloads hold
// (model, message, tool call, document, ...) with their redaction hints, and the upcasters' types.

/**
 * The version producers write and this schema validates. Older events (a rolled-back agent's,
 * or the ledger's) are brought up to it by the upcasters in `upcast.ts`, never rejected for
 * their age. 2: `llm.end`'s cost moved from `payload.cost` to the envelope, beside `usage`.
 */
export const SCHEMA_VERSION = 2;

export const nonEmpty = z.string().min(1);

/**
 * The longest id and the longest name an event may carry where the graph keys or indexes it
 * (tenant, user, agent, trace, run, session, tool call, model, tool, policy, document, ...).
 * Neo4j refuses an index key over about 8 KB ("Property value is too large to index"), and a
 * projection that fails on one event would retry it forever and hold its whole stream: such an
 * event is refused here, naming the field, and dead-lettered instead of reaching the ledger.
 * 256 characters (up to 1 KB in UTF-8) keeps a composite key of four of them under the limit.
 */
export const MAX_ID_LENGTH = 256;
export const MAX_NAME_LENGTH = 256;
/** Redaction digests an event keeps per detector kind: past it values are still redacted and counted, not told apart. */
export const MAX_DIGESTS_PER_KIND = 256;
export const id = nonEmpty.max(MAX_ID_LENGTH);
export const name = nonEmpty.max(MAX_NAME_LENGTH);

export const UserIdentitySchema = z.object({
  id,
  tenantId: id,
  roles: z.array(nonEmpty).optional(),
});

export const AgentIdentitySchema = z.object({
  id,
  name,
  version: name,
});

/** Who asked (the user) and who acted on their behalf (the agent): on every event. */
export const IdentitySchema = z.object({
  user: UserIdentitySchema,
  agent: AgentIdentitySchema,
});

/** The requested model on `llm.start`; the served model (with its version) on `llm.end`. */
export const ModelSchema = z.object({
  provider: name,
  name,
  version: name.optional(),
  /** The provider's build of the served model (OpenAI's `system_fingerprint` and the like). */
  fingerprint: name.optional(),
  /** Invocation parameters: sampling (temperature, top_p, max tokens, seed, stop) and the rest. */
  params: z.record(z.string(), jsonValue()).default({}),
});

const tokens = z.number().int().nonnegative();

export const UsageSchema = z.object({
  inputTokens: tokens,
  outputTokens: tokens,
  totalTokens: tokens,
  cacheReadTokens: tokens.optional(),
  cacheCreationTokens: tokens.optional(),
  reasoningTokens: tokens.optional(),
});

export const CostSchema = z.object({
  currency: z.string().length(3),
  input: z.number().nonnegative(),
  output: z.number().nonnegative(),
  total: z.number().nonnegative(),
});

/** A tool as the model was offered it. */
export const ToolDefinitionSchema = z.object({
  name,
  description: z.string().optional(),
  parameters: jsonValue().optional(),
});

/**
 * One step of the model's reasoning, in the order it produced them: thinking/reasoning
 * content, an agent's action log, a tool call it asked for.
 */
export const ReasoningStepSchema = z.object({
  index: z.number().int().nonnegative(),
  kind: z.enum(["reasoning", "action_log", "tool_call"]),
  text: z.string().optional(),
  toolCall: z.lazy(() => ToolCallRequestSchema).optional(),
});

export const DocumentSchema = z.object({
  id: z.string().max(MAX_ID_LENGTH).optional(),
  pageContent: z.string(),
  metadata: z.record(z.string(), jsonValue()),
});

export const ToolCallRequestSchema = z.object({
  id: z.string().max(MAX_ID_LENGTH).optional(),
  name,
  args: jsonValue(),
});

export const MessageSchema = z.object({
  role: nonEmpty,
  content: jsonValue(),
  name: z.string().optional(),
  toolCallId: z.string().max(MAX_ID_LENGTH).optional(),
  toolCalls: z.array(ToolCallRequestSchema).optional(),
});

export const ErrorInfoSchema = z.object({
  name: z.string(),
  message: z.string(),
});

export const envelope = {
  eventId: z.uuidv7(),
  schemaVersion: z.literal(SCHEMA_VERSION),
  /** Client clock; the worker's `recordedAt` is the timestamp that counts. */
  occurredAt: z.iso.datetime({ offset: true }),
  traceId: id,
  runId: id,
  parentRunId: id.nullable(),
  sessionId: id.nullable(),
  identity: IdentitySchema,
  /** The run's name: a tool's is the Tool node's key. */
  name: z.string().max(MAX_NAME_LENGTH).optional(),
  tags: z.array(z.string()).optional(),
  /** What redaction replaced in this event, by detector kind (counts only, never values). */
  redactions: z.record(z.string(), z.number().int().positive()).optional(),
  /**
   * Keyed digests (HMAC-SHA-256, 16 hex) of the distinct values redaction replaced, by detector
   * kind: they tell repeated values apart (a value is flagged once per trace), never what they were.
   */
  redactionDigests: z.record(z.string(), z.array(z.string().regex(/^[0-9a-f]{16}$/, "must be 16 hex digits")).max(MAX_DIGESTS_PER_KIND)).optional(),
};

/**
 * The envelope of a system event (an erasure, a deployment, ...): no user asked for it, so no
 * identity; `tenantId` picks the ledger stream, as `identity.user.tenantId` does for the others.
 */
export const systemEnvelope = {
  eventId: envelope.eventId,
  schemaVersion: envelope.schemaVersion,
  occurredAt: envelope.occurredAt,
  traceId: envelope.traceId,
  runId: envelope.runId,
  parentRunId: envelope.parentRunId,
  sessionId: envelope.sessionId,
  name: envelope.name,
  tags: envelope.tags,
  redactions: envelope.redactions,
  redactionDigests: envelope.redactionDigests,
  tenantId: id,
};

export const errorPayload = z.object({ error: ErrorInfoSchema });

/** Client-side timing of a run, from its start callback to its end callback. */
export const TimingSchema = z.object({
  latencyMs: z.number().nonnegative(),
  timeToFirstTokenMs: z.number().nonnegative().optional(),
});

/** The event types of a family's schemas. */
export type EventTypeIn<T extends readonly z.ZodType[]> = Extract<z.output<T[number]>, { type: string }>["type"];

// --- redaction hints of the shared pieces (see hints.ts)

export const TOOL_CALL_REDACTION = object({ id: optional(STRING), name: required(STRING, PLACEHOLDER), args: required(JSON_SHAPE, null) });
export const MESSAGE_REDACTION = object({
  role: required(STRING, PLACEHOLDER),
  content: required(JSON_SHAPE, null),
  name: optional(STRING),
  toolCallId: optional(STRING),
  toolCalls: optional(array(TOOL_CALL_REDACTION)),
});
export const ERROR_REDACTION = required(object({ name: required(STRING, ""), message: required(STRING, "") }), null);
export const TOOL_DEFINITION_REDACTION = object({ name: required(STRING, PLACEHOLDER), description: optional(STRING), parameters: optional(JSON_SHAPE) });
export const REASONING_STEP_REDACTION = object({ index: FIXED, kind: FIXED, text: optional(STRING), toolCall: optional(TOOL_CALL_REDACTION) });
export const DOCUMENT_REDACTION = object({ id: optional(STRING), pageContent: required(STRING, ""), metadata: required(object({}), null) });

/**
 * Redaction's reach outside the payload: the run's `name`, its `tags` and `model.params`. Ids,
 * identity, type, times, `usage` and `cost` are never touched.
 */
export const ENVELOPE_REDACTION: { readonly name: Field; readonly tags: Field; readonly modelParams: Field } = {
  name: optional(STRING),
  tags: optional(array(STRING)),
  modelParams: required(object({}), null),
};

/** A family's payload hints, by event type: assembled in `schema.ts`, complete by type. */
export type PayloadRedaction<T extends string> = Record<T, Shape>;

// --- upcasting (see upcast.ts)

/**
 * All that upcasting needs to know of an event of any version: it is an object with a version.
 * Its other members pass through untouched, including ones the current schema does not know.
 */
export const VersionedSchema = z.looseObject({ schemaVersion: z.int().positive() });
export type Versioned = z.infer<typeof VersionedSchema>;

/**
 * `VersionedSchema.safeParse(input).success`, without the copy of every member a loose object's
 * parse makes: an object, not an array, whose schemaVersion is a positive safe integer. Every
 * event is asked this on its way in and again before the policies read it.
 */
export function isVersioned(input: unknown): input is Versioned {
  if (typeof input !== "object" || input === null || Array.isArray(input)) return false;
  const version: unknown = (input as { schemaVersion?: unknown }).schemaVersion;
  return typeof version === "number" && Number.isSafeInteger(version) && version > 0;
}

/** Like zod's `safeParse` result, so a caller handles it the same way (`issuesOf(result.error)`). */
export type ParseResult<T> = { success: true; data: T } | { success: false; error: z.ZodError };

/**
 * What one event type changes in one step from version n to n + 1 (the step itself sets the new
 * version). It returns a new object (never mutates its input: the ledger keeps the event as
 * received), and refuses an event it cannot read with the offending field named as its producer
 * sent it, not where the step would have moved it.
 */
export type Upcaster = (event: Versioned) => ParseResult<Versioned>;

/** A family's upcasters: by the version a step starts from, then by event type. */
export type FamilyUpcasters<T extends string> = Readonly<Record<number, Partial<Record<T, Upcaster>>>>;
