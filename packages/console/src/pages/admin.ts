import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { z } from "zod";
import type { Account, ApiToken } from "../accounts.js";
import { csrfTokenOf, viewerOf } from "../auth.js";
import type { ConsoleContext } from "../context.js";
import { ConsoleError, forbidden, notFound } from "../errors.js";
import { html, type Html } from "../html.js";
import { page } from "../layout.js";
import { ROLES, RoleSchema, hasRole, requireRole, tenantsOf, type Role, type Viewer } from "../viewer.js";

type Listed = Account & { roles: Record<string, Role> };

const wantsHtml = (request: FastifyRequest) => (request.headers.accept ?? "").includes("text/html");
const badRequest = (error: z.ZodError) =>
  new ConsoleError("AUDITGRAPH_E_CONSOLE_BAD_REQUEST", error.issues.map((i) => `${i.path.join(".") || "body"}: ${i.message}`).join("; "));
function parse<S extends z.ZodType>(schema: S, value: unknown): z.output<S> {
  const result = schema.safeParse(value ?? {});
  if (!result.success) throw badRequest(result.error);
  return result.data;
}

/** The tenants a viewer administers; none: the page is not theirs (403). */
function adminTenants(viewer: Viewer): string[] {
  const tenants = tenantsOf(viewer).filter((t) => hasRole(viewer, t, "admin"));
  if (tenants.length === 0) throw forbidden("account administration");
  return tenants;
}

// Forms post `_csrf` beside their fields; the objects are otherwise strict.
const csrfField = { _csrf: z.string().optional() };
const CreateSchema = z.strictObject({
  email: z.email(),
  name: z.string().trim().min(1).max(200),
  password: z.string().min(12, "must be at least 12 characters").max(1024),
  tenant: z.string().min(1),
  role: RoleSchema,
  ...csrfField,
});
const RoleChangeSchema = z.strictObject({ tenant: z.string().min(1), role: RoleSchema, ...csrfField });
const RoleRemoveSchema = z.strictObject({ tenant: z.string().min(1), ...csrfField });
const TokenSchema = z.strictObject({ name: z.string().trim().min(1).max(200), ...csrfField });
const IdParams = z.strictObject({ id: z.string().min(1) });
const TokenParams = z.strictObject({ id: z.string().min(1), tokenId: z.string().min(1) });

/**
 * /admin/accounts: an admin of a tenant manages who holds which role in that tenant, and nothing
 * else. Accounts are listed with their roles in the admin's tenants only; an account, or a tenant,
 * the admin has no part in is answered 404, as if it did not exist.
 */
