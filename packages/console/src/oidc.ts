import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import * as client from "openid-client";
import type { ConsoleContext } from "./context.js";
import { ConsoleError } from "./errors.js";
import { html } from "./html.js";
import { page } from "./layout.js";
import type { ConsoleOptions } from "./options.js";
import { safeNext, signIn } from "./sessions.js";

type OidcOptions = NonNullable<ConsoleOptions["oidc"]>;

/**
 * A sign-in that cannot go on, answered here rather than thrown: the app would turn a 401 into a
 * redirect to /login carrying this URL (and its authorization code) as `next`, and lose the reason.
 */
function refuse(request: FastifyRequest, reply: FastifyReply, status: number, code: string, message: string) {
  if (!(request.headers.accept ?? "").includes("text/html")) return reply.code(status).send({ code, message });
  const body = html`<p class="error" role="alert" data-code="${code}">${message}</p><p><a href="/login">Back to sign-in</a></p>`;
  return reply
    .code(status)
    .type("text/html")
    .send(page({ title: "Sign in", viewer: null }, body).toString());
}

const LOOPBACK = new Set(["127.0.0.1", "localhost", "[::1]", "::1"]);

/**
 * Sign-in with an OpenID Connect provider: authorization code flow with PKCE, state and nonce kept
 * in the session (never in the URL alone), the ID token checked by openid-client. The account is
 * found by (issuer, subject), else by a verified email (and linked), else created with no roles:
 * an admin grants roles, the provider only proves who someone is.
 */
export async function oidcRoutes(app: FastifyInstance, ctx: ConsoleContext, oidc: OidcOptions): Promise<void> {
  let configuration: Promise<client.Configuration> | undefined;
  // Discovered at the first sign-in, not at start: the console starts (and password login works) while the provider is away.
  const configOf = () =>
    (configuration ??= discover(oidc).catch((error: unknown) => {
      configuration = undefined;
      throw error;
    }));

  // The redirect URI: the public URL's when set (behind a proxy), else the one this request came to.
  const baseOf = (request: FastifyRequest) => (ctx.options.publicUrl ?? `${request.protocol}://${request.host}`).replace(/\/$/, "");

  app.get<{ Querystring: { next?: string } }>("/oidc/login", async (request, reply) => {
    let config: client.Configuration;
    try {
      config = await configOf();
    } catch (error) {
      ctx.log.error({ err: { message: (error as Error).message }, issuer: oidc.issuer }, "OIDC discovery failed");
      return refuse(request, reply, 502, "AUDITGRAPH_E_CONSOLE_OIDC_UNAVAILABLE", "the identity provider cannot be reached; try again later");
    }
    const codeVerifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const nonce = client.randomNonce();
    request.session.oidc = { state, nonce, codeVerifier, next: safeNext(request.query.next) };
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: `${baseOf(request)}/oidc/callback`,
      scope: "openid email profile",
      response_type: "code",
      code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: "S256",
      state,
      nonce,
    });
    return reply.redirect(url.href, 303);
  });

  app.get("/oidc/callback", async (request, reply) => {
    const pending = request.session.oidc;
    if (!pending) return refuse(request, reply, 400, "AUDITGRAPH_E_CONSOLE_BAD_REQUEST", "no sign-in is under way in this browser; start again");
    // One use only: a replayed callback finds nothing to complete.
    delete request.session.oidc;
    let claims: client.IDToken;
    let userinfo: { email?: string; email_verified?: boolean; name?: string } = {};
    try {
      const config = await configOf();
      const tokens = await client.authorizationCodeGrant(config, new URL(request.url, baseOf(request)), {
        pkceCodeVerifier: pending.codeVerifier,
        expectedState: pending.state,
        expectedNonce: pending.nonce,
        idTokenExpected: true,
      });
      claims = tokens.claims()!;
      // Some providers put email and name only in the userinfo response.
      if (typeof claims.email !== "string") userinfo = (await client.fetchUserInfo(config, tokens.access_token, claims.sub)) as typeof userinfo;
    } catch (error) {
      // The error's code and message only: no token or code is ever logged.
      const e = error as { code?: string; message?: string };
      ctx.log.warn({ event: "console.oidc.failed", code: e.code, message: e.message, ip: request.ip }, "OIDC sign-in refused");
      return refuse(request, reply, 401, "AUDITGRAPH_E_CONSOLE_UNAUTHENTICATED", "sign-in with the identity provider failed; start again");
    }
    const str = (v: unknown) => (typeof v === "string" ? v : undefined);
    const account = await ctx.accounts.accountOfOidc({
      issuer: claims.iss,
      subject: claims.sub,
      email: str(claims.email) ?? userinfo.email,
      emailVerified: (claims.email_verified ?? userinfo.email_verified) === true,
      name: str(claims.name) ?? userinfo.name,
    });
    if (account.disabledAt !== null) throw new ConsoleError("AUDITGRAPH_E_CONSOLE_FORBIDDEN", "this account is disabled");
    await signIn(request, account.id, "oidc");
    ctx.log.info({ event: "console.login", accountId: account.id, via: "oidc" }, "console sign-in");
    return reply.redirect(pending.next, 303);
  });
}

async function discover(oidc: OidcOptions): Promise<client.Configuration> {
  const issuer = new URL(oidc.issuer);
  // Plain http only to a provider on this machine (a test's, a local one); anywhere else the tokens would travel in the clear.
  const insecure = issuer.protocol === "http:";
  if (insecure && !LOOPBACK.has(issuer.hostname))
    throw new ConsoleError("AUDITGRAPH_E_CONSOLE_BAD_REQUEST", "the OIDC issuer must be an https:// URL (http:// only on this machine)");
  return client.discovery(issuer, oidc.clientId, oidc.clientSecret, undefined, insecure ? { execute: [client.allowInsecureRequests] } : undefined);
}
