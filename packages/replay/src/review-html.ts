import { subjectRows, type Review } from "./review.js";

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);

/**
 * Word-level diff (LCS over the words): what the candidate dropped is struck out, what it added
 * is marked. Words are joined by single spaces, a changed run as `<del>old words</del> <ins>new
 * words</ins>`, so the page (and its text) never glues a removed word to an added one.
 */
export function wordDiff(a: string, b: string): string {
  const x = a.split(/\s+/).filter(Boolean);
  const y = b.split(/\s+/).filter(Boolean);
  // Long outputs: an LCS table is quadratic, so beyond this they are shown side by side instead.
  if (x.length * y.length > 250_000) return `<del>${esc(a)}</del><br><ins>${esc(b)}</ins>`;
  const dp = Array.from({ length: x.length + 1 }, () => new Uint32Array(y.length + 1));
  for (let i = x.length - 1; i >= 0; i--)
    for (let j = y.length - 1; j >= 0; j--) dp[i]![j] = x[i] === y[j] ? dp[i + 1]![j + 1]! + 1 : Math.max(dp[i + 1]![j]!, dp[i]![j + 1]!);
  const parts: string[] = [];
  let dropped: string[] = [];
  let added: string[] = [];
  const settle = () => {
    if (dropped.length) parts.push(`<del>${esc(dropped.join(" "))}</del>`);
    if (added.length) parts.push(`<ins>${esc(added.join(" "))}</ins>`);
    dropped = [];
    added = [];
  };
  let i = 0;
  let j = 0;
  while (i < x.length || j < y.length) {
    if (i < x.length && j < y.length && x[i] === y[j]) {
      settle();
      parts.push(esc(x[i]!));
      i++, j++;
    } else if (j >= y.length || (i < x.length && dp[i + 1]![j]! >= dp[i]![j + 1]!)) dropped.push(x[i++]!);
    else added.push(y[j++]!);
  }
  settle();
  return parts.join(" ");
}

/** A horizontal bar chart as inline SVG: no script, no network. */
function bars(title: string, rows: { label: string; value: number; color: string }[]): string {
  const max = Math.max(1, ...rows.map((r) => r.value));
  const h = 22;
  const body = rows
    .map(
      (r, k) =>
        `<text x="0" y="${k * h + 15}" font-size="12">${esc(r.label)}</text><rect x="150" y="${k * h + 4}" width="${(r.value / max) * 300}" height="14" fill="${r.color}"/><text x="${155 + (r.value / max) * 300}" y="${k * h + 15}" font-size="12">${Number.isInteger(r.value) ? r.value : r.value.toFixed(4)}</text>`,
    )
    .join("");
  return `<figure><figcaption>${esc(title)}</figcaption><svg width="520" height="${rows.length * h + 4}" role="img" aria-label="${esc(title)}">${body}</svg></figure>`;
}

/** The review as one self-contained HTML page: summary, charts and each trace's output diff. */
export function reviewHtml(r: Review): string {
  const a = r.aggregate;
  const distances = new Map<number, number>();
  for (const t of r.traces) distances.set(t.trajectory.editDistance, (distances.get(t.trajectory.editDistance) ?? 0) + 1);
  const rows = r.traces
    .map(
      (
        t,
      ) => `<tr class="${t.output.exact && t.trajectory.strict ? "same" : "diff"}"><td><code>${esc(t.originalTraceId)}</code><br><code>${esc(t.replayTraceId)}</code></td>
<td>${t.output.exact ? "exact" : t.output.normalised ? "normalised" : "differs"}</td><td>${t.trajectory.strict ? "strict" : t.trajectory.unordered ? "unordered" : t.trajectory.subset ? "subset" : t.trajectory.superset ? "superset" : "differs"} (${t.trajectory.editDistance})</td>
<td>${t.divergences}</td><td>${t.delta.tokens >= 0 ? "+" : ""}${t.delta.tokens}</td><td>${t.error ? esc(t.error) : ""}</td><td class="out">${wordDiff(t.output.original, t.output.candidate)}</td></tr>`,
    )
    .join("\n");
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>auditgraph replay review</title>
<style>body{font:14px system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;width:100%}td,th{border:1px solid #ccc;padding:4px 6px;vertical-align:top;text-align:left}
tr.diff{background:#fff6f0}del{background:#fdd;text-decoration:line-through}ins{background:#dfd;text-decoration:none}.gate{font-size:1.3em;font-weight:bold}.pass{color:#070}.fail{color:#b00}
figure{display:inline-block;margin:0 2em 1em 0}figcaption{font-weight:bold;margin-bottom:4px}.out{max-width:40em}table.subject{width:auto;margin-bottom:1.5em}</style></head><body>
<h1>Replay review</h1>
<p class="gate ${r.gate.passed ? "pass" : "fail"}">Gate: ${r.gate.passed ? "PASSED" : "FAILED"}</p>
${r.gate.failures.length ? `<ul>${r.gate.failures.map((f) => `<li>${esc(f)}</li>`).join("")}</ul>` : ""}
<h2>Compared</h2><table class="subject"><tbody>
${subjectRows(r)
  .map(([k, v]) => `<tr><th>${esc(k)}</th><td><code>${esc(v)}</code></td></tr>`)
  .join("\n")}
</tbody></table>
${bars(`Final output (of ${a.traces} traces)`, [
  { label: "exact", value: a.outputExact, color: "#4a4" },
  { label: "normalised only", value: a.outputNormalised - a.outputExact, color: "#9c4" },
  { label: "differs", value: a.traces - a.outputNormalised, color: "#d54" },
])}
${bars(
  "Tool trajectory edit distance (traces)",
  [...distances.entries()].sort((x, y) => x[0] - y[0]).map(([d, n]) => ({ label: `distance ${d}`, value: n, color: d === 0 ? "#4a4" : "#d94" })),
)}
${bars("Original vs candidate", [
  { label: "tokens, original", value: a.tokens.original, color: "#88a" },
  { label: "tokens, candidate", value: a.tokens.candidate, color: "#44a" },
  { label: "flags, original", value: a.flags.original, color: "#a88" },
  { label: "flags, candidate", value: a.flags.candidate, color: "#a44" },
  { label: "failed traces", value: a.errors, color: "#b00" },
  { label: "divergences", value: a.divergences, color: "#d94" },
])}
<h2>Traces</h2><table><thead><tr><th>original / replay</th><th>output</th><th>trajectory</th><th>divergences</th><th>Δ tokens</th><th>error</th><th>output diff</th></tr></thead><tbody>
${rows}
</tbody></table></body></html>
`;
}
