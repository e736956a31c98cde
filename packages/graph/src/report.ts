import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import type { Lineage } from "./lineage.js";
import { messageText, promptMessages } from "./format.js";

const escapeHtml = (s: string): string => s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);

const clip = (s: string, n: number) => (s.length > n ? `${s.slice(0, n - 1)}…` : s);

/** The kinds of node drawn, with their colours: the legend and the graph's style come from this one table. */
const KINDS = {
  output: { name: "Output", fill: "#c9ecd4", border: "#2f8f4e" },
  prompt: { name: "Prompt", fill: "#e4f3e8", border: "#5a9a6c" },
  llm: { name: "LLM call", fill: "#e3ecfb", border: "#3867d6" },
  model: { name: "Model version", fill: "#f1e6fb", border: "#8e4fc4" },
  tool: { name: "Tool call", fill: "#e1f3f6", border: "#2a8a9c" },
  toolError: { name: "Tool call (error)", fill: "#fbe3e3", border: "#c0392b" },
  trace: { name: "Trace", fill: "#eceff5", border: "#5a6478" },
  session: { name: "Session", fill: "#f4f5f8", border: "#8a93a6" },
  user: { name: "User", fill: "#fdf1dc", border: "#c98a1b" },
  agent: { name: "Agent / agent version", fill: "#fde6cf", border: "#c4661f" },
} as const;
type Kind = keyof typeof KINDS;

type Props = Record<string, unknown>;
interface GraphNode {
  id: string;
  kind: Kind;
  /** Two lines: what it is, then the identifying value (clipped; the panel has it whole). */
  label: string;
  /** Box width in px, from the label. */
  w: number;
  title: string;
  props: Props;
}
interface GraphEdge {
  id: string;
  source: string;
  target: string;
  label: string;
  props: Props;
}

