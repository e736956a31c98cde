import { createHash } from "node:crypto";
import type { FastifyInstance, FastifyReply, FastifyRequest, RouteOptions } from "fastify";
import { z } from "zod";
import type { ConsoleContext } from "./context.js";
import { ConsoleError } from "./errors.js";
import { html } from "./html.js";
import { page } from "./layout.js";
import { SESSION_COOKIE, registerSessions, safeNext, signIn } from "./sessions.js";
import { oidcRoutes } from "./oidc.js";
import { adminRoutes } from "./pages/admin.js";
import type { Viewer } from "./viewer.js";

/** Only a path on this console (login's `next`, a form's return address): never an open redirect. */
export { safeNext };

declare module "fastify" {
  interface FastifyRequest {
    /** Who sent this request (a session's account or an API token's); null when nobody signed in. */
    viewer: Viewer | null;
    /** Set once the body is parsed: a CSRF token in the body can be read from here on. */
    bodyParsed: boolean;
    /** protectChange ran before the body was parsed: the token is checked once it is. */
    csrfPending: boolean;
  }
}

const MUTATING = new Set(["POST", "PUT", "PATCH", "DELETE"]);
const LOGIN_LIMIT = 10;
const LOGIN_WINDOW_SECONDS = 15 * 60;
const BAD_LOGIN = "unknown email or wrong password";

const csrfRefused = () => new ConsoleError("AUDITGRAPH_E_CONSOLE_FORBIDDEN", "missing or invalid CSRF token");
const unauthenticated = (message = "sign in first") => new ConsoleError("AUDITGRAPH_E_CONSOLE_UNAUTHENTICATED", message);
const wantsHtml = (request: FastifyRequest) => (request.headers.accept ?? "").includes("text/html");

function bearerOf(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (header === undefined) return undefined;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (!match) throw unauthenticated("Authorization: expected `Bearer <api token>`");
  return match[1];
}

/** Checks the session's CSRF token with @fastify/csrf-protection; its refusal becomes a coded 403. */
function checkCsrf(request: FastifyRequest): Promise<void> {
  return new Promise((resolve, reject) => {
    const reply = { send: () => reject(csrfRefused()) } as unknown as FastifyReply;
    request.server.csrfProtection(request, reply, () => resolve());
  });
}

