import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { z } from "zod";
import {
  EscalationTransitionError,
  canTransition,
  isSealed,
  upcastEvent,
  type AuditEvent,
  type EscalationState,
  type EventOf,
  type LedgerRecord,
} from "@auditgraph/core";
import type { Ledger } from "@auditgraph/ledger";
import { EscalationNotFoundError, formatDuration, readEscalation, timeLeftOf, transitionEscalation } from "@auditgraph/worker";
import type { ConsoleContext } from "../context.js";
import { ConsoleError, notFound } from "../errors.js";
import { html, type Html } from "../html.js";
import { page } from "../layout.js";
import { csrfTokenOf, safeNext, viewerOf } from "../auth.js";
import { hasRole, requireRole, type Viewer } from "../viewer.js";

/** The console's verbs: the CLI's four, and approve / deny, which resolve / dismiss a held call with that decision. */
export const VERBS = {
  ack: { to: "acknowledged", label: "Acknowledge" },
  resolve: { to: "resolved", label: "Resolve" },
  dismiss: { to: "dismissed", label: "Dismiss" },
  reopen: { to: "open", label: "Reopen" },
  approve: { to: "resolved", label: "Approve", holdDecision: "allow" },
  deny: { to: "dismissed", label: "Deny", holdDecision: "deny" },
} as const satisfies Record<string, { to: EscalationState; label: string; holdDecision?: "allow" | "deny" }>;
export type Verb = keyof typeof VERBS;
const VerbSchema = z.enum(Object.keys(VERBS) as [Verb, ...Verb[]]);

/** Ids are UUIDv7s; anything else is no escalation (404, like another tenant's id). */
export const EscalationIdSchema = z.uuidv7();

/** A policy finding on the concerned run, as the ledger has it. */
export interface FlagSummary {
  eventId: string;
  policyId: string;
  severity: string;
  outcome: string;
  decision?: string;
}

/** What an escalation is about, read from its trace in the ledger: the call (tool and arguments as recorded), who ran it, the flags. */
export interface Concern {
  tool: string | null;
  /** The arguments as recorded (JSON pretty-printed when it is JSON); rendered as text, never markup. */
  args: string | null;
  agent: { id: string; name: string; version: string } | null;
  flags: FlagSummary[];
  /** The concerned event is sealed for its data subject (the console holds no key store): not shown. */
  sealed: boolean;
}

const asEvent = (record: LedgerRecord): AuditEvent | undefined => (isSealed(record.event) ? undefined : upcastEvent(record.event));

function pretty(value: unknown): string {
  if (typeof value === "string") {
    try {
      return JSON.stringify(JSON.parse(value), null, 2);
    } catch {
      return value;
    }
  }
  return JSON.stringify(value, null, 2) ?? "";
}

/** The concern of `opened`, from the records of its trace (one ledger read serves the escalation and its call). */
export function concernOf(records: LedgerRecord[], opened: EventOf<"escalation.opened">): Concern {
  const c = opened.payload.concerns;
  // Trace ids are unique within a tenant only: just the escalation's own stream (a trace never spans shards).
  const streamId = records.find((r) => r.event.eventId === opened.eventId)?.streamId;
  records = records.filter((r) => r.streamId === streamId);
  const byId = new Map(records.map((r) => [r.event.eventId, r]));
  const concerned = c.eventId ? byId.get(c.eventId) : undefined;
  const event = concerned && asEvent(concerned);
  const out: Concern = { tool: null, args: null, agent: null, flags: [], sealed: concerned !== undefined && event === undefined };
  if (event && "identity" in event) out.agent = event.identity.agent;
  if (event?.type === "tool.start") {
    out.tool = event.name ?? null;
    out.args = pretty(event.payload.input);
  } else if (event?.type === "llm.end" && event.payload.output.toolCalls.length > 0) {
    out.tool = event.payload.output.toolCalls.map((t) => t.name).join(", ");
    out.args = pretty(event.payload.output.toolCalls.map((t) => ({ name: t.name, args: t.args })));
  }
  // The flags that opened it, and the later ones on the same run (a held call's outcome).
  const flagIds = new Set(opened.payload.flagEventIds);
  for (const r of records) {
    const e = asEvent(r);
    if (e?.type !== "policy.flag" || !(flagIds.has(e.eventId) || e.runId === c.runId)) continue;
    out.flags.push({
      eventId: e.eventId,
      policyId: e.payload.policyId,
      severity: e.payload.severity,
      outcome: e.payload.outcome,
      ...(e.payload.decision ? { decision: e.payload.decision } : {}),
    });
  }
  return out;
}

/** A held call's wait, counted down in the browser (public/inbox.js) from `data-deadline`. */
export function timeLeftHtml(deadline: string | null, state: EscalationState, defaultDecision: string | null): Html | "" {
  const left = timeLeftOf(deadline, state);
  if (left === null) return "";
  const text = left <= 0 ? `expired (${defaultDecision ?? "default"} taken)` : `time left ${formatDuration(left)} (then ${defaultDecision ?? "default"})`;
  return html`<span class="time-left" data-deadline="${deadline}" data-default="${defaultDecision ?? ""}">${text}</span>`;
}

