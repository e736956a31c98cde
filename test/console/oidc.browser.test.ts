// OIDC sign-in end to end, in a real headless Chromium against a real OpenID provider
// (oidc-provider, started here on a free port with one client and test users): code flow with
// PKCE, state and nonce; the console shows who signed in and keeps the session in Redis. Then the
// accounts page in the browser (screenshots for the README: login.png, accounts.png).
import { createServer, type Server } from "node:http";
import { mkdir } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { randomBytes, randomUUID } from "node:crypto";
import Provider from "oidc-provider";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { redisClient } from "@auditgraph/policy";
import { SESSION_COOKIE, SESSION_KEY_PREFIX } from "@auditgraph/console";
import { launchBrowser, startTestConsole, testEmail, type TestConsole } from "./harness.js";

const DOCS = fileURLToPath(new URL("../../docs/console/", import.meta.url));
const PASSWORD = "correct horse battery staple";

/** The people the provider knows: sub -> claims (email verified, as a company directory says). */
const users = new Map<string, { email: string; name: string; verified: boolean }>();

async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return (server.address() as { port: number }).port;
}

/** Through the provider's own login and consent pages (its development interactions), as a person would. */
async function signInAtProvider(page: Page, sub: string): Promise<void> {
  await page.waitForSelector('input[name="login"]');
  await page.fill('input[name="login"]', sub);
  await page.fill('input[name="password"]', "any");
  await page.click("button.login-submit");
  // Consent for this client, then back to the console.
  await page.waitForSelector('input[name="prompt"][value="consent"]', { state: "attached" });
  await page.click("button.login-submit");
}

