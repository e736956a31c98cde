import { SpanKind, SpanStatusCode, TraceFlags, type Attributes, type SpanStatus } from "@opentelemetry/api";
import { hrTimeDuration, millisToHrTime } from "@opentelemetry/core";
import { resourceFromAttributes, type Resource } from "@opentelemetry/resources";
import type { ReadableSpan, TimedEvent } from "@opentelemetry/sdk-trace-base";
import { isSystemEvent, sha256Hex, tenantIdOf, type AuditEvent, type EventOf } from "@auditgraph/core";
import { AUDITGRAPH, GEN_AI, GENERAL, OPENINFERENCE, RESOURCE, EXCEPTION_EVENT } from "./attributes.js";
import { AUDITGRAPH_EXPORT, EXPORT_SCOPE, annotationEventName } from "./attributes.js";
import { RUN_SPANS, contextOf, ruleOf, type ExportContent, type RunKind } from "./export-map.js";

/** One event as the ledger recorded it: in the clear, in the current schema version, with its place in its stream. */
export interface RecordedEvent {
  event: AuditEvent;
  streamId: string;
  position: number;
  hash: string;
}

export interface SpanAssemblerOptions {
  content: ExportContent;
  /** Runs started and not ended yet, held to be exported on their end; past it the oldest is dropped. */
  maxOpenRuns: number;
  /** Span events (annotations) one run's span keeps; past it they are counted as dropped on the span. */
  maxEventsPerSpan: number;
  /** Takes each finished span. */
  emit(span: ReadableSpan): void;
  /** Told of a run dropped from the open map (its start is then never exported; its end is, alone). */
  dropped(count: number): void;
}

interface OpenRun {
  run: RunKind;
  start: RecordedEvent;
  events: TimedEvent[];
  droppedEvents: number;
}

type ErrorEvent = EventOf<"chain.error" | "llm.error" | "tool.error" | "retriever.error">;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const NOT_ZERO = /[1-9a-f]/;

/**
 * The OpenTelemetry trace id of one of our traces, the same on every export: an id that already is
 * one (32 hex digits, from an OTLP import) or a UUID (LangChain's run ids) is taken as it is, so a
 * viewer's trace id reads back as ours; any other id is hashed with its tenant.
 */
export function traceIdOf(tenantId: string, traceId: string): string {
  if (/^[0-9a-f]{32}$/i.test(traceId) && NOT_ZERO.test(traceId.toLowerCase())) return traceId.toLowerCase();
  if (UUID.test(traceId) && NOT_ZERO.test(traceId.toLowerCase())) return traceId.replaceAll("-", "").toLowerCase();
  return sha256Hex(`trace\0${tenantId}\0${traceId}`).slice(0, 32);
}

/** The span id of one of our runs (16 hex digits kept as they are, else hashed with its tenant and trace). */
export function spanIdOf(tenantId: string, traceId: string, runId: string): string {
  if (/^[0-9a-f]{16}$/i.test(runId) && NOT_ZERO.test(runId.toLowerCase())) return runId.toLowerCase();
  return sha256Hex(`run\0${tenantId}\0${traceId}\0${runId}`).slice(0, 16);
}

/** The span id of an event exported as a span of its own. */
export const eventSpanIdOf = (eventId: string): string => sha256Hex(`event\0${eventId}`).slice(0, 16);

const timeOf = (iso: string) => millisToHrTime(Date.parse(iso));
const isError = (e: AuditEvent): e is ErrorEvent => e.type.endsWith(".error");

/** The ledger attributes of the records a span is made of: a viewer finds and proves them with these. */
function ledgerOf(records: readonly RecordedEvent[]): Attributes {
  return {
    [AUDITGRAPH_EXPORT.eventIds]: records.map((r) => r.event.eventId),
    [AUDITGRAPH_EXPORT.ledgerStream]: records[0]!.streamId,
    [AUDITGRAPH_EXPORT.ledgerPositions]: records.map((r) => r.position),
    [AUDITGRAPH_EXPORT.ledgerHashes]: records.map((r) => r.hash),
  };
}

function redactionsOf(records: readonly RecordedEvent[]): Attributes {
  const counts: Record<string, number> = {};
  for (const { event } of records) for (const [kind, n] of Object.entries(event.redactions ?? {})) counts[kind] = (counts[kind] ?? 0) + n;
  return Object.keys(counts).length ? { [AUDITGRAPH_EXPORT.redactions]: JSON.stringify(counts) } : {};
}

