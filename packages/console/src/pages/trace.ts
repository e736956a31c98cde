import type { FastifyInstance } from "fastify";
import { investigate } from "@auditgraph/graph";
import { csrfTokenOf, viewerOf } from "../auth.js";
import type { ConsoleContext } from "../context.js";
import { notFound } from "../errors.js";
import { html, jsonForScript, type Html } from "../html.js";
import { page } from "../layout.js";
import { requireRole } from "../viewer.js";
import { lineageGraph, type FlagView } from "./lineage-view.js";
import { ERASED, timelineBar, traceView, type TraceView } from "./trace-view.js";

// The trace's flags with their escalations, and the trace's own metadata (tenant-scoped reads).
const FLAGS = `
MATCH (f:PolicyFlag {tenantId: $tenantId, traceId: $traceId})
OPTIONAL MATCH (f)-[:ESCALATED_TO]->(e:Escalation {tenantId: $tenantId})
WITH f, e ORDER BY e.openedAt
RETURN f.id AS id, f.policyId AS policyId, f.policyVersion AS policyVersion, f.severity AS severity, f.action AS action,
       f.outcome AS outcome, f.decision AS decision, f.reason AS reason, f.runId AS runId, f.at AS at,
       collect(CASE WHEN e IS NULL THEN null ELSE e {.id, .state, .severity, .openedAt, .updatedAt, .lastReviewer} END) AS escalations
ORDER BY at, id`;
const META = `
MATCH (t:Trace {tenantId: $tenantId, id: $traceId})
OPTIONAL MATCH (t)-[:REQUESTED_BY]->(u:User {tenantId: $tenantId})
RETURN t.status AS status, t.kind AS kind, t.operator AS operator, u.id AS userId`;

interface Reader {
  actorId: string;
  actorName: string | null;
  via: string;
  action: string;
  at: string;
  ip: string;
}

const json = (v: unknown): string => (v === undefined ? "" : typeof v === "string" ? v : JSON.stringify(v, null, 2));
const ms = (n: number | null) => (n === null ? "—" : n < 1000 ? `${Math.round(n)} ms` : `${(n / 1000).toFixed(2)} s`);
const iso = (t: number) => new Date(t).toISOString();

/** GET /traces/:tenant/:traceId: the access is appended first, then the trace is read out. */
export async function traceRoute(app: FastifyInstance, ctx: ConsoleContext): Promise<void> {
  app.get<{ Params: { tenant: string; traceId: string } }>("/traces/:tenant/:traceId", async (request, reply) => {
    const viewer = viewerOf(request);
    const { tenant, traceId } = request.params;
    const what = `trace ${traceId}`;
    requireRole(viewer, tenant, "viewer", what);
    // Only the tenant's own stream: another tenant's trace of the same id is not this one.
    const records = await ctx.readTrace(tenant, traceId);
    if (records.length === 0) throw notFound(what);
    const view = traceView(traceId, records);
    const [meta] = await ctx.graph.read(META, { tenantId: tenant, traceId });
    const userId = view.userId ?? (meta?.userId as string | null | undefined) ?? null;
    // The read is on record before any of its content leaves: a view that cannot be recorded is not served.
    await ctx.recordAccess(request, viewer, { tenantId: tenant, action: "trace.view", subject: { traceId, ...(userId ? { userId } : {}) } });
    const flags = (await ctx.graph.read(FLAGS, { tenantId: tenant, traceId })) as unknown as FlagView[];
    // Read after this view was recorded (recordAccess projects it): the viewer is on the list.
    const readers: Reader[] = await investigate(ctx.graph, "trace-readers", { tenantId: tenant, traceId, limit: 50 });
    const body = traceBody(tenant, view, flags, readers, {
      status: (meta?.status as string | null | undefined) ?? null,
      kind: (meta?.kind as string | null | undefined) ?? null,
      operator: (meta?.operator as string | null | undefined) ?? null,
    });
    const csrfToken = csrfTokenOf(reply);
    return reply
      .type("text/html")
      .header("cache-control", "no-store")
      .send(page({ title: `Trace ${traceId}`, viewer, csrfToken, section: "traces" }, body).toString());
  });
}

