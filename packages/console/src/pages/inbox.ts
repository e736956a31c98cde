import { createHash } from "node:crypto";
import type { FastifyInstance, FastifyRequest } from "fastify";
import { z } from "zod";
import { ESCALATION_STATES, SEVERITIES, type EscalationState } from "@auditgraph/core";
import { formatDuration, timeLeftOf } from "@auditgraph/worker";
import type { ConsoleContext } from "../context.js";
import { ConsoleError } from "../errors.js";
import { html, type Html } from "../html.js";
import { page } from "../layout.js";
import { csrfTokenOf, viewerOf } from "../auth.js";
import { EscalationFeed } from "../live.js";
import { requireRole, tenantsOf, type Viewer } from "../viewer.js";
import { concernHtml, concernOf, decisionForm, escalationRoutes, severityHtml, timeLeftHtml, type Concern } from "./escalation.js";

/** The most rows one inbox render shows: the oldest of the most severe come first, so the cut drops the least urgent. */
const LIMIT = 200;
/** An inbox stream ends after this long and the browser reconnects (signing in again): a revoked session or role stops streaming. */
const STREAM_LIFETIME_MS = 5 * 60_000;

const optional = <T extends z.ZodType>(schema: T) => z.preprocess((v) => (v === "" ? undefined : v), schema.optional());
const text = z.string().trim().min(1).max(256);

/** The inbox's filters, from the query string (the filter form's fields; the stream's URL adds `since`). Unknown keys are refused. */
export const InboxFiltersSchema = z.strictObject({
  tenant: optional(text),
  severity: optional(z.enum(SEVERITIES)),
  state: optional(z.enum(ESCALATION_STATES)),
  policy: optional(text),
  agent: optional(text),
  /** The list's signature as the page that opens the stream rendered it: the stream sends nothing until it changes. */
  since: optional(z.string().max(64)),
});
export type InboxFilters = z.output<typeof InboxFiltersSchema>;

function filtersOf(query: unknown, viewer: Viewer): InboxFilters {
  const parsed = InboxFiltersSchema.safeParse(query ?? {});
  if (!parsed.success)
    throw new ConsoleError(
      "AUDITGRAPH_E_CONSOLE_BAD_REQUEST",
      `inbox filters: ${parsed.error.issues.map((i) => `${i.path.join(".") || "query"}: ${i.message}`).join("; ")}`,
    );
  // A tenant the viewer has no role in does not exist for them.
  if (parsed.data.tenant !== undefined) requireRole(viewer, parsed.data.tenant, "viewer", `tenant ${parsed.data.tenant}`);
  return parsed.data;
}

/** The filters as a query string (without `since`), for the stream's URL and the decision forms' way back. */
function queryOf(f: InboxFilters): string {
  const q = new URLSearchParams();
  for (const key of ["tenant", "severity", "state", "policy", "agent"] as const) if (f[key] !== undefined) q.set(key, f[key]);
  return q.toString();
}

export interface InboxRow {
  tenantId: string;
  id: string;
  state: EscalationState;
  severity: string;
  policyId: string | null;
  reason: string | null;
  openedAt: string | null;
  updatedAt: string | null;
  traceId: string | null;
  holdId: string | null;
  deadline: string | null;
  defaultDecision: string | null;
  agent: { id: string; name: string | null; version: string } | null;
}

// Only the viewer's tenants; most severe first, then oldest (the order a reviewer works the queue
// in). The agent is the trace's (the escalation event itself is a system event, with no identity).
const INBOX = `
MATCH (e:Escalation)
WHERE e.tenantId IN $tenants AND e.state IN $states
  AND ($severity IS NULL OR e.severity = $severity)
  AND ($policy IS NULL OR e.policyId = $policy)
  AND ($agent IS NULL OR EXISTS { MATCH (:Trace {tenantId: e.tenantId, id: e.traceId})-[:HANDLED_BY]->(v:AgentVersion) WHERE v.agentId = $agent })
WITH e, CASE e.severity WHEN 'critical' THEN 4 WHEN 'high' THEN 3 WHEN 'medium' THEN 2 WHEN 'low' THEN 1 ELSE 0 END AS rank
ORDER BY rank DESC, e.openedAt, e.id
LIMIT $limit
CALL (e) {
  OPTIONAL MATCH (:Trace {tenantId: e.tenantId, id: e.traceId})-[:HANDLED_BY]->(av:AgentVersion)
  RETURN av ORDER BY av.version LIMIT 1
}
RETURN e.tenantId AS tenantId, e.id AS id, e.state AS state, e.severity AS severity, e.policyId AS policyId, e.reason AS reason,
       e.openedAt AS openedAt, e.updatedAt AS updatedAt, e.traceId AS traceId, e.holdId AS holdId, e.deadline AS deadline,
       e.defaultDecision AS defaultDecision,
       CASE WHEN av IS NULL THEN null ELSE {id: av.agentId, name: av.name, version: av.version} END AS agent
ORDER BY rank DESC, openedAt, id`;