export async function adminRoutes(app: FastifyInstance, ctx: ConsoleContext): Promise<void> {
  /** An account the admin may see: it holds a role in one of the admin's tenants (else 404, as if it did not exist). */
  async function visible(viewer: Viewer, accountId: string): Promise<void> {
    adminTenants(viewer);
    const roles = await ctx.accounts.rolesOf(accountId);
    if (!Object.keys(roles).some((t) => hasRole(viewer, t, "admin"))) throw notFound(`account ${accountId}`);
  }

  /** Tokens carry every role of their account: an admin makes them only for itself, or for an account wholly inside its tenants. */
  async function mayHandleTokens(viewer: Viewer, accountId: string): Promise<void> {
    if (accountId === viewer.accountId) return;
    await visible(viewer, accountId);
    const all = await ctx.accounts.rolesOf(accountId);
    if (!Object.keys(all).every((t) => hasRole(viewer, t, "admin"))) throw forbidden("API tokens of an account with roles outside your tenants");
  }

  async function render(request: FastifyRequest, reply: FastifyReply, status: number, notice?: Html) {
    const viewer = viewerOf(request);
    const tenants = adminTenants(viewer);
    const accounts = await ctx.accounts.listInTenants(tenants);
    const tokens = new Map<string, ApiToken[]>();
    for (const a of [...accounts.map((x) => x.id), viewer.accountId]) if (!tokens.has(a)) tokens.set(a, await ctx.accounts.tokensOf(a));
    const csrfToken = csrfTokenOf(reply);
    const body = accountsPage({ viewer, tenants, accounts, tokens, csrfToken, notice });
    return reply
      .code(status)
      .type("text/html")
      .send(page({ title: "Accounts", viewer, csrfToken, section: "admin" }, body).toString());
  }

  const done = (request: FastifyRequest, reply: FastifyReply, json: unknown, status = 200) =>
    wantsHtml(request) ? reply.redirect("/admin/accounts", 303) : reply.code(status).send(json);

  app.get("/admin/accounts", async (request, reply) => {
    const viewer = viewerOf(request);
    if (!wantsHtml(request)) {
      const accounts = await ctx.accounts.listInTenants(adminTenants(viewer));
      return { accounts };
    }
    return render(request, reply, 200);
  });

  app.post("/admin/accounts", async (request, reply) => {
    const viewer = viewerOf(request);
    const input = parse(CreateSchema, request.body);
    requireRole(viewer, input.tenant, "admin", `tenant ${input.tenant}`);
    const account = await ctx.accounts.create({ email: input.email, name: input.name, password: input.password, roles: { [input.tenant]: input.role } });
    ctx.log.info(
      { event: "console.account.created", by: viewer.accountId, accountId: account.id, tenantId: input.tenant, role: input.role },
      "account created",
    );
    return done(request, reply, { accountId: account.id }, 201);
  });

  app.post("/admin/accounts/:id/roles", async (request, reply) => {
    const viewer = viewerOf(request);
    const { id } = parse(IdParams, request.params);
    const input = parse(RoleChangeSchema, request.body);
    requireRole(viewer, input.tenant, "admin", `tenant ${input.tenant}`);
    await visible(viewer, id);
    // An admin does not demote itself: the last admin of a tenant could lock everyone out.
    if (id === viewer.accountId) throw new ConsoleError("AUDITGRAPH_E_CONSOLE_CONFLICT", "you cannot change your own role");
    await ctx.accounts.setRole(id, input.tenant, input.role);
    ctx.log.info({ event: "console.role.set", by: viewer.accountId, accountId: id, tenantId: input.tenant, role: input.role }, "role set");
    return done(request, reply, { accountId: id, tenant: input.tenant, role: input.role });
  });

  app.post("/admin/accounts/:id/roles/remove", async (request, reply) => {
    const viewer = viewerOf(request);
    const { id } = parse(IdParams, request.params);
    const input = parse(RoleRemoveSchema, request.body);
    requireRole(viewer, input.tenant, "admin", `tenant ${input.tenant}`);
    await visible(viewer, id);
    if (id === viewer.accountId) throw new ConsoleError("AUDITGRAPH_E_CONSOLE_CONFLICT", "you cannot change your own role");
    await ctx.accounts.removeRole(id, input.tenant);
    ctx.log.info({ event: "console.role.removed", by: viewer.accountId, accountId: id, tenantId: input.tenant }, "role removed");
    return done(request, reply, { accountId: id, tenant: input.tenant, role: null });
  });

  app.post("/admin/accounts/:id/tokens", async (request, reply) => {
    const viewer = viewerOf(request);
    const { id } = parse(IdParams, request.params);
    const input = parse(TokenSchema, request.body);
    await mayHandleTokens(viewer, id);
    const token = await ctx.accounts.createToken(id, input.name);
    ctx.log.info({ event: "console.token.created", by: viewer.accountId, accountId: id, tokenId: token.id }, "API token created");
    if (!wantsHtml(request)) return reply.code(201).send(token);
    // Shown this once: only its hash is kept.
    return render(
      request,
      reply,
      201,
      html`<div class="notice" role="status"><p>New API token <strong>${input.name}</strong> (copy it now, it is not shown again):</p><p><code class="token" id="new-token">${token.token}</code></p></div>`,
    );
  });

  app.post("/admin/accounts/:id/tokens/:tokenId/revoke", async (request, reply) => {
    const viewer = viewerOf(request);
    const { id, tokenId } = parse(TokenParams, request.params);
    await mayHandleTokens(viewer, id);
    if (!(await ctx.accounts.revokeToken(id, tokenId))) throw notFound(`token ${tokenId}`);
    ctx.log.info({ event: "console.token.revoked", by: viewer.accountId, accountId: id, tokenId }, "API token revoked");
    return done(request, reply, { tokenId, revoked: true });
  });
}

