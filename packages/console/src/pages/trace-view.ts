import { isSealed, upcastEvent, type AuditEvent, type LedgerRecord } from "@auditgraph/core";

/**
 * A trace as the trace page shows it, built from its ledger records (the content's source of
 * truth). A record sealed for its data subject cannot be opened here: its clear envelope still
 * places it in the run tree and on the timeline, and its content reads as erased.
 */
export type RunKind = "chain" | "llm" | "tool" | "retriever";

export interface RunView {
  runId: string;
  parentRunId: string | null;
  kind: RunKind;
  name: string | null;
  status: "running" | "ok" | "error";
  /** Client times (ms since the epoch): the worker's `recordedAt` is one per batch and cannot place runs. */
  start: number;
  end: number | null;
  depth: number;
  /** Some of its records are sealed and could not be opened. */
  erased: boolean;
}

export interface LlmCallView {
  runId: string;
  requested: string | null;
  served: string | null;
  messages: { role: string; text: string }[] | null;
  output: string | null;
  toolCalls: { id: string | null; name: string; args: unknown }[];
  reasoning: { index: number; kind: string; text: string | null; toolCall: unknown }[];
  tokens: { input: number; output: number; total: number } | null;
  cost: { currency: string; total: number } | null;
  latencyMs: number | null;
  error: string | null;
  erased: boolean;
}

export interface ToolCallView {
  runId: string;
  name: string | null;
  toolCallId: string | null;
  input: unknown;
  output: unknown;
  error: string | null;
  status: "running" | "ok" | "error";
  latencyMs: number | null;
  erased: boolean;
}

export interface RetrievalView {
  runId: string;
  parentRunId: string | null;
  name: string | null;
  query: string | null;
  documents: { id: string | null; content: string; metadata: unknown }[];
  erased: boolean;
}

export interface TraceView {
  traceId: string;
  userId: string | null;
  agent: { id: string; name: string; version: string } | null;
  sessionId: string | null;
  start: number;
  end: number;
  runs: RunView[];
  llmCalls: LlmCallView[];
  toolCalls: ToolCallView[];
  retrievals: RetrievalView[];
  /** Records that are sealed and could not be opened (their subject's key is not here, or was destroyed). */
  erasedRecords: number;
  records: number;
}

/** How sealed content reads on the page (the graph's word for it, too). */
export const ERASED = "[erased]";

const KIND_OF: Record<string, RunKind> = { chain: "chain", llm: "llm", tool: "tool", retriever: "retriever" };

/** Message content as text: content blocks reduced to their text parts. */
export const contentText = (content: unknown): string =>
  Array.isArray(content)
    ? content.map((b) => (typeof b === "object" && b !== null && "text" in b ? String((b as { text: unknown }).text) : JSON.stringify(b))).join(" ")
    : typeof content === "string"
      ? content
      : JSON.stringify(content);

const time = (iso: string) => new Date(iso).getTime();

type Opened = { erased: false; event: AuditEvent } | { erased: true; type: string; runId: string; parentRunId: string | null; occurredAt: string };

function open(record: LedgerRecord): Opened {
  const e = record.event;
  if (isSealed(e)) return { erased: true, type: e.type, runId: e.runId, parentRunId: e.parentRunId, occurredAt: e.occurredAt };
  return { erased: false, event: upcastEvent(e) };
}

