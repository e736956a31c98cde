import { readFile } from "node:fs/promises";
import type { FastifyInstance } from "fastify";
import { z } from "zod";
import { isSealed, streamIdFor, streamsOfTenant } from "@auditgraph/core";
import type { Checkpoint } from "@auditgraph/ledger";
import { csrfTokenOf, protectChange, viewerOf } from "../auth.js";
import type { ConsoleContext } from "../context.js";
import { ConsoleError, notFound } from "../errors.js";
import { html, type Html } from "../html.js";
import { page } from "../layout.js";
import { hasRole, requireRole, tenantsOf } from "../viewer.js";
import { VerifyRuns, lastVerify, streamSize, type VerifyResult } from "./ledger-verify.js";

const EventIdSchema = z.uuidv7();

async function publicKeyOf(ctx: ConsoleContext): Promise<string | undefined> {
  return ctx.options.publicKeyPath ? readFile(ctx.options.publicKeyPath, "utf8") : undefined;
}

function checkpointCell(c: Checkpoint | undefined): Html {
  if (!c) return html`<span class="none">none yet</span>`;
  return html`<span class="checkpoint" data-tree-size="${c.treeSize}">size ${c.treeSize}</span> at ${c.time}<br><small>root <code>${c.rootHash.slice(0, 16)}…</code> · key <code>${c.keyId}</code></small>`;
}

function verifyCell(r: VerifyResult | null): Html {
  if (!r) return html`<span class="none">never</span>`;
  return r.ok
    ? html`<span class="verify-ok" data-outcome="ok">intact</span>: ${r.count} records${r.signaturesVerified ? `, ${r.signaturesVerified} signatures` : ""}<br><small>${r.time} · ${r.by}</small>`
    : html`<span class="verify-failed" data-outcome="failed">FAILED</span> at position ${r.failure?.position ?? "?"}: ${r.failure?.reason ?? "?"}<br><small>${r.failure?.detail ?? ""} · ${r.time} · ${r.by}</small>`;
}

/** A tenant's streams (shards) in the ledger, base first; its base stream alone when it has none yet. */
async function tenantStreams(ctx: ConsoleContext, tenantId: string, all?: readonly string[]): Promise<string[]> {
  const streams = streamsOfTenant(all ?? (await ctx.ledger.streams()), tenantId);
  return streams.length > 0 ? streams : [streamIdFor(tenantId)];
}

/**
 * The ledger's state per stream (shard) of the viewer's tenants (size, latest signed checkpoint, last
 * verify), verifies with their progress over SSE, inclusion-proof bundles and the public key.
 */