describe("console: OIDC sign-in in a real browser", () => {
  let server: Server;
  let tc: TestConsole;
  let browser: Browser;
  let redis: ReturnType<typeof redisClient>;
  const tenant = `to-${randomUUID().slice(0, 8)}`;
  const clientSecret = randomBytes(24).toString("base64url");

  beforeAll(async () => {
    // The provider's port first: the console needs its issuer, the provider the console's redirect URI.
    server = createServer();
    const issuer = `http://127.0.0.1:${await listen(server)}`;
    tc = await startTestConsole({ oidc: { issuer, clientId: "auditgraph-console", clientSecret, label: "Sign in with Test SSO" } });
    const provider = new Provider(issuer, {
      clients: [
        {
          client_id: "auditgraph-console",
          client_secret: clientSecret,
          redirect_uris: [`${tc.url}/oidc/callback`],
          grant_types: ["authorization_code"],
          response_types: ["code"],
          token_endpoint_auth_method: "client_secret_post",
        },
      ],
      claims: { openid: ["sub"], email: ["email", "email_verified"], profile: ["name"] },
      cookies: { keys: [randomBytes(32).toString("hex")] },
      pkce: { required: () => true },
      async findAccount(_ctx: unknown, sub: string) {
        const user = users.get(sub);
        if (!user) return undefined;
        return { accountId: sub, claims: async () => ({ sub, email: user.email, email_verified: user.verified, name: user.name }) };
      },
    });
    server.on("request", provider.callback());
    redis = redisClient(tc.config.redis);
    browser = await launchBrowser();
  });
  afterAll(async () => {
    await browser?.close();
    redis?.disconnect();
    await tc?.close();
    server?.close();
  });

  it("signs in through the provider: the account found by verified email is linked, its name shown, its session in Redis", async () => {
    const email = testEmail("oidc");
    const { accountId } = await tc.createAccount({ email, name: "Olivia Oidc", password: PASSWORD, roles: { [tenant]: "reviewer" } });
    const sub = `sub-${randomUUID()}`;
    users.set(sub, { email, name: "Olivia (directory name)", verified: true });
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      await page.goto(`${tc.url}/login`);
      await mkdir(DOCS, { recursive: true });
      await page.screenshot({ path: `${DOCS}login.png`, fullPage: true });
      await page.click("#oidc-login");
      await signInAtProvider(page, sub);
      await page.waitForURL((u) => u.origin === tc.url && !u.pathname.startsWith("/login") && !u.pathname.startsWith("/oidc"));
      // The console's own account (its name), not the provider's claims, is who is shown.
      expect(await page.textContent("header .who")).toBe("Olivia Oidc");
      const me = (await page.evaluate(async () => (await fetch("/api/me")).json())) as { accountId: string; via: string; roles: Record<string, string> };
      expect(me).toEqual({ accountId, email, name: "Olivia Oidc", roles: { [tenant]: "reviewer" }, via: "oidc" });
      const cookie = (await context.cookies(tc.url)).find((c) => c.name === SESSION_COOKIE)!;
      expect(cookie.httpOnly).toBe(true);
      const sessionId = decodeURIComponent(cookie.value).slice(0, decodeURIComponent(cookie.value).lastIndexOf("."));
      const stored = JSON.parse((await redis.get(SESSION_KEY_PREFIX + sessionId))!) as { accountId: string; via: string; oidc?: unknown };
      expect(stored).toMatchObject({ accountId, via: "oidc" });
      // The state, nonce and PKCE verifier were used once and dropped.
      expect(stored.oidc).toBeUndefined();
      // Linked: the next sign-in finds it by (issuer, subject) even after the directory's email changes.
      users.set(sub, { email: testEmail("renamed"), name: "Olivia", verified: true });
      const again = await browser.newContext();
      const page2 = await again.newPage();
      await page2.goto(`${tc.url}/login`);
      await page2.click("#oidc-login");
      await signInAtProvider(page2, sub);
      await page2.waitForURL((u) => u.origin === tc.url && !u.pathname.startsWith("/oidc"));
      expect(((await page2.evaluate(async () => (await fetch("/api/me")).json())) as { accountId: string }).accountId).toBe(accountId);
      await again.close();
    } finally {
      await context.close();
    }
  });

  it("a new identity gets an account with no roles; a callback replayed or forged signs nobody in", async () => {
    const sub = `sub-${randomUUID()}`;
    const email = testEmail("newcomer");
    users.set(sub, { email, name: "Nora Newcomer", verified: true });
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      await page.goto(`${tc.url}/oidc/login?next=/api/me`);
      await signInAtProvider(page, sub);
      await page.waitForURL(`${tc.url}/api/me`);
      const me = JSON.parse((await page.textContent("body"))!) as { name: string; roles: Record<string, string> };
      expect(me).toMatchObject({ name: "Nora Newcomer", roles: {} });
      expect((await tc.ctx.accounts.byEmail(email))?.oidc).toBe(true);

      // A callback with no sign-in under way in this browser: refused, nobody signed in.
      const fresh = await browser.newContext();
      const forged = await fresh.newPage();
      const response = await forged.goto(`${tc.url}/oidc/callback?code=made-up&state=made-up`);
      expect(response!.status()).toBe(400);
      const who = await forged.evaluate(async () => (await fetch("/api/me")).status);
      expect(who).toBe(401);
      await fresh.close();
    } finally {
      await context.close();
    }
  });

  it("the accounts page in the browser: an admin creates an account and an API token, shown once", async () => {
    const adminEmail = testEmail("admin");
    await tc.createAccount({ email: adminEmail, name: "Ada Admin", password: PASSWORD, roles: { [tenant]: "admin" } });
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      await tc.login(page, adminEmail, PASSWORD);
      await page.goto(`${tc.url}/admin/accounts`);
      const email = testEmail("made-in-ui");
      await page.fill('form.create-account input[name="email"]', email);
      await page.fill('form.create-account input[name="name"]', "Made In UI");
      await page.fill('form.create-account input[name="password"]', PASSWORD);
      await page.selectOption('form.create-account select[name="role"]', "reviewer");
      await Promise.all([page.waitForURL(`${tc.url}/admin/accounts`), page.click("form.create-account button")]);
      expect(await page.locator("table.accounts").textContent()).toContain(email);
      const made = (await tc.ctx.accounts.byEmail(email))!;
      expect(await tc.ctx.accounts.rolesOf(made.id)).toEqual({ [tenant]: "reviewer" });

      const row = page.locator(`tr[data-account="${made.id}"]`);
      await row.locator('form[action$="/tokens"] input[name="name"]').fill("nightly export");
      await row.locator('form[action$="/tokens"] button').click();
      const token = (await page.locator("#new-token").textContent())!;
      expect(token).toMatch(/^agc_/);
      const me = await fetch(`${tc.url}/api/me`, { headers: { authorization: `Bearer ${token}` } });
      expect(await me.json()).toMatchObject({ accountId: made.id, via: "token" });
      await page.screenshot({ path: `${DOCS}accounts.png`, fullPage: true });
      // Shown once: the page afterwards lists the token by name only.
      await page.goto(`${tc.url}/admin/accounts`);
      expect(await page.content()).not.toContain(token);
      expect(await page.locator(`tr[data-account="${made.id}"] ul.tokens`).textContent()).toContain("nightly export");
    } finally {
      await context.close();
    }
  });
});
