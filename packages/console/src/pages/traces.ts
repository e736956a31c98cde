import type { FastifyInstance } from "fastify";
import { z } from "zod";
import { issuesOf } from "@auditgraph/core";
import { investigate, type InvestigationRow } from "@auditgraph/graph";
import { csrfTokenOf, viewerOf } from "../auth.js";
import type { ConsoleContext } from "../context.js";
import { ConsoleError } from "../errors.js";
import { html, type Html } from "../html.js";
import { page } from "../layout.js";
import { requireRole, tenantsOf, type Viewer } from "../viewer.js";
import { traceRoute } from "./trace.js";

export const PAGE_SIZE = 50;

type Row = InvestigationRow<"trace-search">;

const text = z
  .string()
  .trim()
  .max(256)
  .transform((s) => (s === "" ? null : s));
/** `datetime-local` gives no offset: such a time is read as UTC; one with an offset is kept. */
const when = text.pipe(
  z
    .string()
    .regex(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?$/, "must be a date and time (YYYY-MM-DDTHH:MM, UTC)")
    .transform((s) => (/(Z|[+-]\d{2}:\d{2})$/.test(s) ? s : `${s.length === 16 ? `${s}:00` : s}Z`))
    .nullable(),
);

/** The search form, as its query string: strict (a misspelt parameter is refused by name), every field optional. */
export const TraceSearchQuerySchema = z.strictObject({
  tenant: text.optional(),
  user: text.optional(),
  agent: text.optional(),
  version: text.optional(),
  model: text.optional(),
  session: text.optional(),
  since: when.optional(),
  until: when.optional(),
  flag: z.enum(["", "any", "with", "without"]).optional(),
  policy: text.optional(),
  status: z.enum(["", "ok", "error", "unfinished"]).optional(),
  replays: z.enum(["", "1", "on"]).optional(),
  /** The last row of the previous page: `<startedAt>~<traceId>`. */
  before: text.optional(),
  /** Rows per page (at most 100). */
  size: z.coerce.number().int().min(1).max(100).optional(),
});
export type TraceSearchQuery = z.output<typeof TraceSearchQuerySchema>;

const badRequest = (message: string) => new ConsoleError("AUDITGRAPH_E_CONSOLE_BAD_REQUEST", message);

function parseQuery(query: unknown): TraceSearchQuery {
  const parsed = TraceSearchQuerySchema.safeParse(query ?? {});
  if (!parsed.success)
    throw badRequest(
      `search: ${issuesOf(parsed.error)
        .map((i) => `${i.path || "query"}: ${i.message}`)
        .join("; ")}`,
    );
  return parsed.data;
}

/**
 * One page of a search over the viewer's tenants (or the one asked for): each tenant's own
 * keyset page (the `trace-search` investigation, one read transaction each), merged newest first.
 */
export async function searchTraces(ctx: ConsoleContext, viewer: Viewer, q: TraceSearchQuery): Promise<{ rows: Row[]; next: string | null }> {
  const tenants = q.tenant ? [q.tenant] : tenantsOf(viewer);
  if (q.tenant) requireRole(viewer, q.tenant, "viewer", `tenant ${q.tenant}`);
  let before: { at: string; id: string } | null = null;
  if (q.before) {
    const at = q.before.indexOf("~");
    if (at <= 0 || at === q.before.length - 1 || Number.isNaN(Date.parse(q.before.slice(0, at)))) throw badRequest("before: must be <startedAt>~<traceId>");
    before = { at: q.before.slice(0, at), id: q.before.slice(at + 1) };
  }
  if (q.version && !q.agent) throw badRequest("version: give the agent too");
  const pageSize = q.size ?? PAGE_SIZE;
  const params = {
    // One more than the page: whether there is a next page, without counting.
    limit: Math.min(100, pageSize + 1),
    includeReplays: q.replays === "1" || q.replays === "on",
    since: q.since ?? null,
    until: q.until ?? null,
    userId: q.user ?? null,
    agentId: q.agent ?? null,
    agentVersion: q.version ?? null,
    modelVersion: q.model ?? null,
    sessionId: q.session ?? null,
    status: q.status || null,
    flagged: q.flag === "with" || q.flag === "any" ? true : q.flag === "without" ? false : null,
    policyId: q.policy ?? null,
    beforeStartedAt: before?.at ?? null,
    beforeId: before?.id ?? null,
  };
  const pages = await Promise.all(tenants.map((tenantId) => investigate(ctx.graph, "trace-search", { tenantId, ...params })));
  const merged = pages.flat().sort((a, b) => (a.startedAt === b.startedAt ? (a.traceId < b.traceId ? 1 : -1) : a.startedAt < b.startedAt ? 1 : -1));
  const rows = merged.slice(0, pageSize);
  const last = rows.at(-1);
  // A full page of 100 has fetched no extra row: offer the next page, which may be empty.
  const more = merged.length > pageSize || (pageSize === 100 && pages.some((p) => p.length === 100));
  return { rows, next: more && last ? `${last.startedAt}~${last.traceId}` : null };
}

