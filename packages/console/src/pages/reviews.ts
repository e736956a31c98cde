import type { FastifyInstance } from "fastify";
import { z } from "zod";
import { issuesOf } from "@auditgraph/core";
import { investigate, type InvestigationRow } from "@auditgraph/graph";
import { csrfTokenOf, viewerOf } from "../auth.js";
import type { ConsoleContext } from "../context.js";
import { ConsoleError, notFound } from "../errors.js";
import { html, type Html } from "../html.js";
import { page } from "../layout.js";
import { requireRole, tenantsOf } from "../viewer.js";
import { barChart, percent, toolSequenceDiff, wordDiff } from "./review-view.js";

type ReviewRow = InvestigationRow<"compare-agent-versions">;

// One review (the Review node the projection made from its `auditgraph.review` event), tenant-scoped.
const REVIEW = `
MATCH (rv:Review {tenantId: $tenantId, id: $reviewId})-[:CANDIDATE]->(c:AgentVersion {tenantId: $tenantId})
OPTIONAL MATCH (rv)-[:BASELINE]->(b:AgentVersion {tenantId: $tenantId})
OPTIONAL MATCH (rv)-[:OF_SNAPSHOT]->(s:Snapshot {tenantId: $tenantId})
RETURN rv {.id, .at, .operator, .traces, .outputMatchRate, .trajectoryMatchRate, .divergences, .errors, .tokensOriginal, .tokensCandidate, .gatePassed} AS review,
       c.agentId AS agentId, c.version AS candidateVersion, collect(DISTINCT b.version) AS baselineVersions, s.id AS snapshotId`;

// The candidate's replay runs this review compared: runs of the candidate version up to the review,
// after the candidate's previous review (a review event records counts only; the runs hold the
// outputs and tool calls), each with the recorded trace it replays. Final output: the last Output
// of the trace; tool sequence: its tool runs in the order they started.
const REPLAYS = `
MATCH (rv:Review {tenantId: $tenantId, id: $reviewId})-[:CANDIDATE]->(c:AgentVersion {tenantId: $tenantId})
OPTIONAL MATCH (prev:Review {tenantId: $tenantId})-[:CANDIDATE]->(c) WHERE prev.at < rv.at
WITH rv, c, max(prev.at) AS after
MATCH (r:Trace {tenantId: $tenantId})-[:HANDLED_BY]->(c)
WHERE r.kind = 'replay' AND r.startedAt <= rv.at AND (after IS NULL OR r.startedAt > after)
MATCH (r)-[:REPLAY_OF]->(o:Trace {tenantId: $tenantId})
CALL (o, r) {
  UNWIND [o, r] AS t
  CALL (t) {
    OPTIONAL MATCH (x:Output {tenantId: $tenantId, traceId: t.id})
    WITH x ORDER BY x.position DESC LIMIT 1
    RETURN x.text AS output
  }
  CALL (t) {
    OPTIONAL MATCH (call:ToolCall {tenantId: $tenantId})-[:PART_OF]->(t) WHERE call.status <> 'requested'
    WITH call ORDER BY call.startedAt, call.startEventId
    RETURN collect({name: call.name, input: call.input}) AS tools
  }
  RETURN collect({output: output, tools: tools}) AS pair
}
RETURN o.id AS originalTraceId, r.id AS replayTraceId, pair[0].output AS originalOutput, pair[1].output AS candidateOutput,
       pair[0].tools AS originalTools, pair[1].tools AS candidateTools
ORDER BY o.startedAt, o.id
LIMIT 200`;

/** A tool run as `name(input)`: the input as the tool got it (a string input unquoted). */
const steps = (tools: unknown): string[] =>
  (tools as { name: string | null; input: string | null }[]).map((t) => {
    let input: unknown = t.input;
    try {
      input = t.input === null ? "" : JSON.parse(t.input);
    } catch {
      // Not JSON text: shown as stored.
    }
    return `${t.name ?? "?"}(${typeof input === "string" ? input : JSON.stringify(input)})`;
  });

const badRequest = (message: string) => new ConsoleError("AUDITGRAPH_E_CONSOLE_BAD_REQUEST", message);
const text = z.string().trim().min(1).max(256);