/** The lineage as a graph: the nodes and relationships of `graph-schema/README.md` that it holds. */
function lineageGraph(l: Lineage): { nodes: GraphNode[]; edges: GraphEdge[] } {
  const nodes: GraphNode[] = [];
  const edges: GraphEdge[] = [];
  const node = (id: string, kind: Kind, head: string, sub: string, title: string, props: Props) => {
    const lines = [clip(head, 28), clip(sub.replace(/\s+/g, " "), 28)];
    const w = Math.min(220, Math.max(110, Math.round(Math.max(...lines.map((s) => s.length)) * 7.4 + 24)));
    nodes.push({ id, kind, label: lines.join("\n"), w, title, props });
    return id;
  };
  const edge = (source: string, target: string, label: string, extra: Props = {}) => {
    const n = nodes.find((x) => x.id === source)!;
    const m = nodes.find((x) => x.id === target)!;
    edges.push({ id: `e${edges.length}`, source, target, label, props: { relationship: label, from: n.title, to: m.title, ...extra } });
  };

  const output = node("output", "output", "Output", l.output.text, `Output ${l.output.id}`, {
    id: l.output.id,
    text: l.output.text,
    recordedAt: l.output.recordedAt,
    position: l.output.position,
  });
  const messages = promptMessages(l);
  const prompt = node("prompt", "prompt", "Prompt", `${messages.length} messages, sha256 ${l.prompt.hash.slice(0, 8)}…`, `Prompt ${l.prompt.id}`, {
    id: l.prompt.id,
    sha256: l.prompt.hash,
    messages: messages.map((m) => `${m.role}: ${messageText(m)}`),
    "messages (as stored)": l.prompt.messages,
  });
  const llm = node("llm", "llm", "LLM call", `${l.llmCall.totalTokens ?? 0} tokens`, `LLM call ${l.llmCall.id}`, {
    id: l.llmCall.id,
    requestedModel: l.llmCall.requestedModel,
    totalTokens: l.llmCall.totalTokens,
    params: l.llmCall.params,
  });
  const model = node("model", "model", `${l.model.provider}/${l.model.name}`, `@ ${l.model.version}`, `Model version ${l.model.version}`, {
    provider: l.model.provider,
    name: l.model.name,
    version: l.model.version,
  });
  const trace = node("trace", "trace", `Trace${l.trace.name ? ` ${l.trace.name}` : ""}`, `${l.trace.status ?? "?"} · ${l.trace.id}`, `Trace ${l.trace.id}`, {
    id: l.trace.id,
    name: l.trace.name,
    status: l.trace.status,
    sessionId: l.trace.sessionId,
  });
  const user = node("user", "user", `User ${l.user.id}`, `tenant ${l.user.tenantId}`, `User ${l.user.id}`, { id: l.user.id, tenantId: l.user.tenantId });
  const agent = node("agent", "agent", "Agent", `${l.agent.name} (${l.agent.id})`, `Agent ${l.agent.id}`, { id: l.agent.id, name: l.agent.name });
  const agentVersion = node("agentVersion", "agent", "Agent version", `${l.agent.name} v${l.agent.version}`, `Agent version ${l.agent.version}`, {
    agentId: l.agent.id,
    name: l.agent.name,
    version: l.agent.version,
  });

  edge(prompt, llm, "INPUT_TO");
  edge(llm, output, "GENERATED");
  edge(llm, model, "USED_MODEL");
  edge(llm, trace, "PART_OF");
  edge(trace, user, "REQUESTED_BY");
  edge(trace, agentVersion, "HANDLED_BY");
  edge(agent, agentVersion, "HAS_VERSION");
  edge(agent, user, "ACTED_ON_BEHALF_OF", { traceId: l.trace.id });
  if (l.trace.sessionId) {
    const session = node("session", "session", "Session", l.trace.sessionId, `Session ${l.trace.sessionId}`, { id: l.trace.sessionId });
    edge(trace, session, "IN_SESSION");
  }
  // The tool calls of the trace; each hangs off the LLM call that requested it: the output's own, or an
  // earlier one of the same trace, of which the lineage knows only the id.
  const requesters = new Map<string, string>([[l.llmCall.id, llm]]);
  l.toolCalls.forEach((t, i) => {
    const result = t.status === "error" ? t.error : t.output;
    const id = node(
      `tool${i}`,
      t.status === "error" ? "toolError" : "tool",
      `Tool call ${t.name ?? "?"}`,
      `${t.status ?? "?"}: ${typeof result === "string" ? result : JSON.stringify(result ?? null)}`,
      `Tool call ${t.name ?? "?"} (${t.callId})`,
      {
        callId: t.callId,
        name: t.name,
        status: t.status,
        input: t.input,
        output: t.output,
        error: t.error,
        requestedBy: t.requestedBy,
      },
    );
    edge(id, trace, "PART_OF");
    if (t.requestedBy) {
      let requester = requesters.get(t.requestedBy);
      if (!requester) {
        requester = node(`llm${requesters.size}`, "llm", "LLM call (earlier)", t.requestedBy, `LLM call ${t.requestedBy}`, {
          id: t.requestedBy,
          note: "an earlier LLM call of this trace, which requested a tool call; the lineage holds only its id",
        });
        requesters.set(t.requestedBy, requester);
        edge(requester, trace, "PART_OF");
      }
      edge(requester, id, "REQUESTED");
    }
  });
  return { nodes, edges };
}

/** JSON that can sit inside a <script> element: no `<`, `>` or `&` in it can end the element. */
const scriptJson = (value: unknown): string =>
  JSON.stringify(value).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);

const require = createRequire(import.meta.url);
let libraries: string[] | undefined;

/**
 * Cytoscape.js and its dagre layout (which bundles @dagrejs/dagre), read from node_modules once, to be
 * inlined: the page works offline and fetches nothing.
 */