export const severityHtml = (severity: string) => html`<span class="sev sev-${severity}">${severity}</span>`;

/** The held call (or other concern): tool, arguments as recorded (escaped), flags. */
export function concernHtml(concern: Concern): Html {
  return html`<div class="concern">
${concern.sealed ? html`<p class="muted">The concerned event is sealed for its data subject.</p>` : ""}
${concern.tool ? html`<div class="call">tool <code class="tool">${concern.tool}</code></div>` : ""}
${concern.args !== null ? html`<pre class="args">${concern.args}</pre>` : ""}
${
  concern.flags.length > 0
    ? html`<ul class="flags">${concern.flags.map((f) => html`<li>${severityHtml(f.severity)} <code>${f.policyId}</code> ${f.outcome}${f.decision ? html` (${f.decision})` : ""}</li>`)}</ul>`
    : ""
}
</div>`;
}

/** The verbs a reviewer may use on an escalation in this state (approve / deny while a held call still waits). */
export function verbsFor(state: EscalationState, waiting: boolean): Verb[] {
  if (state === "resolved" || state === "dismissed") return ["reopen"];
  const decide: Verb[] = waiting ? ["approve", "deny"] : ["resolve", "dismiss"];
  return state === "open" ? [...decide, "ack"] : decide;
}

/** The decision form: a reason (required) and one button per verb; reviewers only (viewers get nothing to press). */
export function decisionForm(
  viewer: Viewer,
  e: { tenantId: string; id: string; state: EscalationState; waiting: boolean },
  csrfToken: string,
  next: string,
): Html | "" {
  if (!hasRole(viewer, e.tenantId, "reviewer")) return "";
  const base = `/escalations/${encodeURIComponent(e.tenantId)}/${encodeURIComponent(e.id)}`;
  const verbs = verbsFor(e.state, e.waiting);
  return html`<form class="decide" method="post" action="${base}/${verbs[0]!}">
<input type="hidden" name="_csrf" value="${csrfToken}"><input type="hidden" name="next" value="${next}">
<input type="text" name="reason" id="reason-${e.id}" hx-preserve="true" required maxlength="2000" placeholder="Reason (required)" aria-label="Reason">
${verbs.map((v) => html`<button type="submit" class="verb-${v}" formaction="${base}/${v}">${VERBS[v].label}</button>`)}
</form>`;
}

const notFoundEscalation = () => notFound("escalation");

/** The escalation, if it is this tenant's (404 otherwise, the same words for unknown and foreign ids). */
async function escalationOf(ctx: ConsoleContext, tenantId: string, id: string) {
  if (!EscalationIdSchema.safeParse(id).success) throw notFoundEscalation();
  try {
    return await readEscalation(ctx.ledger as Pick<Ledger, "readEvent" | "readTrace">, id, tenantId);
  } catch (error) {
    if (error instanceof EscalationNotFoundError) throw notFoundEscalation();
    throw error;
  }
}

const DecisionBodySchema = z.strictObject({
  reason: z.string().trim().min(1, "a reason is required").max(2000),
  next: z.string().optional(),
  _csrf: z.string().optional(),
});

const wantsHtml = (request: FastifyRequest) => (request.headers.accept ?? "").includes("text/html");
const traceHref = (tenantId: string, traceId: string) => `/traces/${encodeURIComponent(tenantId)}/${encodeURIComponent(traceId)}`;

type Params = { tenant: string; id: string };