function traceBody(
  tenant: string,
  view: TraceView,
  flags: FlagView[],
  readers: Reader[],
  meta: { status: string | null; kind: string | null; operator: string | null },
): Html {
  const graph = lineageGraph(view, flags);
  const tokens = view.llmCalls.reduce((n, c) => n + (c.tokens?.total ?? 0), 0);
  const costs = view.llmCalls.filter((c) => c.cost);
  const cost = costs.length ? `${costs.reduce((n, c) => n + c.cost!.total, 0).toFixed(6)} ${costs[0]!.cost!.currency}` : "—";
  const toolName = new Map(view.toolCalls.map((t) => [t.runId, t.name]));
  return html`
<dl class="facts">
  <dt>Tenant</dt><dd>${tenant}</dd>
  <dt>User</dt><dd>${view.userId ?? meta.operator ?? "—"}</dd>
  <dt>Agent</dt><dd>${view.agent ? `${view.agent.name} (${view.agent.id}) v${view.agent.version}` : "—"}</dd>
  <dt>Session</dt><dd>${view.sessionId ?? "—"}</dd>
  <dt>Status</dt><dd><span class="status status-${meta.status ?? "unknown"}">${meta.status ?? "unknown"}</span>${meta.kind ? html` <span class="kind">${meta.kind}</span>` : ""}</dd>
  <dt>Started</dt><dd>${view.records ? iso(view.start) : "—"} (${ms(view.end - view.start)})</dd>
  <dt>Tokens / cost</dt><dd>${tokens} / ${cost}</dd>
  <dt>Records</dt><dd>${view.records}${view.erasedRecords ? html` <span class="erased">(${view.erasedRecords} sealed: shown as ${ERASED})</span>` : ""}</dd>
</dl>

<h2>Runs</h2>
<table class="runs">
<thead><tr><th>run</th><th>status</th><th>duration</th><th class="timeline-head">timeline</th></tr></thead>
<tbody>
${view.runs.map((r) => {
  const bar = timelineBar(view, r);
  return html`<tr class="run run-${r.kind}"><td><span class="indent d${Math.min(r.depth, 8)}"></span>${r.kind} <strong>${r.name ?? toolName.get(r.runId) ?? ""}</strong>${r.erased ? html` <span class="erased">${ERASED}</span>` : ""}</td>
<td><span class="status status-${r.status}">${r.status}</span></td><td>${ms(r.end === null ? null : r.end - r.start)}</td>
<td class="timeline"><svg viewBox="0 0 1000 12" preserveAspectRatio="none" role="img" aria-label="${`${r.kind} from ${ms(r.start - view.start)}`}"><rect class="bar bar-${r.kind}" x="${bar.x}" y="1" width="${bar.w}" height="10"></rect></svg></td></tr>`;
})}
</tbody></table>

<h2>Model calls</h2>
${view.llmCalls.length === 0 ? html`<p>None.</p>` : ""}
${view.llmCalls.map(
  (c, i) => html`<section class="llm-call">
<h3>LLM call ${i + 1}: ${c.requested ?? "?"} @ ${c.served ?? "?"}</h3>
<p class="metrics"><span class="tokens">tokens ${c.tokens ? `${c.tokens.input} in / ${c.tokens.output} out / ${c.tokens.total} total` : "—"}</span> · <span class="cost">cost ${c.cost ? `${c.cost.total} ${c.cost.currency}` : "—"}</span> · <span class="latency">latency ${ms(c.latencyMs)}</span></p>
${c.erased && c.messages === null ? html`<p class="erased">${ERASED}</p>` : ""}
${c.messages ? html`<details><summary>Prompt (${c.messages.length} messages)</summary><ol class="messages">${c.messages.map((m) => html`<li><b>${m.role}</b> <span class="text">${m.text}</span></li>`)}</ol></details>` : ""}
${c.reasoning.length ? html`<h4>Reasoning</h4><ol class="reasoning">${c.reasoning.map((s) => html`<li class="step-${s.kind}"><b>${s.kind}</b> ${s.text ?? ""}${s.toolCall ? html` <code>${json(s.toolCall)}</code>` : ""}</li>`)}</ol>` : ""}
${c.output !== null ? html`<h4>Output</h4><pre class="output">${c.output || "(no text)"}</pre>` : ""}
${c.toolCalls.length ? html`<p>Asked for: ${c.toolCalls.map((t) => html`<code>${t.name}(${json(t.args)})</code> `)}</p>` : ""}
${c.error ? html`<p class="error">${c.error}</p>` : ""}
</section>`,
)}

<h2>Tool calls</h2>
${
  view.toolCalls.length === 0
    ? html`<p>None.</p>`
    : html`<table class="tool-calls"><thead><tr><th>tool</th><th>input</th><th>output</th><th>status</th><th>latency</th></tr></thead><tbody>
${view.toolCalls.map(
  (t) => html`<tr class="tool-call"><td>${t.name ?? "?"}${t.toolCallId ? html`<br><small>${t.toolCallId}</small>` : ""}</td>
<td><pre class="tool-input">${t.erased && t.input === undefined ? ERASED : json(t.input)}</pre></td>
<td><pre class="tool-output">${t.error ?? (t.erased && t.output === undefined ? ERASED : json(t.output))}</pre></td>
<td><span class="status status-${t.status}">${t.status}</span></td><td>${ms(t.latencyMs)}</td></tr>`,
)}
</tbody></table>`
}

<h2>Retrieved documents</h2>
${
  view.retrievals.length === 0
    ? html`<p>None.</p>`
    : view.retrievals.map(
        (r) => html`<section class="retrieval"><h3>${r.name ?? "retriever"}: ${r.erased && r.query === null ? ERASED : (r.query ?? "")}</h3>
<ol>${r.documents.map((d) => html`<li>${d.id ? html`<code>${d.id}</code> ` : ""}<span class="text">${d.content}</span> <small>${json(d.metadata)}</small></li>`)}</ol></section>`,
      )
}

<h2>Flags and escalations</h2>
${
  flags.length === 0
    ? html`<p>None.</p>`
    : html`<table class="flags"><thead><tr><th>policy</th><th>severity</th><th>outcome</th><th>reason</th><th>escalations</th></tr></thead><tbody>
${flags.map(
  (
    f,
  ) => html`<tr><td>${f.policyId ?? "?"}@${f.policyVersion ?? "?"}</td><td><span class="sev-${f.severity ?? "low"}">${f.severity ?? "?"}</span></td><td>${f.outcome ?? ""}${f.decision ? ` (${f.decision})` : ""}</td><td>${f.reason ?? ""}</td>
<td>${f.escalations.map((e) => html`<div>${e.state ?? "?"} <small>${e.id}</small>${e.lastReviewer ? html` · by ${e.lastReviewer}` : ""}</div>`)}</td></tr>`,
)}
</tbody></table>`
}

<h2>Lineage</h2>
<div class="lineage"><div id="lineage-graph" class="lineage-canvas"></div><aside id="lineage-details" class="lineage-details"><p class="hint">Click a node for its label.</p></aside></div>
<script type="application/json" id="lineage-data">${jsonForScript(graph)}</script>
<script src="/assets/cytoscape.min.js" defer></script>
<script src="/assets/cytoscape-dagre.min.js" defer></script>
<script src="/assets/lineage.js" defer></script>

<h2>Viewed by</h2>
${
  readers.length === 0
    ? html`<p>No recorded views.</p>`
    : html`<table class="viewed-by"><thead><tr><th>who</th><th>what</th><th>when</th><th>from</th></tr></thead><tbody>
${readers.map((r) => html`<tr><td>${r.actorName ?? r.actorId} <small>(${r.actorId}, ${r.via})</small></td><td>${r.action}</td><td>${r.at}</td><td>${r.ip}</td></tr>`)}
</tbody></table>`
}`;
}