function reviewsTable(tenantId: string, rows: ReviewRow[]): Html {
  return html`<table class="reviews"><thead><tr><th>when</th><th>candidate</th><th>baseline</th><th>traces</th><th>output match</th><th>trajectory match</th><th>divergences</th><th>errors</th><th>gate</th><th></th></tr></thead><tbody>
${rows.map(
  (
    r,
  ) => html`<tr class="review-row"><td>${r.at}</td><td>${r.agentId}@${r.candidateVersion}</td><td>${r.baselineVersions.join(", ") || "—"}</td><td>${r.traces}</td>
<td>${percent(r.outputMatchRate)}</td><td>${percent(r.trajectoryMatchRate)}</td><td>${r.divergences}</td><td>${r.errors}</td>
<td><span class="${r.gatePassed ? "gate-pass" : "gate-fail"}">${r.gatePassed ? "passed" : "failed"}</span></td>
<td><a href="/reviews/${encodeURIComponent(tenantId)}/${encodeURIComponent(r.reviewId)}">open</a></td></tr>`,
)}
</tbody></table>`;
}

/** Replay reviews per agent, one review's page (its charts and the diffs of its replay runs), and two versions compared. */
export async function reviewsRoutes(app: FastifyInstance, ctx: ConsoleContext): Promise<void> {
  app.get("/reviews", async (request, reply) => {
    const viewer = viewerOf(request);
    const sections = await Promise.all(
      tenantsOf(viewer).map(async (tenantId) => {
        const rows = await investigate(ctx.graph, "compare-agent-versions", { tenantId, limit: 500 });
        const byAgent = new Map<string, ReviewRow[]>();
        for (const r of rows) byAgent.set(r.agentId, [...(byAgent.get(r.agentId) ?? []), r]);
        return { tenantId, byAgent: [...byAgent].sort(([a], [b]) => a.localeCompare(b)) };
      }),
    );
    const body = html`${sections.every((s) => s.byAgent.length === 0) ? html`<p class="empty">No replay reviews yet (<code>auditgraph replay … --review</code> records them).</p>` : ""}
${sections.map((s) =>
  s.byAgent.map(([agentId, rows]) => {
    const versions = [...new Set(rows.map((r) => r.candidateVersion))];
    return html`<section class="agent-reviews"><h2>${agentId} <small>tenant ${s.tenantId}</small></h2>
${reviewsTable(s.tenantId, rows)}
${
  versions.length >= 2
    ? html`<form class="compare" method="get" action="/reviews/compare"><input type="hidden" name="tenant" value="${s.tenantId}"><input type="hidden" name="agent" value="${agentId}">
Compare <select name="a">${versions.map((v, k) => html`<option${k === 1 ? html` selected` : ""}>${v}</option>`)}</select> with <select name="b">${versions.map((v, k) => html`<option${k === 0 ? html` selected` : ""}>${v}</option>`)}</select> <button type="submit">Compare</button></form>`
    : ""
}
</section>`;
  }),
)}`;
    return reply
      .type("text/html")
      .header("cache-control", "no-store")
      .send(page({ title: "Replay reviews", viewer, csrfToken: csrfTokenOf(reply), section: "reviews" }, body).toString());
  });

  app.get("/reviews/compare", async (request, reply) => {
    const viewer = viewerOf(request);
    const parsed = z.strictObject({ tenant: text, agent: text, a: text, b: text }).safeParse(request.query ?? {});
    if (!parsed.success)
      throw badRequest(
        `compare: ${issuesOf(parsed.error)
          .map((i) => `${i.path}: ${i.message}`)
          .join("; ")}`,
      );
    const { tenant, agent, a, b } = parsed.data;
    requireRole(viewer, tenant, "viewer", `tenant ${tenant}`);
    const [ra, rb] = await Promise.all(
      [a, b].map((version) => investigate(ctx.graph, "compare-agent-versions", { tenantId: tenant, agentId: agent, version, limit: 200 })),
    );
    const latestAs = (rows: ReviewRow[], v: string) => rows.find((r) => r.candidateVersion === v);
    const head = [latestAs(ra!, a), latestAs(rb!, b)];
    const direct = rb!.filter(
      (r) => (r.candidateVersion === b && r.baselineVersions.includes(a)) || (r.candidateVersion === a && r.baselineVersions.includes(b)),
    );
    const metric = (label: string, f: (r: ReviewRow) => number) =>
      barChart(
        label,
        head.flatMap((r, k) => (r ? [{ label: `${[a, b][k]} (as candidate)`, value: f(r), tone: k === 0 ? ("base" as const) : ("candidate" as const) }] : [])),
      );
    const body = html`<p>Agent <strong>${agent}</strong> of tenant ${tenant}: version <strong>${a}</strong> against <strong>${b}</strong>, from their latest replay reviews as candidate.</p>
${head.some(Boolean) ? html`${metric("Output match rate", (r) => r.outputMatchRate)}${metric("Trajectory match rate", (r) => r.trajectoryMatchRate)}${metric("Divergences", (r) => r.divergences)}${metric("Failed traces", (r) => r.errors)}` : html`<p class="empty">Neither version has been reviewed as a candidate.</p>`}
<h2>Reviews comparing ${a} and ${b} directly</h2>
${direct.length ? reviewsTable(tenant, direct) : html`<p class="empty">None.</p>`}
<h2>Every review of ${a}</h2>${reviewsTable(tenant, ra!)}
<h2>Every review of ${b}</h2>${reviewsTable(tenant, rb!)}`;
    return reply
      .type("text/html")
      .header("cache-control", "no-store")
      .send(page({ title: `Compare ${agent} ${a} and ${b}`, viewer, csrfToken: csrfTokenOf(reply), section: "reviews" }, body).toString());
  });

  app.get<{ Params: { tenant: string; id: string } }>("/reviews/:tenant/:id", async (request, reply) => {
    const viewer = viewerOf(request);
    const { tenant, id } = request.params;
    const what = `review ${id}`;
    requireRole(viewer, tenant, "viewer", what);
    const [found] = await ctx.graph.read(REVIEW, { tenantId: tenant, reviewId: id });
    if (!found) throw notFound(what);
    const replays = await ctx.graph.read(REPLAYS, { tenantId: tenant, reviewId: id });
    // The page shows replayed outputs and tool calls (audited content): on record before it is sent.
    await ctx.recordAccess(request, viewer, { tenantId: tenant, action: "review.view", subject: { reviewId: id } });
    const rv = found.review as Record<string, number | string | boolean | null>;
    const num = (k: string) => (typeof rv[k] === "number" ? (rv[k] as number) : 0);
    const traces = num("traces");
    const outputMatched = Math.round(num("outputMatchRate") * traces);
    const trajectoryMatched = Math.round(num("trajectoryMatchRate") * traces);
    const body = html`<p class="gate ${rv.gatePassed ? "gate-pass" : "gate-fail"}">Gate: ${rv.gatePassed ? "PASSED" : "FAILED"}</p>
<dl class="facts"><dt>Agent</dt><dd>${String(found.agentId)}</dd><dt>Candidate</dt><dd>${String(found.candidateVersion)}</dd>
<dt>Baseline</dt><dd>${(found.baselineVersions as string[]).join(", ") || "—"}</dd><dt>Snapshot</dt><dd><code>${String(found.snapshotId ?? "—")}</code></dd>
<dt>Operator</dt><dd>${String(rv.operator ?? "—")}</dd><dt>When</dt><dd>${String(rv.at ?? "")}</dd></dl>
${barChart(`Final output (of ${traces} traces)`, [
  { label: "matches", value: outputMatched, tone: "good" },
  { label: "differs", value: traces - outputMatched, tone: "bad" },
])}
${barChart("Tool trajectory", [
  { label: "matches", value: trajectoryMatched, tone: "good" },
  { label: "differs", value: traces - trajectoryMatched, tone: "bad" },
])}
${barChart("Original vs candidate", [
  { label: "tokens, original", value: num("tokensOriginal"), tone: "base" },
  { label: "tokens, candidate", value: num("tokensCandidate"), tone: "candidate" },
  { label: "divergences", value: num("divergences"), tone: "bad" },
  { label: "failed traces", value: num("errors"), tone: "bad" },
])}
<h2>Replay runs</h2>
${
  replays.length === 0
    ? html`<p class="empty">No replay runs of this candidate are in the graph.</p>`
    : html`<table class="replays"><thead><tr><th>original / replay</th><th>output (original → candidate)</th><th>tool calls</th></tr></thead><tbody>
${replays.map((r) => {
  const a = (r.originalOutput as string | null) ?? "";
  const b = (r.candidateOutput as string | null) ?? "";
  return html`<tr class="${a === b ? "same" : "diff"}"><td><a href="/traces/${encodeURIComponent(tenant)}/${encodeURIComponent(String(r.originalTraceId))}"><code>${String(r.originalTraceId)}</code></a><br><a href="/traces/${encodeURIComponent(tenant)}/${encodeURIComponent(String(r.replayTraceId))}"><code>${String(r.replayTraceId)}</code></a></td>
<td class="diff-text">${wordDiff(a, b)}</td><td>${toolSequenceDiff(steps(r.originalTools), steps(r.candidateTools))}</td></tr>`;
})}
</tbody></table>`
}`;
    return reply
      .type("text/html")
      .header("cache-control", "no-store")
      .send(page({ title: `Review ${id}`, viewer, csrfToken: csrfTokenOf(reply), section: "reviews" }, body).toString());
  });
}