/** GET /escalations/:tenant/:id (the detail, read from the ledger) and POST /escalations/:tenant/:id/:verb (a decision). */
export async function escalationRoutes(app: FastifyInstance, ctx: ConsoleContext): Promise<void> {
  app.get<{ Params: Params }>("/escalations/:tenant/:id", async (request, reply) => {
    const viewer = viewerOf(request);
    const { tenant, id } = request.params;
    requireRole(viewer, tenant, "viewer", "escalation");
    const view = await escalationOf(ctx, tenant, id);
    const opened = view.opened;
    const records = await ctx.readTrace(tenant, opened.traceId);
    // The call's arguments are audited content: the read is on record before a byte of it is sent.
    await ctx.recordAccess(request, viewer, { tenantId: tenant, action: "escalation.view", subject: { escalationId: id, traceId: opened.traceId } });
    return sendPage(reply, detailPage(viewer, view, concernOf(records, opened), csrfTokenOf(reply), request.url));
  });

  app.post<{ Params: Params & { verb: string } }>("/escalations/:tenant/:id/:verb", async (request, reply) => {
    const viewer = viewerOf(request);
    const { tenant, id } = request.params;
    const verb = VerbSchema.safeParse(request.params.verb);
    if (!verb.success) throw notFound(`escalation action ${request.params.verb}`);
    // 404 without a role in the tenant; 403 (nothing appended) for a viewer.
    requireRole(viewer, tenant, "reviewer", "deciding an escalation");
    const body = DecisionBodySchema.safeParse(request.body ?? {});
    if (!body.success)
      throw new ConsoleError("AUDITGRAPH_E_CONSOLE_BAD_REQUEST", body.error.issues.map((i) => `${i.path.join(".") || "body"}: ${i.message}`).join("; "));
    const before = await escalationOf(ctx, tenant, id);
    const move = VERBS[verb.data];
    const held = before.opened.payload.holdId !== undefined;
    if ("holdDecision" in move && !held)
      throw new ConsoleError("AUDITGRAPH_E_CONSOLE_BAD_REQUEST", `${verb.data}: escalation ${id} holds no call; use resolve or dismiss`);
    // Refused before anything is appended (the transition would refuse it too, after the access event).
    if (!canTransition(before.state, move.to))
      throw new ConsoleError("AUDITGRAPH_E_CONSOLE_CONFLICT", new EscalationTransitionError(id, before.state, move.to).message);
    const traceId = before.opened.traceId;
    await ctx.recordAccess(request, viewer, { tenantId: tenant, action: "escalation.decide", subject: { escalationId: id, traceId } });
    let result: Awaited<ReturnType<typeof transitionEscalation>>;
    try {
      result = await transitionEscalation(
        ctx.ledger,
        ctx.graph,
        {
          escalationId: id,
          tenantId: tenant,
          to: move.to,
          reviewer: { id: viewer.accountId, name: viewer.name },
          reason: body.data.reason,
          ...("holdDecision" in move ? { holdDecision: move.holdDecision } : {}),
        },
        { redis: ctx.redis },
      );
    } catch (error) {
      // Another reviewer moved it meanwhile.
      if (error instanceof EscalationTransitionError) throw new ConsoleError("AUDITGRAPH_E_CONSOLE_CONFLICT", error.message);
      throw error;
    }
    if (!result.projected) ctx.log.warn({ escalationId: id, error: result.projectionError }, "escalation transition recorded but not projected yet");
    if (result.hold?.error)
      ctx.log.warn(
        { escalationId: id, holdId: result.hold.holdId, error: result.hold.error },
        "decision recorded, but the held call could not be told: it takes its rule's default at its deadline",
      );
    if (wantsHtml(request)) return reply.redirect(safeNext(body.data.next), 303);
    return {
      escalationId: id,
      state: result.view.state,
      eventId: result.event.eventId,
      position: result.record.position,
      projected: result.projected,
      ...(result.hold ? { hold: { holdId: result.hold.holdId, decision: result.hold.decision, status: result.hold.published?.status ?? null } } : {}),
    };
  });
}

const sendPage = (reply: FastifyReply, body: Html) => reply.type("text/html").header("cache-control", "no-store").send(body.toString());

function detailPage(viewer: Viewer, view: Awaited<ReturnType<typeof readEscalation>>, concern: Concern, csrfToken: string, self: string): Html {
  const o = view.opened;
  const p = o.payload;
  const waiting = (timeLeftOf(p.deadline ?? null, view.state) ?? 0) > 0;
  const body = html`<section class="escalation" data-escalation-id="${view.escalationId}">
<dl class="facts">
  <dt>State</dt><dd class="state state-${view.state}">${view.state}</dd>
  <dt>Severity</dt><dd>${severityHtml(p.severity)}</dd>
  <dt>Policy</dt><dd><code>${p.policyId}</code>@${p.policyVersion}</dd>
  <dt>Reason</dt><dd>${p.reason}</dd>
  <dt>Tenant</dt><dd>${view.tenantId}</dd>
  <dt>Agent</dt><dd>${concern.agent ? `${concern.agent.name} (${concern.agent.id}@${concern.agent.version})` : "?"}</dd>
  <dt>Trace</dt><dd><a class="trace-link" href="${traceHref(view.tenantId, o.traceId)}">${o.traceId}</a></dd>
  <dt>Opened</dt><dd><time datetime="${o.occurredAt}">${o.occurredAt}</time></dd>
  ${p.holdId ? html`<dt>Held call</dt><dd>${timeLeftHtml(p.deadline ?? null, view.state, p.defaultDecision ?? null) || view.state} <span class="muted">hold ${p.holdId}</span></dd>` : ""}
</dl>
<h2>What it is about</h2>
${concernHtml(concern)}
${decisionForm(viewer, { tenantId: view.tenantId, id: view.escalationId, state: view.state, waiting }, csrfToken, self)}
<h2>History</h2>
${
  view.transitions.length === 0
    ? html`<p class="muted">No transitions yet.</p>`
    : html`<table class="transitions"><thead><tr><th>At</th><th>Move</th><th>Reviewer</th><th>Reason</th><th>Decision</th></tr></thead><tbody>
${view.transitions.map(({ event: t, applied }) => html`<tr${applied ? "" : html` class="stale"`}><td>${t.occurredAt}</td><td>${t.payload.from} → ${t.payload.to}${applied ? "" : " (not applied)"}</td><td>${t.payload.reviewer.name ?? t.payload.reviewer.id}</td><td>${t.payload.reason}</td><td>${t.payload.holdDecision ?? ""}</td></tr>`)}
</tbody></table>`
}
</section>`;
  return page({ title: `Escalation · ${p.policyId}`, viewer, csrfToken, section: "inbox" }, body);
}