export async function listInbox(ctx: ConsoleContext, viewer: Viewer, f: InboxFilters): Promise<InboxRow[]> {
  const tenants = f.tenant !== undefined ? [f.tenant] : tenantsOf(viewer);
  if (tenants.length === 0) return [];
  const rows = await ctx.graph.read(INBOX, {
    tenants,
    states: f.state !== undefined ? [f.state] : ["open", "acknowledged"],
    severity: f.severity ?? null,
    policy: f.policy ?? null,
    agent: f.agent ?? null,
    limit: ctx.graph.int(LIMIT),
  });
  return rows as unknown as InboxRow[];
}

/** What the list shows changed (not the clock): a stream sends a new fragment only then. */
const signatureOf = (rows: InboxRow[]) =>
  createHash("sha256")
    .update(JSON.stringify(rows.map((r) => [r.tenantId, r.id, r.state, r.updatedAt])))
    .digest("hex")
    .slice(0, 32);

const held = (r: InboxRow) => r.holdId !== null && r.traceId !== null;

/**
 * A held call's arguments are audited content: the read is appended (escalation.view) before the
 * list that shows them is sent. `already` holds the ones this page (or stream) recorded before.
 */
async function concernsOf(ctx: ConsoleContext, request: FastifyRequest, viewer: Viewer, rows: InboxRow[], already: Set<string>): Promise<Map<string, Concern>> {
  const out = new Map<string, Concern>();
  // The held calls of a page are read, and their reads recorded, side by side: each waits on the
  // ledger (and the graph), not on the others.
  await Promise.all(
    rows.filter(held).map(async (r) => {
      const records = await ctx.readTrace(r.tenantId, r.traceId!);
      const openedRecord = records.find((x) => x.event.eventId === r.id && x.event.type === "escalation.opened");
      if (!openedRecord || "sealed" in openedRecord.event) return;
      const opened = openedRecord.event as Parameters<typeof concernOf>[1];
      if (opened.tenantId !== r.tenantId) return;
      if (!already.has(r.id)) {
        await ctx.recordAccess(request, viewer, { tenantId: r.tenantId, action: "escalation.view", subject: { escalationId: r.id, traceId: r.traceId! } });
        already.add(r.id);
      }
      out.set(r.id, concernOf(records, opened));
    }),
  );
  return out;
}

const traceHref = (r: InboxRow) => `/traces/${encodeURIComponent(r.tenantId)}/${encodeURIComponent(r.traceId ?? "")}`;
const detailHref = (r: InboxRow) => `/escalations/${encodeURIComponent(r.tenantId)}/${encodeURIComponent(r.id)}`;

/** The list fragment: what the page holds and what a stream swaps in. Every value is escaped (html``). */
export function listHtml(viewer: Viewer, rows: InboxRow[], concerns: Map<string, Concern>, csrfToken: string, next: string, now = Date.now()): Html {
  if (rows.length === 0) return html`<p class="empty">No escalations waiting.</p>`;
  return html`<p class="count">${rows.length === LIMIT ? `the first ${LIMIT}` : rows.length} escalation${rows.length === 1 ? "" : "s"}</p>
<table class="inbox">
<thead><tr><th>Severity</th><th>Policy</th><th>Reason</th><th>Agent</th><th>Trace</th><th>Age</th><th>State</th><th></th></tr></thead>
${rows.map((r) => {
  const concern = concerns.get(r.id);
  const left = timeLeftOf(r.deadline, r.state, now);
  const form = decisionForm(
    viewer,
    { tenantId: r.tenantId, id: r.id, state: r.state, waiting: r.holdId !== null && left !== null && left > 0 },
    csrfToken,
    next,
  );
  return html`<tbody class="escalation${r.holdId ? " held" : ""}" data-escalation-id="${r.id}" data-tenant="${r.tenantId}">
<tr>
  <td>${severityHtml(r.severity)}</td>
  <td><code>${r.policyId ?? "?"}</code></td>
  <td>${r.reason ?? ""}</td>
  <td>${r.agent ? html`${r.agent.name ?? r.agent.id} <span class="muted">${r.agent.id}@${r.agent.version}</span>` : "?"}</td>
  <td>${r.traceId ? html`<a class="trace-link" href="${traceHref(r)}">${r.traceId.slice(0, 8)}</a>` : ""}</td>
  <td>${r.openedAt ? html`<time datetime="${r.openedAt}">${formatDuration(Math.max(0, now - Date.parse(r.openedAt)))}</time>` : ""}</td>
  <td class="state">${r.state}</td>
  <td><a class="details" href="${detailHref(r)}">details</a></td>
</tr>
${
  concern || form
    ? html`<tr class="more"><td colspan="8">${concern ? html`${concernHtml(concern)}${timeLeftHtml(r.deadline, r.state, r.defaultDecision)}` : ""}${form}</td></tr>`
    : ""
}
</tbody>`;
})}
</table>`;
}