/** The trace page's model of one trace's records (all of one tenant's stream, in position order). */
export function traceView(traceId: string, records: readonly LedgerRecord[]): TraceView {
  const runs = new Map<string, RunView>();
  const llm = new Map<string, LlmCallView>();
  const tools = new Map<string, ToolCallView>();
  const retrievals = new Map<string, RetrievalView>();
  let userId: string | null = null;
  let agent: TraceView["agent"] = null;
  let sessionId: string | null = null;
  let erasedRecords = 0;
  let start = Infinity;
  let end = -Infinity;

  const runOf = (kind: RunKind, runId: string, parentRunId: string | null, at: number): RunView => {
    let run = runs.get(runId);
    if (!run) runs.set(runId, (run = { runId, parentRunId, kind, name: null, status: "running", start: at, end: null, depth: 0, erased: false }));
    run.start = Math.min(run.start, at);
    return run;
  };
  const llmOf = (runId: string) => {
    let v = llm.get(runId);
    if (!v)
      llm.set(
        runId,
        (v = {
          runId,
          requested: null,
          served: null,
          messages: null,
          output: null,
          toolCalls: [],
          reasoning: [],
          tokens: null,
          cost: null,
          latencyMs: null,
          error: null,
          erased: false,
        }),
      );
    return v;
  };
  const toolOf = (runId: string) => {
    let v = tools.get(runId);
    if (!v)
      tools.set(
        runId,
        (v = { runId, name: null, toolCallId: null, input: undefined, output: undefined, error: null, status: "running", latencyMs: null, erased: false }),
      );
    return v;
  };
  const retrievalOf = (runId: string, parentRunId: string | null) => {
    let v = retrievals.get(runId);
    if (!v) retrievals.set(runId, (v = { runId, parentRunId, name: null, query: null, documents: [], erased: false }));
    return v;
  };

  for (const record of records) {
    const opened = open(record);
    const type = opened.erased ? opened.type : opened.event.type;
    const [prefix, phase] = type.split(".") as [string, string | undefined];
    const kind = KIND_OF[prefix];
    const at = time(opened.erased ? opened.occurredAt : opened.event.occurredAt);
    if (opened.erased) erasedRecords++;
    else if ("identity" in opened.event && opened.event.identity && type !== "escalation.opened") {
      userId ??= opened.event.identity.user.id;
      agent ??= { ...opened.event.identity.agent };
      sessionId ??= opened.event.sessionId;
    }
    // Flags, escalations and the rest are about runs; only runs' own events make the tree.
    if (!kind || !phase || phase === "token") continue;
    start = Math.min(start, at);
    end = Math.max(end, at);
    const runId = opened.erased ? opened.runId : opened.event.runId;
    const parentRunId = opened.erased ? opened.parentRunId : opened.event.parentRunId;
    const run = runOf(kind, runId, parentRunId, at);
    if (phase === "end" || phase === "error") {
      run.end = at;
      run.status = phase === "end" ? "ok" : "error";
    }
    if (opened.erased) {
      run.erased = true;
      if (kind === "llm") llmOf(runId).erased = true;
      if (kind === "tool") toolOf(runId).erased = true;
      if (kind === "retriever") retrievalOf(runId, parentRunId).erased = true;
      continue;
    }
    const e = opened.event;
    run.name ??= e.name ?? null;
    switch (e.type) {
      case "llm.start": {
        const v = llmOf(runId);
        v.requested = `${e.model.provider}/${e.model.name}`;
        v.messages = e.payload.messages.map((m) => ({
          role: m.role,
          text: [contentText(m.content), ...(m.toolCalls ?? []).map((t) => `→ ${t.name}(${JSON.stringify(t.args)})`)].filter(Boolean).join(" "),
        }));
        run.name ??= e.model.name;
        break;
      }
      case "llm.end": {
        const v = llmOf(runId);
        v.served = e.model.version ?? null;
        v.requested ??= `${e.model.provider}/${e.model.name}`;
        v.output = e.payload.output.text;
        v.toolCalls = e.payload.output.toolCalls.map((t) => ({ id: t.id ?? null, name: t.name, args: t.args }));
        v.reasoning = (e.payload.reasoning ?? []).map((r) => ({ index: r.index, kind: r.kind, text: r.text ?? null, toolCall: r.toolCall ?? null }));
        v.tokens = e.usage ? { input: e.usage.inputTokens, output: e.usage.outputTokens, total: e.usage.totalTokens } : null;
        v.cost = e.cost ? { currency: e.cost.currency, total: e.cost.total } : null;
        v.latencyMs = e.payload.timing?.latencyMs ?? (run.start <= at ? at - run.start : null);
        break;
      }
      case "llm.error":
        llmOf(runId).error = `${e.payload.error.name}: ${e.payload.error.message}`;
        break;
      case "tool.start": {
        const v = toolOf(runId);
        v.name = e.name ?? null;
        v.toolCallId = e.payload.toolCallId ?? null;
        v.input = e.payload.input;
        break;
      }
      case "tool.end": {
        const v = toolOf(runId);
        v.name ??= e.name ?? null;
        v.toolCallId ??= e.payload.toolCallId ?? null;
        v.output = e.payload.output;
        v.status = "ok";
        v.latencyMs = e.payload.timing?.latencyMs ?? at - run.start;
        break;
      }
      case "tool.error": {
        const v = toolOf(runId);
        v.name ??= e.name ?? null;
        v.error = `${e.payload.error.name}: ${e.payload.error.message}`;
        v.status = "error";
        v.latencyMs = at - run.start;
        break;
      }
      case "retriever.start":
        Object.assign(retrievalOf(runId, parentRunId), { name: e.name ?? null, query: e.payload.query });
        break;
      case "retriever.end":
        retrievalOf(runId, parentRunId).documents = e.payload.documents.map((d) => ({ id: d.id ?? null, content: d.pageContent, metadata: d.metadata }));
        break;
      default:
        break;
    }
  }
  // Depth from the parent links: a parent not in the trace (or a cycle a producer made) ends the walk.
  for (const run of runs.values()) {
    let depth = 0;
    const seen = new Set([run.runId]);
    for (let p = run.parentRunId; p !== null && runs.has(p) && !seen.has(p); p = runs.get(p)!.parentRunId) {
      seen.add(p);
      depth++;
    }
    run.depth = depth;
  }
  return {
    traceId,
    userId,
    agent,
    sessionId,
    start: Number.isFinite(start) ? start : 0,
    end: Number.isFinite(end) ? end : 0,
    runs: treeOrder([...runs.values()]),
    llmCalls: [...llm.values()],
    toolCalls: [...tools.values()],
    retrievals: [...retrievals.values()],
    erasedRecords,
    records: records.length,
  };
}

