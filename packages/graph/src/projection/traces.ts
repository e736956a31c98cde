import { canonicalJson, subjectRef, type EventOf } from "@auditgraph/core";
import { type Batch, type Step, type UserRecord, distinctBy, json, keyOf } from "./common.js";
import { statement } from "./statement.js";

// Traces, replays, reviews and sessions: every user event's trace, whatever its type.

// firstEventId: the trace's smallest event id. Event ids are UUIDv7 (the producer's time, then
// a counter monotonic within its process), so this is the trace's first captured event, which
// orders the traces of a session; the worker's recordedAt is one per batch and cannot.
// rootStart / rootEnd: the trace's root run (a chain.start, a chain.end or chain.error whose
// parentRunId is null), the last of each in the batch, or null: its name, input, status, output
// and error are the trace's, SET in the same statement (start before end) rather than in two more.
// kind: null for production, 'replay' for a replay run (@auditgraph/replay tags its events) and
// 'review' for the record of a replay's review; set once, from whichever record shows it first,
// and never taken back. Queries and the session order leave traces of a kind out by default. A
// review is made by an operator, not for a user: its trace keeps the operator as a property and
// is linked to no User, so the operator never counts as someone an agent acted for.
const TRACES = statement("traces", "traces");

// A replay run's events carry the tag `auditgraph:replay-of:<original trace id>` (@auditgraph/replay):
// the original may be projected later or never (another tenant's snapshot never is), so it is merged.
const REPLAY_TAG_PREFIX = "auditgraph:replay-of:";
const REPLAY_OF = statement("traces", "replay-of");

// A replay review (@auditgraph/replay appends it as a `custom` event named `auditgraph.review`):
// the snapshot, the versions compared and the counts, for `compare-agent-versions`.
const REVIEW_EVENT_NAME = "auditgraph.review";
// Anyone can send a custom event of that name: one without the keys MERGE needs is left as a
// plain event rather than failing the whole batch's projection on a null key.
const isReviewData = (data: unknown): boolean => {
  const d = data as Record<string, unknown> | null;
  const text = (k: string) => typeof d?.[k] === "string" && (d[k] as string).length > 0;
  return (
    typeof d === "object" &&
    d !== null &&
    text("reviewId") &&
    text("snapshotId") &&
    text("agentId") &&
    text("candidateVersion") &&
    Array.isArray(d.baselineVersions) &&
    d.baselineVersions.every((v) => typeof v === "string" && v.length > 0)
  );
};
const isReviewRecord = (r: UserRecord): r is UserRecord & { event: EventOf<"custom"> } =>
  r.event.type === "custom" && r.event.payload.name === REVIEW_EVENT_NAME && isReviewData(r.event.payload.data);
const REVIEWS = statement("traces", "reviews");

// The session's traces in order, recomputed whole for each session a batch touches, so a trace
// projected late (a retried job) still lands in its place: stale FIRST_TRACE / NEXT_TRACE go,
// the right ones are merged. The write to the session comes first and locks it, so two batches
// of one session order it one after the other, each seeing the other's traces. Only production
// traces (kind null) are in the order: a replay run in the session of the trace it replays, or a
// review record, is never one of the session's traces (r.recordedAt is null when the batch has
// none of the session's production traces: a replay is no activity of the session either).
// One statement, a subquery each for FIRST_TRACE, NEXT_TRACE and the traces apart: a trace of the
// session that is no part of its order holds no NEXT_TRACE either way (one whose kind became known
// after it had been ordered). Session by session, in row order, it leaves what three statements
// over all sessions did: FIRST_TRACE is the session's own, NEXT_TRACE is written only between
// production traces and the third part deletes only what touches the others, and none of the
// three writes what another reads (a trace's session and kind).
const SESSIONS = statement("traces", "sessions");

type RootStart = { name: string | null; input: string; recordedAt: string };
type RootEnd = { status: "ok" | "error"; output: string | null; error: string | null; recordedAt: string };
type TraceRow = {
  firstEventId: string;
  recordedAt: string;
  lastRecordedAt: string;
  kind: "replay" | "review" | null;
  rootStart: RootStart | null;
  rootEnd: RootEnd | null;
} & Record<string, unknown>;