function filterForm(viewer: Viewer, f: InboxFilters): Html {
  const option = (value: string, label: string, current: string | undefined) =>
    html`<option value="${value}"${current === value ? html` selected` : ""}>${label}</option>`;
  return html`<form class="filters" method="get" action="/" hx-get="/" hx-select="#inbox-live" hx-target="#inbox-live" hx-swap="outerHTML" hx-push-url="true" hx-trigger="change, submit">
<label>Tenant <select name="tenant">${option("", "all", f.tenant)}${tenantsOf(viewer).map((t) => option(t, t, f.tenant))}</select></label>
<label>Severity <select name="severity">${option("", "any", f.severity)}${[...SEVERITIES].reverse().map((s) => option(s, s, f.severity))}</select></label>
<label>State <select name="state">${option("", "open and acknowledged", f.state)}${ESCALATION_STATES.map((s) => option(s, s, f.state))}</select></label>
<label>Policy <input type="text" name="policy" value="${f.policy ?? ""}" maxlength="256"></label>
<label>Agent <input type="text" name="agent" value="${f.agent ?? ""}" maxlength="256"></label>
<button type="submit">Filter</button>
</form>`;
}

/** GET / (the inbox), GET /inbox/events (its live stream), and the escalation page and decisions. */
export async function inboxRoutes(app: FastifyInstance, ctx: ConsoleContext): Promise<void> {
  const feed = new EscalationFeed({ redis: ctx.redis, log: ctx.log });
  const streams = new Set<() => void>();
  // Streams never end by themselves: ended before the server waits for its connections to close.
  app.addHook("preClose", async () => {
    for (const end of [...streams]) end();
  });
  app.addHook("onClose", async () => feed.close());

  app.get("/", async (request, reply) => {
    const viewer = viewerOf(request);
    const f = filtersOf(request.query, viewer);
    const csrfToken = csrfTokenOf(reply);
    const query = queryOf(f);
    const rows = await listInbox(ctx, viewer, f);
    const concerns = await concernsOf(ctx, request, viewer, rows, new Set());
    const stream = `/inbox/events?${query ? `${query}&` : ""}since=${signatureOf(rows)}`;
    const body = html`${filterForm(viewer, f)}
<div id="inbox-live" hx-ext="sse" sse-connect="${stream}">
<div id="inbox-list" sse-swap="inbox">${listHtml(viewer, rows, concerns, csrfToken, `/${query ? `?${query}` : ""}`)}</div>
</div>
<script src="/assets/inbox.js" defer></script>`;
    return reply
      .type("text/html")
      .header("cache-control", "no-store")
      .send(page({ title: "Escalation inbox", viewer, csrfToken, section: "inbox" }, body).toString());
  });

  app.get("/inbox/events", async (request, reply) => {
    const viewer = viewerOf(request);
    const f = filtersOf(request.query, viewer);
    const csrfToken = csrfTokenOf(reply);
    const query = queryOf(f);
    const next = `/${query ? `?${query}` : ""}`;
    const tenants = f.tenant !== undefined ? [f.tenant] : tenantsOf(viewer);
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-store",
      connection: "keep-alive",
      "x-accel-buffering": "no",
    });
    res.write("retry: 2000\n\n");
    let last = f.since;
    // The held calls whose arguments this stream's page already showed (and recorded).
    let recorded: Set<string> | undefined = f.since === undefined ? new Set() : undefined;
    let running = false;
    let again = false;
    let ended = false;
    const render = async () => {
      if (running) return void (again = true);
      running = true;
      try {
        do {
          again = false;
          const rows = await listInbox(ctx, viewer, f);
          const signature = signatureOf(rows);
          if (recorded === undefined) recorded = new Set(signature === f.since ? rows.filter(held).map((r) => r.id) : []);
          if (ended) break;
          if (signature === last) {
            // Also the keep-alive: a proxy does not cut a quiet stream.
            res.write(": unchanged\n\n");
            continue;
          }
          const concerns = await concernsOf(ctx, request, viewer, rows, recorded);
          if (ended) break;
          const fragment = listHtml(viewer, rows, concerns, csrfToken, next).toString();
          // One `data:` line per line of the fragment. SSE breaks lines at CR too: a CR in recorded
          // text split only at LF would start a field of its own (an injected `event:`).
          res.write(
            `event: inbox\n${fragment
              .split(/\r\n|\r|\n/)
              .map((line) => `data: ${line}`)
              .join("\n")}\n\n`,
          );
          last = signature;
        } while (again && !ended);
      } catch (error) {
        ctx.log.warn({ error: (error as Error).message }, "inbox stream: could not render the list (the next change or poll tries again)");
      } finally {
        running = false;
      }
    };
    const stop = feed.listen(tenants, () => void render());
    const lifetime = setTimeout(() => end(), STREAM_LIFETIME_MS);
    const end = () => {
      if (ended) return;
      ended = true;
      stop();
      clearTimeout(lifetime);
      streams.delete(end);
      res.end();
    };
    streams.add(end);
    // The browser went away (or the connection broke): stop listening.
    res.on("close", end);
    res.on("error", end);
    // A change between the page's render and this subscription is not missed: look once now.
    void render();
    return reply;
  });

  await escalationRoutes(app, ctx);
}
