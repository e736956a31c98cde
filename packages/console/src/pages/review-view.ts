import { html, type Html } from "../html.js";

/** A horizontal bar chart as inline SVG (attributes, not styles: the CSP allows no inline style). */
export function barChart(title: string, rows: { label: string; value: number; tone?: "good" | "bad" | "base" | "candidate" }[]): Html {
  const max = Math.max(1e-9, ...rows.map((r) => Math.abs(r.value)));
  const h = 22;
  const shown = (v: number) => (Number.isInteger(v) ? String(v) : v.toFixed(3));
  return html`<figure class="chart"><figcaption>${title}</figcaption><svg width="520" height="${rows.length * h + 4}" role="img" aria-label="${title}">
${rows.map((r, k) => {
  const w = Math.round((Math.abs(r.value) / max) * 300);
  return html`<text x="0" y="${k * h + 15}" class="label">${r.label}</text><rect x="160" y="${k * h + 4}" width="${w}" height="14" class="bar tone-${r.tone ?? "base"}"></rect><text x="${166 + w}" y="${k * h + 15}" class="value">${shown(r.value)}</text>`;
})}
</svg></figure>`;
}

type Part = { op: "same" | "del" | "ins"; text: string };

/**
 * A word-level diff (LCS over words): what the candidate dropped, and what it added. Long texts
 * (a quadratic table) are shown as one removal and one addition instead.
 */
export function wordDiffParts(a: string, b: string): Part[] {
  const x = a.split(/\s+/).filter(Boolean);
  const y = b.split(/\s+/).filter(Boolean);
  if (x.length * y.length > 250_000)
    return [
      { op: "del", text: a },
      { op: "ins", text: b },
    ];
  const dp = Array.from({ length: x.length + 1 }, () => new Uint32Array(y.length + 1));
  for (let i = x.length - 1; i >= 0; i--)
    for (let j = y.length - 1; j >= 0; j--) dp[i]![j] = x[i] === y[j] ? dp[i + 1]![j + 1]! + 1 : Math.max(dp[i + 1]![j]!, dp[i]![j + 1]!);
  const parts: Part[] = [];
  const push = (op: Part["op"], word: string) => {
    const last = parts.at(-1);
    if (last?.op === op) last.text += ` ${word}`;
    else parts.push({ op, text: word });
  };
  let i = 0;
  let j = 0;
  while (i < x.length || j < y.length) {
    if (i < x.length && j < y.length && x[i] === y[j]) {
      push("same", x[i]!);
      i++, j++;
    } else if (j >= y.length || (i < x.length && dp[i + 1]![j]! >= dp[i]![j + 1]!)) push("del", x[i++]!);
    else push("ins", y[j++]!);
  }
  return parts;
}

/** The diff as escaped HTML: removals struck out, additions marked. */
export const wordDiff = (a: string, b: string): Html =>
  html`${wordDiffParts(a, b).map((p, k) => html`${k ? " " : ""}${p.op === "same" ? p.text : p.op === "del" ? html`<del>${p.text}</del>` : html`<ins>${p.text}</ins>`}`)}`;

/** Two tool sequences side by side, step by step, differing steps marked. */
export function toolSequenceDiff(original: readonly string[], candidate: readonly string[]): Html {
  const n = Math.max(original.length, candidate.length);
  if (n === 0) return html`<span class="none">no tool calls</span>`;
  return html`<ol class="tool-seq">${Array.from({ length: n }, (_, k) => {
    const a = original[k];
    const b = candidate[k];
    return html`<li class="${a === b ? "same" : "changed"}">${a === undefined ? html`<span class="none">—</span>` : html`<code>${a}</code>`} → ${b === undefined ? html`<span class="none">—</span>` : html`<code>${b}</code>`}</li>`;
  })}</ol>`;
}

export const percent = (rate: number) => `${(rate * 100).toFixed(1)}%`;