/**
 * Turns recorded events into finished spans, one event at a time in ledger order (see EVENT_SPANS):
 * a run's start waits in a bounded map for its end, an annotation joins its open run, anything
 * else is a span at once. Pure: no I/O, no clock (times are the events' own).
 */
export class SpanAssembler {
  private readonly open = new Map<string, OpenRun>();
  private readonly resources = new Map<string, Resource>();

  constructor(private readonly options: SpanAssemblerOptions) {}

  get openRuns(): number {
    return this.open.size;
  }

  add(recorded: RecordedEvent): void {
    const { event } = recorded;
    const rule = ruleOf(event);
    const key = `${tenantIdOf(event)}\0${event.traceId}\0${event.runId}`;
    switch (rule.role) {
      case "start": {
        if (this.open.size >= this.options.maxOpenRuns && !this.open.has(key)) {
          this.open.delete(this.open.keys().next().value!);
          this.options.dropped(1);
        }
        this.open.set(key, { run: rule.run, start: recorded, events: [], droppedEvents: 0 });
        return;
      }
      case "end":
      case "error": {
        const open = this.open.get(key);
        this.open.delete(key);
        this.emitRun(rule.run, open, recorded);
        return;
      }
      case "annotation": {
        const attributes = { ...rule.attributes(event, this.content), ...this.single(recorded) };
        const open = this.open.get(key);
        if (!open) this.emitStandalone(recorded, annotationEventName(event.type), attributes);
        else if (open.events.length >= this.options.maxEventsPerSpan) open.droppedEvents++;
        else open.events.push({ time: timeOf(event.occurredAt), name: annotationEventName(event.type), attributes });
        return;
      }
      case "standalone":
        this.emitStandalone(recorded, rule.name(event), rule.attributes(event));
        return;
    }
  }

  /** Exports every run still open, marked `auditgraph.incomplete` (the worker is closing). */
  closeAll(): void {
    for (const open of this.open.values()) this.emitRun(open.run, open, undefined);
    this.open.clear();
  }

  private get content(): boolean {
    return this.options.content === "full";
  }

  private single(r: RecordedEvent): Attributes {
    return {
      [AUDITGRAPH.eventId]: r.event.eventId,
      [AUDITGRAPH_EXPORT.eventType]: r.event.type,
      [AUDITGRAPH_EXPORT.ledgerPosition]: r.position,
      [AUDITGRAPH_EXPORT.ledgerHash]: r.hash,
    };
  }

  /** A run's span from its start and its end; either may be missing (an end whose start came before this worker, a run still open at close). */
  private emitRun(run: RunKind, open: OpenRun | undefined, endRecord: RecordedEvent | undefined): void {
    const start = open?.start.event;
    const end = endRecord?.event;
    const first = (start ?? end)!;
    const spec = RUN_SPANS[run];
    const records = [open?.start, endRecord].filter((r): r is RecordedEvent => r !== undefined);
    const attributes: Attributes = { ...contextOf(first), [AUDITGRAPH_EXPORT.runType]: run, [OPENINFERENCE.spanKind]: spec.openinference };
    const operation = spec.operation(first);
    if (operation) attributes[GEN_AI.operationName] = operation;
    if (operation && run === "chain") attributes[OPENINFERENCE.spanKind] = "AGENT";
    const events = [...(open?.events ?? [])];
    let status: SpanStatus = { code: SpanStatusCode.UNSET };
    if (start) Object.assign(attributes, startAttributes(start, this.content));
    if (end && isError(end)) {
      attributes[GENERAL.errorType] = end.payload.error.name || "Error";
      status = { code: SpanStatusCode.ERROR, ...(this.content ? { message: end.payload.error.message } : {}) };
      events.push({
        time: timeOf(end.occurredAt),
        name: EXCEPTION_EVENT,
        attributes: { [GENERAL.exceptionType]: end.payload.error.name, ...(this.content ? { [GENERAL.exceptionMessage]: end.payload.error.message } : {}) },
      });
    } else if (end) Object.assign(attributes, endAttributes(end, this.content));
    if (!end || !start) attributes[AUDITGRAPH_EXPORT.incomplete] = true;
    Object.assign(attributes, redactionsOf(records), ledgerOf(records));
    const endMs = Date.parse((end ?? first).occurredAt);
    const latency = end && "timing" in end.payload ? end.payload.timing?.latencyMs : undefined;
    const startMs = start ? Date.parse(start.occurredAt) : endMs - (latency ?? 0);
    const tenantId = tenantIdOf(first);
    this.options.emit(
      this.span({
        event: first,
        name: spec.name(start, end),
        kind: spec.kind,
        spanId: spanIdOf(tenantId, first.traceId, first.runId),
        parentRunId: first.parentRunId,
        startMs,
        endMs,
        status,
        attributes,
        events,
        droppedEvents: open?.droppedEvents ?? 0,
      }),
    );
  }

