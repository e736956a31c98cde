import type { TraceView } from "./trace-view.js";

/** A policy flag on the trace and its escalations, as the graph holds them. */
export interface FlagView {
  id: string;
  policyId: string | null;
  policyVersion: string | null;
  severity: string | null;
  action: string | null;
  outcome: string | null;
  decision: string | null;
  reason: string | null;
  runId: string | null;
  at: string | null;
  escalations: { id: string; state: string | null; severity: string | null; openedAt: string | null; updatedAt: string | null; lastReviewer: string | null }[];
}

export interface LineageNode {
  id: string;
  kind: "trace" | "user" | "agent" | "session" | "llm" | "model" | "output" | "tool" | "toolError" | "retrieval" | "document" | "flag" | "escalation";
  label: string;
}
export interface LineageEdge {
  id: string;
  source: string;
  target: string;
  label: string;
}

const clip = (s: string, n = 30) => (s.length > n ? `${s.slice(0, n - 1)}…` : s);

/**
 * The trace's lineage as the graph model draws it (see graph-schema/README.md): who asked, which
 * agent version, every model call with its model version and output, the tool calls they asked
 * for, retrievals and their documents, flags and escalations. Labels are text; public/lineage.js
 * hands them to Cytoscape, which draws them on a canvas (never as HTML).
 */
export function lineageGraph(view: TraceView, flags: readonly FlagView[]): { nodes: LineageNode[]; edges: LineageEdge[] } {
  const nodes: LineageNode[] = [];
  const edges: LineageEdge[] = [];
  const ids = new Set<string>();
  const node = (id: string, kind: LineageNode["kind"], label: string) => {
    if (!ids.has(id)) nodes.push({ id, kind, label });
    ids.add(id);
    return id;
  };
  const edge = (source: string, target: string, label: string) => edges.push({ id: `e${edges.length}`, source, target, label });

  const trace = node("trace", "trace", `Trace\n${clip(view.traceId)}`);
  if (view.userId !== null) edge(trace, node("user", "user", `User\n${clip(view.userId)}`), "REQUESTED_BY");
  if (view.agent) edge(trace, node("agent", "agent", `${clip(view.agent.name)}\nv${clip(view.agent.version)}`), "HANDLED_BY");
  if (view.sessionId) edge(trace, node("session", "session", `Session\n${clip(view.sessionId)}`), "IN_SESSION");

  const byCallId = new Map<string, string>();
  view.llmCalls.forEach((c, i) => {
    const id = node(`llm:${c.runId}`, "llm", `LLM call ${i + 1}\n${c.erased ? "[erased]" : `${c.tokens?.total ?? "?"} tokens`}`);
    edge(id, trace, "PART_OF");
    if (c.served || c.requested)
      edge(id, node(`model:${c.requested}@${c.served}`, "model", `${clip(c.requested ?? "?")}\n@ ${clip(c.served ?? "?")}`), "USED_MODEL");
    if (c.output !== null) edge(id, node(`output:${c.runId}`, "output", `Output\n${clip(c.output.replace(/\s+/g, " ")) || "(tool calls)"}`), "GENERATED");
    for (const t of c.toolCalls) if (t.id) byCallId.set(t.id, id);
  });
  for (const t of view.toolCalls) {
    const id = node(`tool:${t.runId}`, t.status === "error" ? "toolError" : "tool", `Tool call\n${clip(t.name ?? "?")}${t.erased ? " [erased]" : ""}`);
    edge(id, trace, "PART_OF");
    const asker = t.toolCallId ? byCallId.get(t.toolCallId) : undefined;
    if (asker) edge(asker, id, "REQUESTED");
  }
  view.retrievals.forEach((r) => {
    const id = node(`retrieval:${r.runId}`, "retrieval", `Retrieval\n${clip(r.query ?? r.name ?? "?")}`);
    const tool = r.parentRunId !== null && ids.has(`tool:${r.parentRunId}`) ? `tool:${r.parentRunId}` : null;
    if (tool) edge(tool, id, "CALLED");
    else edge(id, trace, "PART_OF");
    for (const [rank, d] of r.documents.entries())
      edge(id, node(`doc:${d.id ?? `${r.runId}#${rank}`}`, "document", `Document\n${clip(d.id ?? d.content)}`), "RETURNED");
  });
  for (const f of flags) {
    const on =
      (f.runId !== null && [`llm:${f.runId}`, `tool:${f.runId}`, `retrieval:${f.runId}`].find((x) => ids.has(x))) ||
      (f.runId !== null && ids.has(`output:${f.runId}`) ? `output:${f.runId}` : null) ||
      trace;
    const id = node(`flag:${f.id}`, "flag", `Flag ${clip(f.policyId ?? "?", 24)}\n${f.severity ?? "?"} · ${f.outcome ?? "?"}`);
    edge(on, id, "FLAGGED");
    for (const e of f.escalations) edge(id, node(`escalation:${e.id}`, "escalation", `Escalation\n${e.state ?? "?"}`), "ESCALATED_TO");
  }
  return { nodes, edges };
}