/** The batch's traces, one row each (its first event, its times, its kind), keyed by tenant and trace. */
function traceRows(batch: Batch): Map<string, TraceRow> {
  const traces = new Map<string, TraceRow>();
  for (const r of batch.records) {
    const { user, agent } = r.event.identity;
    const key = keyOf(user.tenantId, r.event.traceId);
    let trace = traces.get(key);
    if (trace) {
      if (r.event.eventId < trace.firstEventId) trace.firstEventId = r.event.eventId;
      if (r.recordedAt < trace.recordedAt) trace.recordedAt = r.recordedAt;
      if (r.recordedAt > trace.lastRecordedAt) trace.lastRecordedAt = r.recordedAt;
    } else {
      trace = {
        traceId: r.event.traceId,
        tenantId: user.tenantId,
        userId: user.id,
        subject: subjectRef(user.tenantId, user.id),
        agentId: agent.id,
        agentName: agent.name,
        agentVersion: agent.version,
        sessionId: r.event.sessionId,
        firstEventId: r.event.eventId,
        recordedAt: r.recordedAt,
        lastRecordedAt: r.recordedAt,
        kind: null,
        rootStart: null,
        rootEnd: null,
      };
      traces.set(key, trace);
    }
    if (r.event.parentRunId !== null) continue;
    const e = r.event;
    if (e.type === "chain.start") trace.rootStart = { name: e.name ?? null, input: json(e.payload.inputs), recordedAt: r.recordedAt };
    else if (e.type === "chain.end" || e.type === "chain.error")
      trace.rootEnd = {
        status: e.type === "chain.end" ? "ok" : "error",
        output: e.type === "chain.end" ? json(e.payload.outputs) : null,
        error: e.type === "chain.error" ? json(e.payload.error) : null,
        recordedAt: r.recordedAt,
      };
  }
  // Which traces of the batch are replays or review records, from any of their records.
  for (const r of batch.records) {
    // A review record is a trace of its own (its id the review's): a review event inside another
    // trace does not make that trace a review's.
    const review = isReviewRecord(r) && (r.event.payload.data as { reviewId: string }).reviewId === r.event.traceId;
    const kind = review ? "review" : r.event.tags?.some((tag) => tag.startsWith(REPLAY_TAG_PREFIX)) ? "replay" : null;
    const trace = traces.get(keyOf(r.event.identity.user.tenantId, r.event.traceId))!;
    if (kind === "review" || (kind === "replay" && trace.kind === null)) trace.kind = kind;
  }
  return traces;
}

// A session's last activity is the latest record of it in the batch, of any of its traces: the
// graph keeps the greatest over batches, so the value does not depend on where batches are cut
// (a worker's jobs, a catch-up's ledger reads, a rebuild's batches).
function sessionRows(batch: Batch) {
  const sessions = new Map<string, { tenantId: unknown; sessionId: unknown; recordedAt: string | null }>();
  for (const t of batch.derive(traceRows).values()) {
    if (!t.sessionId) continue;
    const key = keyOf(String(t.tenantId), String(t.sessionId));
    // A replay or review is no activity of the session; its session is still reordered.
    const at = t.kind === null ? t.lastRecordedAt : null;
    const seen = sessions.get(key);
    if (!seen) sessions.set(key, { tenantId: t.tenantId, sessionId: t.sessionId, recordedAt: at });
    else if (at !== null && (seen.recordedAt === null || at > seen.recordedAt)) seen.recordedAt = at;
  }
  return [...sessions.values()];
}

export const traceSteps = {
  traces: { cypher: TRACES, rows: (b) => [...b.derive(traceRows).values()] },
  replayOf: {
    cypher: REPLAY_OF,
    rows: (b) =>
      distinctBy(
        b.records.flatMap((r) =>
          (r.event.tags ?? [])
            .filter((tag) => tag.startsWith(REPLAY_TAG_PREFIX))
            .map((tag) => ({ tenantId: r.event.identity.user.tenantId, traceId: r.event.traceId, originalTraceId: tag.slice(REPLAY_TAG_PREFIX.length) })),
        ),
        (row) => canonicalJson(row),
      ),
  },
  reviews: {
    cypher: REVIEWS,
    rows: (b) =>
      b.records.filter(isReviewRecord).map((r) => ({
        ...(r.event.payload.data as Record<string, unknown>),
        tenantId: r.event.identity.user.tenantId,
        // Who ran the review: the identity's user of its event, never projected as a User.
        operator: r.event.identity.user.id,
        eventId: r.event.eventId,
        recordedAt: r.recordedAt,
      })),
  },
  sessions: { cypher: SESSIONS, rows: sessionRows },
} satisfies Record<string, Step>;