export async function ledgerRoutes(app: FastifyInstance, ctx: ConsoleContext): Promise<void> {
  const runs = new VerifyRuns(ctx);

  app.get<{ Querystring: { verifying?: string } }>("/ledger", async (request, reply) => {
    const viewer = viewerOf(request);
    const tenants = tenantsOf(viewer);
    const all = await ctx.ledger.streams();
    // One row per stream (a tenant's shards in turn); the tenant's verify and proof forms on its first.
    const rows = (
      await Promise.all(
        tenants.map(async (tenantId) =>
          Promise.all(
            (
              await tenantStreams(ctx, tenantId, all)
            ).map(async (streamId, index) => {
              const [size, checkpoint, verify] = await Promise.all([
                streamSize(ctx.ledger, streamId),
                ctx.ledger.latestCheckpoint(streamId),
                lastVerify(ctx, streamId),
              ]);
              return { tenantId, streamId, first: index === 0, size, checkpoint, verify, running: runs.running(streamIdFor(tenantId)) };
            }),
          ),
        ),
      )
    ).flat();
    const csrfToken = csrfTokenOf(reply);
    const watching = typeof request.query.verifying === "string" ? request.query.verifying : undefined;
    const body = html`
${ctx.options.publicKeyPath ? html`<p><a class="public-key" href="/ledger/public-key" download>Download the public key</a> (checkpoints and proof bundles verify with it: <code>auditgraph verify-proof</code>)</p>` : html`<p class="none">No public key configured (AUDITGRAPH_PUBLIC_KEY).</p>`}
<table class="ledger"><thead><tr><th>tenant</th><th>stream</th><th>events</th><th>latest signed checkpoint</th><th>last verify</th><th></th></tr></thead><tbody>
${rows.map(
  (
    r,
  ) => html`<tr class="stream" data-stream="${r.streamId}"><td>${r.tenantId}</td><td><code>${r.streamId}</code></td><td class="size">${r.size}</td><td>${checkpointCell(r.checkpoint)}</td><td class="last-verify">${verifyCell(r.verify)}</td>
<td>${
    !r.first
      ? ""
      : html`${hasRole(viewer, r.tenantId, "reviewer") ? html`<form method="post" action="/ledger/${encodeURIComponent(r.tenantId)}/verify"><input type="hidden" name="_csrf" value="${csrfToken}"><button type="submit" class="verify">Verify</button></form>` : ""}
${r.running || watching === r.tenantId ? html`<div class="verify-progress" data-verify-events="/ledger/${encodeURIComponent(r.tenantId)}/verify/events"><progress max="1" value="0"></progress> <span class="verify-status">starting…</span></div>` : ""}
<form class="proof" method="get" action="/ledger/${encodeURIComponent(r.tenantId)}/proof"><input name="event" placeholder="event id" size="38" required> <button type="submit">Proof bundle</button></form>`
  }</td></tr>`,
)}
</tbody></table>
<script src="/assets/ledger.js" defer></script>`;
    return reply
      .type("text/html")
      .header("cache-control", "no-store")
      .send(page({ title: "Ledger", viewer, csrfToken, section: "ledger" }, body).toString());
  });

  app.post<{ Params: { tenant: string } }>("/ledger/:tenant/verify", { onRequest: protectChange }, async (request, reply) => {
    const viewer = viewerOf(request);
    const { tenant } = request.params;
    requireRole(viewer, tenant, "reviewer", `verify of tenant ${tenant}`);
    // A tenant's verify covers every stream it has (all its shards), one run.
    const streamIds = await tenantStreams(ctx, tenant);
    await runs.start(streamIdFor(tenant), streamIds, `${viewer.name} (${viewer.accountId})`, await publicKeyOf(ctx));
    if (request.headers.accept?.includes("text/html")) return reply.redirect(`/ledger?verifying=${encodeURIComponent(tenant)}`, 303);
    return reply.code(202).send({ streamId: streamIdFor(tenant), streamIds, events: `/ledger/${encodeURIComponent(tenant)}/verify/events` });
  });

  app.get<{ Params: { tenant: string } }>("/ledger/:tenant/verify/events", async (request, reply) => {
    const viewer = viewerOf(request);
    requireRole(viewer, request.params.tenant, "viewer", `tenant ${request.params.tenant}`);
    await runs.stream(streamIdFor(request.params.tenant), reply);
  });

  // The ledger page's proof form (a GET form cannot put the id in the path).
  app.get<{ Params: { tenant: string }; Querystring: { event?: string } }>("/ledger/:tenant/proof", async (request, reply) => {
    const viewer = viewerOf(request);
    requireRole(viewer, request.params.tenant, "viewer", `tenant ${request.params.tenant}`);
    const event = typeof request.query.event === "string" ? request.query.event.trim() : "";
    if (!event) throw new ConsoleError("AUDITGRAPH_E_CONSOLE_BAD_REQUEST", "event: give an event id");
    return reply.redirect(`/ledger/${encodeURIComponent(request.params.tenant)}/events/${encodeURIComponent(event)}/proof`, 303);
  });

  app.get<{ Params: { tenant: string; eventId: string } }>("/ledger/:tenant/events/:eventId/proof", async (request, reply) => {
    const viewer = viewerOf(request);
    const { tenant, eventId } = request.params;
    const what = `event ${eventId}`;
    requireRole(viewer, tenant, "viewer", what);
    if (!EventIdSchema.safeParse(eventId).success) throw notFound(what);
    let bundle: Awaited<ReturnType<typeof ctx.ledger.prove>>;
    try {
      // The tenant's own streams (any shard) only: the same id in another tenant's stream is not this event.
      bundle = await ctx.ledger.prove(eventId, { tenantId: tenant });
    } catch (error) {
      if ((error as { code?: unknown }).code === "AUDITGRAPH_E_LEDGER_NO_EVENT") throw notFound(what);
      if (/not yet covered by a signed checkpoint/.test((error as Error).message))
        throw new ConsoleError("AUDITGRAPH_E_CONSOLE_CONFLICT", `${what} is not yet covered by a signed checkpoint; try again shortly`);
      throw error;
    }
    const stored = bundle.record.event as Record<string, unknown>;
    const userId =
      !isSealed(stored) && typeof stored.identity === "object" && stored.identity !== null
        ? (stored.identity as { user?: { id?: string } }).user?.id
        : undefined;
    const traceId = typeof stored.traceId === "string" ? stored.traceId : undefined;
    // The bundle holds the record: its download is on record before a byte of it is sent.
    await ctx.recordAccess(request, viewer, {
      tenantId: tenant,
      action: "proof.download",
      subject: { eventId, ...(traceId ? { traceId } : {}), ...(userId ? { userId } : {}) },
    });
    return reply
      .type("application/json")
      .header("cache-control", "no-store")
      .header("content-disposition", `attachment; filename="proof-${eventId}.json"`)
      .send(JSON.stringify(bundle, null, 2));
  });

  app.get("/ledger/public-key", async (request, reply) => {
    viewerOf(request);
    const pem = await publicKeyOf(ctx);
    if (!pem) throw notFound("public key");
    return reply.type("application/x-pem-file").header("content-disposition", 'attachment; filename="auditgraph-public-key.pem"').send(pem);
  });
}