const selected = (on: boolean) => (on ? html` selected` : "");

function searchForm(viewer: Viewer, q: TraceSearchQuery): Html {
  const v = (s: string | null | undefined) => s ?? "";
  const local = (s: string | null | undefined) => (s ? new Date(s).toISOString().slice(0, 16) : "");
  return html`<form class="search" method="get" action="/traces">
<label>Tenant <select name="tenant"><option value="">all my tenants</option>${tenantsOf(viewer).map((t) => html`<option${selected(q.tenant === t)}>${t}</option>`)}</select></label>
<label>User <input name="user" value="${v(q.user)}"></label>
<label>Agent <input name="agent" value="${v(q.agent)}"></label>
<label>Version <input name="version" value="${v(q.version)}" size="8"></label>
<label>Model version <input name="model" value="${v(q.model)}"></label>
<label>Session <input name="session" value="${v(q.session)}"></label>
<label>From <input type="datetime-local" name="since" value="${local(q.since)}"></label>
<label>To <input type="datetime-local" name="until" value="${local(q.until)}"></label>
<label>Flags <select name="flag"><option value="">any</option><option value="with"${selected(q.flag === "with" || q.flag === "any")}>with a flag</option><option value="without"${selected(q.flag === "without")}>without</option></select></label>
<label>Policy <input name="policy" value="${v(q.policy)}"></label>
<label>Status <select name="status"><option value="">any</option>${(["ok", "error", "unfinished"] as const).map((s) => html`<option${selected(q.status === s)}>${s}</option>`)}</select></label>
<label><input type="checkbox" name="replays" value="1"${q.replays ? html` checked` : ""}> include replays and reviews</label>
${q.size ? html`<input type="hidden" name="size" value="${q.size}">` : ""}
<button type="submit">Search</button>
</form>`;
}

function resultsTable(rows: Row[]): Html {
  if (rows.length === 0) return html`<p class="empty">No traces match.</p>`;
  return html`<table class="traces"><thead><tr><th>time</th><th>tenant</th><th>user</th><th>agent</th><th>model</th><th>status</th><th>flags</th><th></th></tr></thead><tbody>
${rows.map(
  (
    r,
  ) => html`<tr class="trace-row" data-trace="${r.traceId}"><td>${r.startedAt}</td><td>${r.tenantId}</td><td>${r.userId ?? (r.operator ? `${r.operator} (operator)` : "—")}</td>
<td>${r.agent ? `${r.agent.id}@${r.agent.version}` : "—"}</td><td>${r.models.map((m) => m.version).join(", ") || "—"}</td>
<td><span class="status status-${r.status ?? "unknown"}">${r.status ?? "unknown"}</span>${r.kind ? html` <span class="kind">${r.kind}</span>` : ""}</td>
<td>${r.flags > 0 ? html`<span class="flags">${r.flags}</span>` : "0"}</td>
<td><a href="/traces/${encodeURIComponent(r.tenantId)}/${encodeURIComponent(r.traceId)}">open</a></td></tr>`,
)}
</tbody></table>`;
}

/** The trace explorer (search, metadata only: no access event) and the trace page. */
export async function tracesRoutes(app: FastifyInstance, ctx: ConsoleContext): Promise<void> {
  app.get("/traces", async (request, reply) => {
    const viewer = viewerOf(request);
    const q = parseQuery(request.query);
    const { rows, next } = await searchTraces(ctx, viewer, q);
    const nextUrl = next
      ? `/traces?${new URLSearchParams({ ...Object.fromEntries(Object.entries(request.query as Record<string, string>).filter(([k]) => k !== "before")), before: next })}`
      : null;
    const body = html`${searchForm(viewer, q)}
${resultsTable(rows)}
${nextUrl ? html`<p class="pager"><a rel="next" href="${nextUrl}">Older traces →</a></p>` : ""}`;
    return reply
      .type("text/html")
      .header("cache-control", "no-store")
      .send(page({ title: "Traces", viewer, csrfToken: csrfTokenOf(reply), section: "traces" }, body).toString());
  });
  await traceRoute(app, ctx);
}