/** Registers session handling, /login, /logout, /oidc/*, /admin/accounts and API tokens; decorates requests with their viewer. */
export async function authRoutes(app: FastifyInstance, ctx: ConsoleContext): Promise<void> {
  await registerSessions(app, ctx);
  app.decorateRequest("viewer", null);
  app.decorateRequest("bodyParsed", false);
  app.decorateRequest("csrfPending", false);

  // Every state-changing route is protected, whether or not its author remembered protectChange.
  app.addHook("onRoute", (route: RouteOptions) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    if (!methods.some((m) => MUTATING.has(m))) return;
    const own = route.preHandler === undefined ? [] : Array.isArray(route.preHandler) ? route.preHandler : [route.preHandler];
    route.preHandler = [protectChange, ...own];
  });

  // The viewer is read again on every request: a removed role or a disabled account counts at once.
  app.addHook("onRequest", async (request) => {
    if (request.url.startsWith("/assets/")) return;
    const token = bearerOf(request);
    if (token !== undefined) {
      request.viewer = (await ctx.accounts.viewerOfToken(token)) ?? null;
      if (!request.viewer) throw unauthenticated("unknown or revoked API token");
      return;
    }
    const { accountId, via } = request.session;
    if (accountId === undefined) return;
    request.viewer = (await ctx.accounts.viewerOf(accountId, via ?? "password")) ?? null;
    // A disabled (or deleted) account: the session stays, signed out.
    if (!request.viewer) {
      delete request.session.accountId;
      delete request.session.via;
    }
  });
  app.addHook("preValidation", async (request) => {
    request.bodyParsed = true;
  });
  app.addHook("preHandler", async (request) => {
    if (request.csrfPending) await checkCsrf(request);
  });

  app.get<{ Querystring: { next?: string } }>("/login", async (request, reply) => {
    return reply.type("text/html").send(loginPage(ctx, csrfTokenOf(reply), safeNext(request.query.next)).toString());
  });

  const LoginSchema = z.strictObject({
    email: z.string().trim().min(1).max(320),
    password: z.string().min(1).max(1024),
    next: z.string().optional(),
    _csrf: z.string().optional(),
  });
  app.post("/login", async (request, reply) => {
    const parsed = LoginSchema.safeParse(request.body ?? {});
    if (!parsed.success) throw new ConsoleError("AUDITGRAPH_E_CONSOLE_BAD_REQUEST", "email and password are required");
    const { email, password } = parsed.data;
    const next = safeNext(parsed.data.next);
    // Attempts are counted per email and address, so a guesser is slowed without locking the owner out everywhere.
    const limitKey = `auditgraph:console:login:${createHash("sha256").update(`${email.toLowerCase()}\n${request.ip}`).digest("hex")}`;
    const attempts = await ctx.redis.incr(limitKey);
    if (attempts === 1) await ctx.redis.expire(limitKey, LOGIN_WINDOW_SECONDS);
    if (attempts > LOGIN_LIMIT) {
      const message = "too many sign-in attempts; try again later";
      if (wantsHtml(request))
        return reply
          .code(429)
          .type("text/html")
          .send(loginPage(ctx, csrfTokenOf(reply), next, message).toString());
      return reply.code(429).send({ code: "AUDITGRAPH_E_CONSOLE_RATE_LIMITED", message });
    }
    const account = await ctx.accounts.authenticate(email, password);
    if (!account) {
      ctx.log.info({ event: "console.login.failed", ip: request.ip }, "console sign-in refused");
      if (wantsHtml(request))
        return reply
          .code(401)
          .type("text/html")
          .send(loginPage(ctx, csrfTokenOf(reply), next, BAD_LOGIN).toString());
      throw unauthenticated(BAD_LOGIN);
    }
    await ctx.redis.del(limitKey);
    await signIn(request, account.id, "password");
    ctx.log.info({ event: "console.login", accountId: account.id, via: "password" }, "console sign-in");
    return reply.redirect(next, 303);
  });

  app.post("/logout", async (request, reply) => {
    await request.session.destroy();
    reply.clearCookie(SESSION_COOKIE, { path: "/" });
    return reply.redirect("/login", 303);
  });

  /** Who the caller is (for scripts with an API token, and for tests). */
  app.get("/api/me", async (request) => {
    const viewer = viewerOf(request);
    return { accountId: viewer.accountId, email: viewer.email, name: viewer.name, roles: viewer.roles, via: viewer.via };
  });

  if (ctx.options.oidc) await oidcRoutes(app, ctx, ctx.options.oidc);
  await adminRoutes(app, ctx);
}

function loginPage(ctx: ConsoleContext, csrfToken: string, next: string, error?: string) {
  const { oidc } = ctx.options;
  return page(
    { title: "Sign in", viewer: null, csrfToken },
    html`${error ? html`<p class="error" role="alert">${error}</p>` : ""}
<form class="login" method="post" action="/login">
  <input type="hidden" name="_csrf" value="${csrfToken}">
  <input type="hidden" name="next" value="${next}">
  <label>Email <input type="email" name="email" autocomplete="username" required></label>
  <label>Password <input type="password" name="password" autocomplete="current-password" required></label>
  <button type="submit">Sign in</button>
</form>
${oidc ? html`<p class="sso"><a class="button" id="oidc-login" href="/oidc/login?next=${encodeURIComponent(next)}">${oidc.label}</a></p>` : ""}`,
  );
}

/** The signed-in viewer (session or API token); 401 (coded) when there is none. */
export function viewerOf(request: FastifyRequest): Viewer {
  if (!request.viewer) throw unauthenticated();
  return request.viewer;
}

/** The session's CSRF token, for forms and the page's meta tag ("" for API-token requests, which need none). */
export function csrfTokenOf(reply: FastifyReply): string {
  if (reply.request.viewer?.via === "token") return "";
  return reply.generateCsrf();
}

/**
 * Hook for every state-changing route (onRequest, preValidation or preHandler): the session's CSRF
 * token must come in the `csrf-token` header or the body's `_csrf`. Requests authenticated by an API
 * token carry no cookie a third-party page could ride on, so they need none.
 */
export async function protectChange(request: FastifyRequest, _reply: FastifyReply): Promise<void> {
  if (request.viewer?.via === "token") return;
  // Called before the body is parsed (onRequest) with no header token: checked in the app's preHandler.
  if (!request.bodyParsed && request.headers["csrf-token"] === undefined) {
    request.csrfPending = true;
    return;
  }
  await checkCsrf(request);
}
