import { SCHEMA_VERSION, issuesOf, parseEvent, sha256Hex, type Identity, type UserEvent } from "@auditgraph/core";
import { GEN_AI, GEN_AI_LEGACY, GENERAL, OPENINFERENCE, RESOURCE, type GenAiOperation, type OpenInferenceSpanKind } from "./attributes.js";
import { FAMILIES, type Family } from "./families.js";
import { MESSAGE_EVENTS } from "./messages.js";
import { SPAN_STATUS, isoOf, type AttributeValue, type OtlpSpan } from "./model.js";
import { SpanReader, SpanRejected } from "./read.js";

// One span -> its auditgraph events: a start, an end (or an error, when the span's status is
// ERROR) and a `custom` event "otel.span" keeping what no field of ours holds (unmapped
// attributes with their typed values, unmapped span events, resource, scope, span kind). What
// family a span belongs to comes from the tables below, first match wins: `gen_ai.operation.name`,
// then `openinference.span.kind`, then a 1.36 LLM span (`gen_ai.system` without an operation),
// else a chain, so that a span of no GenAI vocabulary still keeps its place in the run tree.

const OPERATION_FAMILY = {
  chat: "llm",
  text_completion: "llm",
  generate_content: "llm",
  invoke_agent: "chain",
  create_agent: "chain",
  invoke_workflow: "chain",
  execute_tool: "tool",
  // No embedding event type: an embeddings call is kept as a chain run (input and output as sent).
  embeddings: "chain",
  retrieval: "retriever",
} as const satisfies Record<GenAiOperation, Family>;

const SPAN_KIND_FAMILY = {
  LLM: "llm",
  CHAIN: "chain",
  TOOL: "tool",
  AGENT: "chain",
  RETRIEVER: "retriever",
  EMBEDDING: "chain",
  RERANKER: "chain",
  GUARDRAIL: "chain",
  EVALUATOR: "chain",
  PROMPT: "chain",
  UNKNOWN: "chain",
} as const satisfies Record<OpenInferenceSpanKind, Family>;

/** The name of the `custom` event holding a span's unmapped data. */
export const SPAN_EXTRA_EVENT = "otel.span";
/** The user of a span that names none (no `user.id` / `enduser.id` on it, its ancestors or the resource). */
export const ANONYMOUS_USER = "otel:anonymous";
/** The agent of a span that names none (no `gen_ai.agent.*` up its tree, no `service.name`). */
export const UNKNOWN_AGENT = "otel:unknown-agent";
export const UNKNOWN_VERSION = "unknown";

const lookup = <T extends string>(table: Record<T, Family>, key: string | undefined): Family | undefined =>
  key !== undefined && Object.hasOwn(table, key) ? table[key as T] : undefined;

/** The span's family; the naming attribute counts as mapped only when its value is one the tables know (else it is kept). */
function familyOf(r: SpanReader): Family {
  const op = r.attributes[GEN_AI.operationName];
  const kind = r.attributes[OPENINFERENCE.spanKind];
  const byOp = lookup(OPERATION_FAMILY, typeof op === "string" ? op : undefined);
  const byKind = lookup(SPAN_KIND_FAMILY, typeof kind === "string" ? kind.toUpperCase() : undefined);
  if (byOp) r.consume(GEN_AI.operationName);
  if (byKind) r.consume(OPENINFERENCE.spanKind);
  const legacyLlm = r.attributes[GEN_AI_LEGACY.system] !== undefined || r.attributes[GEN_AI.requestModel] !== undefined ? "llm" : undefined;
  return byOp ?? byKind ?? legacyLlm ?? "chain";
}

/** The spans of one request by id: identity and session are inherited from an ancestor that carries them. */
export type SpanIndex = ReadonlyMap<string, OtlpSpan>;

function inherited(span: OtlpSpan, index: SpanIndex, names: readonly string[]): string | undefined {
  const seen = new Set<string>();
  for (let s: OtlpSpan | undefined = span; s && !seen.has(s.spanId); s = s.parentSpanId ? index.get(`${s.traceId}/${s.parentSpanId}`) : undefined) {
    seen.add(s.spanId);
    for (const name of names) {
      const v = s.attributes[name];
      if (typeof v === "string" && v !== "") return v;
      if (typeof v === "number") return String(v);
    }
  }
  return undefined;
}

const USER = [GENERAL.userId, GENERAL.endUserId] as const;
const SESSION = [GEN_AI.conversationId, GENERAL.sessionId] as const;

function identityOf(r: SpanReader, index: SpanIndex, tenantId: string): { identity: Identity; sessionId: string | null } {
  const span = r.span;
  r.consume(...USER, ...SESSION, GEN_AI.agentId, GEN_AI.agentName, GEN_AI.agentVersion, OPENINFERENCE.agentName);
  const resource = (name: string) => (typeof span.resource[name] === "string" && span.resource[name] !== "" ? (span.resource[name] as string) : undefined);
  const user = inherited(span, index, USER) ?? resource(GENERAL.userId) ?? resource(GENERAL.endUserId) ?? ANONYMOUS_USER;
  const agentName = inherited(span, index, [GEN_AI.agentName, OPENINFERENCE.agentName]);
  const agentId = inherited(span, index, [GEN_AI.agentId]) ?? agentName ?? resource(RESOURCE.serviceName) ?? UNKNOWN_AGENT;
  const version = inherited(span, index, [GEN_AI.agentVersion]) ?? resource(RESOURCE.serviceVersion) ?? UNKNOWN_VERSION;
  return {
    identity: { user: { id: user, tenantId }, agent: { id: agentId, name: agentName ?? resource(RESOURCE.serviceName) ?? agentId, version } },
    sessionId: inherited(span, index, SESSION) ?? null,
  };
}