interface PageData {
  viewer: Viewer;
  tenants: string[];
  accounts: Listed[];
  tokens: Map<string, ApiToken[]>;
  csrfToken: string;
  notice?: Html | undefined;
}

const roleOptions = (selected?: Role) => ROLES.map((r) => html`<option value="${r}"${r === selected ? html` selected` : ""}>${r}</option>`);
const tenantOptions = (tenants: string[]) => tenants.map((t) => html`<option value="${t}">${t}</option>`);

function tokenList(p: PageData, accountId: string): Html {
  const tokens = p.tokens.get(accountId) ?? [];
  const csrf = html`<input type="hidden" name="_csrf" value="${p.csrfToken}">`;
  return html`<ul class="tokens">${tokens.map(
    (t) =>
      html`<li>${t.name} <small>created ${t.createdAt}${t.lastUsedAt ? html`, last used ${t.lastUsedAt}` : ""}</small>${
        t.revokedAt
          ? html` <em>revoked ${t.revokedAt}</em>`
          : html` <form class="inline" method="post" action="/admin/accounts/${accountId}/tokens/${t.id}/revoke">${csrf}<button type="submit">Revoke</button></form>`
      }</li>`,
  )}</ul>
<form class="inline" method="post" action="/admin/accounts/${accountId}/tokens">${csrf}<input name="name" placeholder="token name" required> <button type="submit">New API token</button></form>`;
}

function accountsPage(p: PageData): Html {
  const csrf = html`<input type="hidden" name="_csrf" value="${p.csrfToken}">`;
  const rows = p.accounts.map((a) => {
    const self = a.id === p.viewer.accountId;
    const roles = Object.entries(a.roles).map(
      ([tenant, role]) =>
        html`<li><span class="tenant">${tenant}</span>: ${
          self
            ? role
            : html`<form class="inline" method="post" action="/admin/accounts/${a.id}/roles">${csrf}<input type="hidden" name="tenant" value="${tenant}"><select name="role">${roleOptions(role)}</select> <button type="submit">Change</button></form>
<form class="inline" method="post" action="/admin/accounts/${a.id}/roles/remove">${csrf}<input type="hidden" name="tenant" value="${tenant}"><button type="submit">Remove</button></form>`
        }</li>`,
    );
    const missing = p.tenants.filter((t) => a.roles[t] === undefined);
    const grant =
      !self && missing.length > 0
        ? html`<form class="inline" method="post" action="/admin/accounts/${a.id}/roles">${csrf}<select name="tenant">${tenantOptions(missing)}</select><select name="role">${roleOptions("viewer")}</select> <button type="submit">Grant</button></form>`
        : "";
    const manageable = self || Object.keys(a.roles).every((t) => p.tenants.includes(t));
    return html`<tr data-account="${a.id}"><td>${a.email}</td><td>${a.name}</td><td><ul class="roles">${roles}</ul>${grant}</td><td>${a.disabledAt ? "disabled" : a.oidc ? "SSO" : "password"}</td><td>${manageable ? tokenList(p, a.id) : ""}</td></tr>`;
  });
  return html`${p.notice ?? ""}
<p>Roles in the tenants you administer: ${p.tenants.join(", ")}. A viewer reads, a reviewer also decides escalations, an admin also manages accounts.</p>
<table class="accounts"><thead><tr><th>Email</th><th>Name</th><th>Roles</th><th>Sign-in</th><th>API tokens</th></tr></thead><tbody>${rows}</tbody></table>
<h2>New account</h2>
<form class="create-account" method="post" action="/admin/accounts">${csrf}
  <label>Email <input type="email" name="email" required></label>
  <label>Name <input name="name" required></label>
  <label>Password <input type="password" name="password" minlength="12" autocomplete="new-password" required></label>
  <label>Tenant <select name="tenant">${tenantOptions(p.tenants)}</select></label>
  <label>Role <select name="role">${roleOptions("viewer")}</select></label>
  <button type="submit">Create account</button>
</form>`;
}
