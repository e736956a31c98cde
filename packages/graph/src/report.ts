import type { Lineage } from "./lineage.js";
import { messageText, promptMessages } from "./format.js";

const escape = (s: string): string =>
  s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);

const clip = (s: string, n: number) => (s.length > n ? `${s.slice(0, n - 1)}…` : s);

interface Box {
  id: string;
  x: number;
  y: number;
  label: string;
  sub: string;
  kind: string;
}

const W = 200;
const H = 54;

function diagram(l: Lineage): string {
  const boxes: Box[] = [
    { id: "user", x: 20, y: 20, label: `User ${l.user.id}`, sub: `tenant ${l.user.tenantId}`, kind: "who" },
    { id: "agent", x: 580, y: 20, label: `Agent ${l.agent.name}`, sub: `v${l.agent.version}`, kind: "who" },
    { id: "trace", x: 300, y: 120, label: "Trace", sub: clip(l.trace.id, 28), kind: "trace" },
    { id: "prompt", x: 20, y: 220, label: "Prompt", sub: `sha256 ${l.prompt.hash.slice(0, 12)}…`, kind: "data" },
    { id: "llm", x: 300, y: 220, label: "LLM call", sub: `${l.llmCall.totalTokens ?? 0} tokens`, kind: "call" },
    { id: "output", x: 580, y: 220, label: "Output", sub: clip(l.output.text, 28), kind: "data" },
    { id: "model", x: 300, y: 320, label: `${clip(l.model.provider, 14)}/${clip(l.model.name, 14)}`, sub: `@ ${clip(l.model.version, 24)}`, kind: "model" },
    ...l.toolCalls.map((t, i) => ({
      id: `tool${i}`,
      x: 880,
      y: 120 + i * 80,
      label: `Tool ${t.name ?? "?"}`,
      sub: `${t.status ?? "?"}: ${clip(String(t.output ?? t.error ?? ""), 20)}`,
      kind: t.status === "error" ? "error" : "call",
    })),
  ];
  const at = new Map(boxes.map((b) => [b.id, b]));
  const edges: [string, string, string][] = [
    ["agent", "user", "ACTED_ON_BEHALF_OF"],
    ["trace", "user", "REQUESTED_BY"],
    ["trace", "agent", "HANDLED_BY"],
    ["prompt", "llm", "INPUT_TO"],
    ["llm", "output", "GENERATED"],
    ["llm", "model", "USED_MODEL"],
    ["llm", "trace", "PART_OF"],
    ...l.toolCalls.map((_, i) => ["trace", `tool${i}`, "PART_OF"] as [string, string, string]),
  ];
  const centre = (b: Box) => ({ x: b.x + W / 2, y: b.y + H / 2 });
  const lines = edges.map(([from, to, label]) => {
    const a = centre(at.get(from)!);
    const b = centre(at.get(to)!);
    const dx = b.x - a.x;
    const dy = b.y - a.y;
    // End each line on the boxes' borders, so the arrowheads show.
    const t = Math.min(W / 2 / Math.abs(dx || 1e-9), H / 2 / Math.abs(dy || 1e-9));
    const [x1, y1, x2, y2] = [a.x + dx * t, a.y + dy * t, b.x - dx * t, b.y - dy * t];
    const vertical = Math.abs(dx) < 1;
    const lx = (x1 + x2) / 2 + (vertical ? 6 : 0);
    const ly = (y1 + y2) / 2 + (vertical ? 4 : -4);
    return `<line x1="${x1}" y1="${y1}" x2="${x2}" y2="${y2}" marker-end="url(#arrow)"/><text class="edge${vertical ? " side" : ""}" x="${lx}" y="${ly}">${label}</text>`;
  });
  const nodes = boxes.map(
    (b) =>
      `<g class="${b.kind}"><rect x="${b.x}" y="${b.y}" width="${W}" height="${H}" rx="8"/><text x="${b.x + 10}" y="${b.y + 22}" class="label">${escape(clip(b.label, 30))}</text><text x="${b.x + 10}" y="${b.y + 42}">${escape(b.sub)}</text></g>`,
  );
  const width = l.toolCalls.length ? 1100 : 820;
  const height = Math.max(400, 140 + l.toolCalls.length * 80);
  return `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}">
<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z"/></marker></defs>
<g class="edges">${lines.join("")}</g>${nodes.join("")}</svg>`;
}

/** One self-contained HTML page: the lineage drawn, then every field, then the JSON. */
export function renderLineageHtml(l: Lineage): string {
  const messages = promptMessages(l)
    .map((m) => `<tr><td>${escape(m.role)}</td><td>${escape(messageText(m))}</td></tr>`)
    .join("");
  const tools = l.toolCalls
    .map(
      (t) =>
        `<tr><td>${escape(t.name ?? "?")}</td><td><code>${escape(JSON.stringify(t.input))}</code></td><td><code>${escape(
          JSON.stringify(t.status === "error" ? t.error : t.output),
        )}</code></td><td>${escape(t.status ?? "")}</td></tr>`,
    )
    .join("");
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Lineage of output ${escape(l.output.id)}</title>
<style>
body{font:14px/1.45 system-ui,sans-serif;margin:2rem;color:#1d2330;max-width:1120px}
h1{font-size:1.3rem} h2{font-size:1.05rem;margin-top:2rem}
table{border-collapse:collapse;width:100%} td,th{border:1px solid #d5d9e2;padding:.35rem .5rem;text-align:left;vertical-align:top}
code{font-size:12px;word-break:break-all} .answer{font-size:1.1rem;padding:.8rem 1rem;background:#f3f6fb;border-left:4px solid #3867d6}
svg text{font:12px system-ui,sans-serif;fill:#1d2330} svg .label{font-weight:600}
svg rect{stroke:#5a6478;stroke-width:1.2;fill:#fff} svg .who rect{fill:#fdf1dc} svg .trace rect{fill:#eceff5}
svg .data rect{fill:#e4f3e8} svg .call rect{fill:#e3ecfb} svg .model rect{fill:#f1e6fb} svg .error rect{fill:#fbe3e3}
svg line{stroke:#8a93a6;stroke-width:1.2} svg .edge{font-size:10px;fill:#6b7385;text-anchor:middle} svg .side{text-anchor:start}
svg marker path{fill:#8a93a6}
</style></head><body>
<h1>Lineage of output <code>${escape(l.output.id)}</code></h1>
<p class="answer">${escape(l.output.text)}</p>
<p>Produced by model version <b>${escape(`${l.model.provider}/${l.model.name} @ ${l.model.version}`)}</b> for user
<b>${escape(l.user.id)}</b> of tenant <b>${escape(l.user.tenantId)}</b>; agent <b>${escape(l.agent.name)}</b>
(${escape(l.agent.id)}) v${escape(l.agent.version)} acted on the user's behalf in trace <code>${escape(l.trace.id)}</code>${
    l.trace.sessionId ? `, session <code>${escape(l.trace.sessionId)}</code>` : ""
  }. Recorded ${escape(l.output.recordedAt)}.</p>
${diagram(l)}
<h2>Prompt (${escape(l.prompt.id)})</h2>
<table><tr><th>role</th><th>content</th></tr>${messages}</table>
<h2>Tool calls</h2>
<table><tr><th>tool</th><th>input</th><th>result</th><th>status</th></tr>${tools}</table>
<h2>JSON</h2>
<details><summary>the lineage as read from Neo4j</summary><pre><code>${escape(JSON.stringify(l, null, 2))}</code></pre></details>
</body></html>
`;
}