  /** A span of one event, under the run it concerns (its own `runId` is its id for an event that is its own trace, an access say). */
  private emitStandalone(r: RecordedEvent, name: string, own: Attributes): void {
    const { event } = r;
    const at = Date.parse(event.occurredAt);
    const parentRunId = event.runId !== event.eventId ? event.runId : event.parentRunId;
    this.options.emit(
      this.span({
        event,
        name,
        kind: SpanKind.INTERNAL,
        spanId: eventSpanIdOf(event.eventId),
        parentRunId,
        startMs: at,
        endMs: at,
        status: { code: SpanStatusCode.UNSET },
        attributes: { ...contextOf(event), ...own, ...this.single(r), ...redactionsOf([r]), ...ledgerOf([r]) },
        events: [],
        droppedEvents: 0,
      }),
    );
  }

  private span(p: {
    event: AuditEvent;
    name: string;
    kind: SpanKind;
    spanId: string;
    parentRunId: string | null;
    startMs: number;
    endMs: number;
    status: SpanStatus;
    attributes: Attributes;
    events: TimedEvent[];
    droppedEvents: number;
  }): ReadableSpan {
    const tenantId = tenantIdOf(p.event);
    const traceId = traceIdOf(tenantId, p.event.traceId);
    const context = { traceId, spanId: p.spanId, traceFlags: TraceFlags.SAMPLED };
    const parent = p.parentRunId === null ? undefined : { traceId, spanId: spanIdOf(tenantId, p.event.traceId, p.parentRunId), traceFlags: TraceFlags.SAMPLED };
    const startTime = millisToHrTime(p.startMs);
    // A client clock that went back between start and end must not make a negative duration.
    const endTime = millisToHrTime(Math.max(p.startMs, p.endMs));
    return {
      name: p.name,
      kind: p.kind,
      spanContext: () => context,
      ...(parent ? { parentSpanContext: parent } : {}),
      startTime,
      endTime,
      duration: hrTimeDuration(startTime, endTime),
      status: p.status,
      attributes: p.attributes,
      links: [],
      events: p.events,
      ended: true,
      resource: this.resourceOf(p.event),
      instrumentationScope: EXPORT_SCOPE,
      droppedAttributesCount: 0,
      droppedEventsCount: p.droppedEvents,
      droppedLinksCount: 0,
    };
  }

  /** The agent (name and version) as the service, so a backend groups spans by agent; system events are auditgraph's own. */
  private resourceOf(event: AuditEvent): Resource {
    const [name, version] = isSystemEvent(event) ? ["auditgraph", undefined] : [event.identity.agent.name, event.identity.agent.version];
    const key = `${name}\0${version ?? ""}`;
    let resource = this.resources.get(key);
    if (!resource) {
      resource = resourceFromAttributes({ [RESOURCE.serviceName]: name, ...(version ? { [RESOURCE.serviceVersion]: version } : {}) });
      // Bounded like everything else held: past it a resource is made per span (still correct, only more objects).
      if (this.resources.size < 1_000) this.resources.set(key, resource);
    }
    return resource;
  }
}

const startAttributes = (e: AuditEvent, content: boolean): Attributes => {
  const rule = ruleOf(e);
  return rule.role === "start" ? rule.attributes(e, content) : {};
};
const endAttributes = (e: AuditEvent, content: boolean): Attributes => {
  const rule = ruleOf(e);
  return rule.role === "end" ? rule.attributes(e, content) : {};
};