/** Parents before their children, siblings by start: the order the run tree is drawn in. */
function treeOrder(runs: RunView[]): RunView[] {
  const ids = new Set(runs.map((r) => r.runId));
  const children = new Map<string | null, RunView[]>();
  for (const r of runs) {
    const parent = r.parentRunId !== null && ids.has(r.parentRunId) && r.parentRunId !== r.runId ? r.parentRunId : null;
    children.set(parent, [...(children.get(parent) ?? []), r]);
  }
  const out: RunView[] = [];
  const seen = new Set<string>();
  const walk = (parent: string | null) => {
    for (const r of (children.get(parent) ?? []).sort((a, b) => a.start - b.start)) {
      if (seen.has(r.runId)) continue;
      seen.add(r.runId);
      out.push(r);
      walk(r.runId);
    }
  };
  walk(null);
  // Runs on a parent cycle never hang from a root: listed last rather than lost.
  for (const r of runs) if (!seen.has(r.runId)) out.push(r);
  return out;
}

/** A run's place on the timeline, in thousandths of the trace's span (SVG widths: no inline style under the CSP). */
export function timelineBar(view: Pick<TraceView, "start" | "end">, run: Pick<RunView, "start" | "end">): { x: number; w: number } {
  const span = Math.max(1, view.end - view.start);
  const x = Math.round(((run.start - view.start) / span) * 1000);
  const w = Math.max(4, Math.round((((run.end ?? view.end) - run.start) / span) * 1000));
  return { x: Math.min(x, 996), w: Math.min(w, 1000 - Math.min(x, 996)) };
}