function graphLibraries(): string[] {
  libraries ??= [
    require.resolve("cytoscape/dist/cytoscape.min.js"),
    join(dirname(require.resolve("cytoscape-dagre/package.json")), "dist/cytoscape-dagre.min.js"),
  ].map((file) => {
    const code = readFileSync(file, "utf8").replace(/\n\/\/# sourceMappingURL=\S*\s*$/, "\n");
    // Nothing in the code may close its <script> element early.
    return code.replace(/<\/(script)/gi, "<\\/$1");
  });
  return libraries;
}

/** The page's own script: draws the graph from the JSON block, and shows a clicked element's details. */
const APP = `(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("lineage-data").textContent);
  var byId = {};
  data.nodes.forEach(function (n) { byId[n.id] = n; });
  data.edges.forEach(function (e) { byId[e.id] = e; });
  var style = [
    { selector: "node", style: {
      shape: "round-rectangle", width: "data(w)", height: 46, label: "data(label)",
      "text-wrap": "wrap", "text-valign": "center", "text-halign": "center", "font-size": 12,
      "font-family": "system-ui, sans-serif", color: "#1d2330", "border-width": 1.5 } },
    { selector: "node:selected", style: { "border-width": 4, "border-color": "#f39c12" } },
    { selector: "edge", style: {
      width: 1.3, "curve-style": "bezier", "line-color": "#8a93a6", "target-arrow-color": "#8a93a6",
      "target-arrow-shape": "triangle", "arrow-scale": 0.9, label: "data(label)", "font-size": 9,
      "font-family": "system-ui, sans-serif", color: "#4d5566", "text-rotation": "autorotate",
      "text-background-color": "#ffffff", "text-background-opacity": 0.85, "text-background-padding": 2 } },
    { selector: "edge:selected", style: { width: 3, "line-color": "#f39c12", "target-arrow-color": "#f39c12" } }
  ];
  Object.keys(data.kinds).forEach(function (k) {
    style.push({ selector: "node." + k, style: { "background-color": data.kinds[k].fill, "border-color": data.kinds[k].border } });
  });
  style.push({ selector: "node.output", style: { "border-width": 3 } });
  var cy = cytoscape({
    container: document.getElementById("graph"),
    elements: {
      nodes: data.nodes.map(function (n) { return { data: { id: n.id, label: n.label, w: n.w }, classes: n.kind }; }),
      edges: data.edges.map(function (e) { return { data: { id: e.id, source: e.source, target: e.target, label: e.label } }; })
    },
    style: style, minZoom: 0.15, maxZoom: 3, boxSelectionEnabled: false
  });
  window.cy = cy;

  var panel = document.getElementById("details");
  function el(tag, text, cls) {
    var x = document.createElement(tag);
    if (text !== undefined) x.textContent = text;
    if (cls) x.className = cls;
    return x;
  }
  function value(v) {
    if (v === null || v === undefined) return el("span", "—", "none");
    if (typeof v === "string") return el("div", v, "text");
    if (typeof v === "number" || typeof v === "boolean") return el("div", String(v), "text");
    if (Array.isArray(v) && v.every(function (s) { return typeof s === "string"; })) {
      var list = el("ol");
      v.forEach(function (s) { list.appendChild(el("li", s, "text")); });
      return list;
    }
    return el("pre", JSON.stringify(v, null, 2));
  }
  function show(item) {
    panel.replaceChildren(el("h2", item.title));
    var dl = el("dl");
    Object.keys(item.props).forEach(function (k) {
      dl.appendChild(el("dt", k));
      var dd = el("dd");
      dd.appendChild(value(item.props[k]));
      dl.appendChild(dd);
    });
    panel.appendChild(dl);
  }
  var hint = Array.prototype.slice.call(panel.childNodes);
  cy.on("tap", "node, edge", function (e) { show(byId[e.target.id()]); });
  cy.on("tap", function (e) { if (e.target === cy) panel.replaceChildren.apply(panel, hint); });

  var layout = cy.layout({ name: "dagre", rankDir: "TB", nodeSep: 24, rankSep: 70, edgeSep: 12, padding: 24, fit: true });
  layout.one("layoutstop", function () { document.documentElement.setAttribute("data-ready", "true"); });
  layout.run();
  var fit;
  window.addEventListener("resize", function () {
    clearTimeout(fit);
    fit = setTimeout(function () { cy.resize(); cy.fit(undefined, 24); }, 100);
  });
  document.getElementById("fit").addEventListener("click", function () { cy.fit(undefined, 24); });
})();`;

const sha256 = (s: string) => `'sha256-${createHash("sha256").update(s, "utf8").digest("base64")}'`;

/**
 * One self-contained HTML page: the lineage drawn as a graph (Cytoscape.js with a dagre layout, inlined;
 * click a node or relationship for all its properties), then the prompt and tool calls, then the JSON.
 * Every value from the lineage is either escaped HTML text or JSON in a non-executable script block,
 * shown with textContent; a Content-Security-Policy allows only the page's own scripts.
 */
export function renderLineageHtml(l: Lineage): string {
  const graph = lineageGraph(l);
  const data = { outputId: l.output.id, traceId: l.trace.id, kinds: KINDS, ...graph };
  const scripts = [...graphLibraries(), APP];
  const csp = `default-src 'none'; script-src ${scripts.map(sha256).join(" ")}; style-src 'unsafe-inline'; img-src data:`;
  const legend = Object.values(KINDS)
    .map((k) => `<li><span class="swatch" style="background:${k.fill};border-color:${k.border}"></span>${escapeHtml(k.name)}</li>`)
    .join("");
  const messages = promptMessages(l)
    .map((m) => `<tr><td>${escapeHtml(m.role)}</td><td>${escapeHtml(messageText(m))}</td></tr>`)
    .join("");
  const tools = l.toolCalls
    .map(
      (t) =>
        `<tr><td>${escapeHtml(t.name ?? "?")}</td><td><code>${escapeHtml(JSON.stringify(t.input))}</code></td><td><code>${escapeHtml(
          JSON.stringify(t.status === "error" ? t.error : t.output),
        )}</code></td><td>${escapeHtml(t.status ?? "")}</td></tr>`,
    )
    .join("");
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>Lineage of output ${escapeHtml(l.output.id)}</title>
<style>
body{font:14px/1.45 system-ui,sans-serif;margin:0;color:#1d2330}
header,section{padding:0 1.5rem} h1{font-size:1.25rem;margin:1rem 0 .3rem} h2{font-size:1.05rem;margin-top:1.6rem}
.ids{margin:.2rem 0;color:#4d5566} code{font-size:12px;word-break:break-all}
.answer{font-size:1.05rem;padding:.6rem 1rem;background:#f3f6fb;border-left:4px solid #3867d6;margin:.6rem 0;white-space:pre-wrap}
.legend{display:flex;flex-wrap:wrap;gap:.3rem 1.1rem;list-style:none;padding:0;margin:.5rem 0;font-size:12px}
.swatch{display:inline-block;width:14px;height:14px;border:2px solid;border-radius:4px;vertical-align:-3px;margin-right:.35rem}
.view{display:flex;height:68vh;min-height:420px;border-top:1px solid #d5d9e2;border-bottom:1px solid #d5d9e2}
.canvas{position:relative;flex:1;min-width:0;background:#fbfcfe}
#graph{position:absolute;inset:0}
#fit{position:absolute;right:.6rem;top:.6rem;z-index:1;font:12px system-ui,sans-serif}
#details{width:380px;flex:none;overflow:auto;padding:0 1rem 1rem;border-left:1px solid #d5d9e2;background:#fff}
#details h2{font-size:1rem;word-break:break-all} #details .hint{color:#6b7385}
#details dt{font-weight:600;margin-top:.55rem;font-size:12px;color:#4d5566}
#details dd{margin:.1rem 0 0} #details .text{white-space:pre-wrap;word-break:break-word}
#details ol{margin:0;padding-left:1.3rem} #details li{margin-bottom:.25rem}
#details pre{font-size:12px;white-space:pre-wrap;word-break:break-all;background:#f5f6f9;padding:.4rem;margin:0}
#details .none{color:#8a93a6}
table{border-collapse:collapse;width:100%} td,th{border:1px solid #d5d9e2;padding:.35rem .5rem;text-align:left;vertical-align:top}
td{white-space:pre-wrap}
</style></head><body>
<header>
<h1>Lineage of output <code>${escapeHtml(l.output.id)}</code></h1>
<p class="ids">trace <code>${escapeHtml(l.trace.id)}</code>${l.trace.sessionId ? ` · session <code>${escapeHtml(l.trace.sessionId)}</code>` : ""} · recorded ${escapeHtml(l.output.recordedAt)}</p>
<p class="answer">${escapeHtml(l.output.text)}</p>
<p>Produced by model version <b>${escapeHtml(`${l.model.provider}/${l.model.name} @ ${l.model.version}`)}</b> for user
<b>${escapeHtml(l.user.id)}</b> of tenant <b>${escapeHtml(l.user.tenantId)}</b>; agent <b>${escapeHtml(l.agent.name)}</b>
(${escapeHtml(l.agent.id)}) v${escapeHtml(l.agent.version)} acted on the user's behalf.</p>
<ul class="legend">${legend}</ul>
</header>
<div class="view">
<div class="canvas"><div id="graph" role="img" aria-label="lineage graph"></div><button id="fit" type="button">fit</button></div>
<aside id="details" aria-live="polite"><h2>Details</h2><p class="hint">Click a node or a relationship to see all its properties.</p></aside>
</div>
<section>
<h2>Prompt (${escapeHtml(l.prompt.id)})</h2>
<table><tr><th>role</th><th>content</th></tr>${messages}</table>
<h2>Tool calls</h2>
<table><tr><th>tool</th><th>input</th><th>result</th><th>status</th></tr>${tools}</table>
<h2>JSON</h2>
<details><summary>the lineage as read from Neo4j</summary><pre><code>${escapeHtml(JSON.stringify(l, null, 2))}</code></pre></details>
</section>
<script type="application/json" id="lineage-data">${scriptJson(data)}</script>
${scripts.map((s) => `<script>${s}</script>`).join("\n")}
</body></html>
`;
}