/**
 * A UUIDv7 fixed by what the event is (tenant, trace, span, type): a span sent twice yields the
 * same ids and the ledger keeps each event once. Its time is the event's own, so ids sort as v7 ones do.
 */
export function spanEventId(ms: number, tenantId: string, span: OtlpSpan, type: string): string {
  const time = Math.max(0, Math.min(ms, 2 ** 48 - 1))
    .toString(16)
    .padStart(12, "0");
  const h = sha256Hex(`otel|${tenantId}|${span.traceId}|${span.spanId}|${type}`);
  const variant = ((parseInt(h[3]!, 16) & 0x3) | 0x8).toString(16);
  return `${time.slice(0, 8)}-${time.slice(8, 12)}-7${h.slice(0, 3)}-${variant}${h.slice(4, 7)}-${h.slice(7, 19)}`;
}

const jsonSafe = (v: AttributeValue): unknown =>
  typeof v === "number" && !Number.isFinite(v)
    ? String(v)
    : Array.isArray(v)
      ? v.map(jsonSafe)
      : typeof v === "object" && v !== null
        ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, jsonSafe(x)]))
        : v;

export interface MappedSpan {
  spanId: string;
  /** The span's events, start first; sort keys in nanoseconds for ordering a request's events. */
  events: { event: UserEvent; at: bigint; order: number }[];
}

/** Maps one span; throws SpanRejected naming the attribute (or the event field) that does not fit. */
export function mapSpan(span: OtlpSpan, index: SpanIndex, tenantId: string): MappedSpan {
  if (!/^[0-9a-f]{32}$/.test(span.traceId)) throw new SpanRejected(span.spanId, "traceId", "must be 16 bytes, not all zero");
  if (!/^[0-9a-f]{16}$/.test(span.spanId)) throw new SpanRejected(span.spanId, "spanId", "must be 8 bytes, not all zero");
  if (span.startNs === 0n) throw new SpanRejected(span.spanId, "startTimeUnixNano", "must be set");
  if (span.endNs < span.startNs) throw new SpanRejected(span.spanId, "endTimeUnixNano", "must not be before startTimeUnixNano");
  const r = new SpanReader(span);
  const family = FAMILIES[familyOf(r)];
  const { identity, sessionId } = identityOf(r, index, tenantId);
  const tags = r.strings(OPENINFERENCE.tagTags);
  const failed = span.status.code === SPAN_STATUS.error;
  const built = family.build(r, failed);
  const base = {
    schemaVersion: SCHEMA_VERSION,
    traceId: span.traceId,
    runId: span.spanId,
    parentRunId: span.parentSpanId ?? null,
    sessionId,
    identity,
    name: (built.name ?? span.name).slice(0, 256) || family.start,
    ...(tags && tags.length > 0 ? { tags } : {}),
  };
  const startMs = Number(span.startNs / 1_000_000n);
  const endMs = Number(span.endNs / 1_000_000n);
  const endType = failed ? family.error : family.end;
  const extra = {
    attributes: jsonSafe(r.unread()),
    ...(span.events.some((e) => !MESSAGE_EVENTS.has(e.name))
      ? {
          events: span.events
            .filter((e) => !MESSAGE_EVENTS.has(e.name))
            .map((e) => ({ name: e.name, time: isoOf(e.timeNs), attributes: jsonSafe(e.attributes) })),
        }
      : {}),
    resource: jsonSafe(span.resource),
    scope: span.scope,
    spanName: span.name,
    spanKind: span.kind,
    status: span.status,
  };
  const drafts: { type: string; ms: number; at: bigint; order: number; fields: Record<string, unknown> }[] = [
    { type: family.start, ms: startMs, at: span.startNs, order: 0, fields: built.start },
    { type: "custom", ms: endMs, at: span.endNs, order: 1, fields: { payload: { name: SPAN_EXTRA_EVENT, data: extra } } },
    { type: endType, ms: endMs, at: span.endNs, order: 2, fields: failed ? { payload: { ...built.errorExtra, error: errorOf(r) } } : built.end },
  ];
  const events = drafts.map((d) => {
    const candidate = { ...base, eventId: spanEventId(d.ms, tenantId, span, d.type), occurredAt: new Date(d.ms).toISOString(), type: d.type, ...d.fields };
    const parsed = parseEvent(candidate);
    if (!parsed.success) {
      const issue = issuesOf(parsed.error)[0]!;
      throw new SpanRejected(span.spanId, `${d.type} ${issue.path}`, issue.message);
    }
    return { event: parsed.data as UserEvent, at: d.at, order: d.order };
  });
  return { spanId: span.spanId, events };
}

/** The span's error: `error.type` or the recorded exception's type, the status message or the exception's. */
function errorOf(r: SpanReader): { name: string; message: string } {
  const exception = r.span.events.find((e) => e.name === "exception")?.attributes ?? {};
  const str = (v: AttributeValue | undefined) => (typeof v === "string" ? v : undefined);
  return {
    name: r.str(GENERAL.errorType) ?? str(exception[GENERAL.exceptionType]) ?? "Error",
    message: r.span.status.message || str(exception[GENERAL.exceptionMessage]) || "span status ERROR",
  };
}
