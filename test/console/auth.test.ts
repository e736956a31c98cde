// People and access in the console, over real HTTP to a listening console: password login with
// sessions in Redis, logout, CSRF, API tokens, roles per tenant on the accounts page, the CSP,
// and the `auditgraph console` command's settings.
import { spawn } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { redisClient } from "@auditgraph/policy";
import pg from "pg";
import { AccountStore, SESSION_COOKIE, SESSION_KEY_PREFIX } from "@auditgraph/console";
import { CLI_BIN, cliEnvOf, inClear, readAll, runCli } from "../helpers.js";
import { SegmentLedger } from "@auditgraph/ledger";
import { CONSOLE_DATABASE_URL, startTestConsole, testEmail, type TestConsole } from "./harness.js";

const PASSWORD = "correct horse battery staple";

/** A browser-like HTTP client: keeps its cookies, follows nothing, reads the page's CSRF token. */
class Client {
  cookies = new Map<string, string>();
  constructor(
    readonly base: string,
    readonly headers: Record<string, string> = {},
  ) {}

  async request(method: string, path: string, body?: Record<string, string>, headers: Record<string, string> = {}): Promise<Response> {
    const cookie = [...this.cookies].map(([k, v]) => `${k}=${v}`).join("; ");
    const response = await fetch(this.base + path, {
      method,
      redirect: "manual",
      headers: {
        accept: "application/json",
        ...(cookie ? { cookie } : {}),
        ...(body ? { "content-type": "application/x-www-form-urlencoded" } : {}),
        ...this.headers,
        ...headers,
      },
      ...(body ? { body: new URLSearchParams(body).toString() } : {}),
    });
    for (const line of response.headers.getSetCookie()) {
      const [pair] = line.split(";");
      const at = pair!.indexOf("=");
      const [name, value] = [pair!.slice(0, at), pair!.slice(at + 1)];
      if (value === "" || /expires=Thu, 01 Jan 1970/i.test(line)) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
    return response;
  }
  get = (path: string, headers?: Record<string, string>) => this.request("GET", path, undefined, headers);
  post = (path: string, body: Record<string, string>, headers?: Record<string, string>) => this.request("POST", path, body, headers);

  /** The CSRF token of a page (its meta tag, else the login form's hidden field). */
  async csrf(path = "/login"): Promise<string> {
    const text = await (await this.get(path, { accept: "text/html" })).text();
    const match = /name="csrf-token" content="([^"]+)"/.exec(text) ?? /name="_csrf" value="([^"]+)"/.exec(text);
    if (!match) throw new Error(`no CSRF token on ${path}`);
    return match[1]!;
  }

  /** The Redis key of this client's session (the cookie is the session id, signed). */
  sessionKey(): string {
    const value = decodeURIComponent(this.cookies.get(SESSION_COOKIE) ?? "");
    return SESSION_KEY_PREFIX + value.slice(0, value.lastIndexOf("."));
  }

  async login(email: string, password: string): Promise<Response> {
    const _csrf = await this.csrf();
    return this.post("/login", { email, password, _csrf });
  }
}

describe("console accounts, sessions and access", () => {
  let tc: TestConsole;
  let redis: ReturnType<typeof redisClient>;
  const tenantA = `ta-${crypto.randomUUID().slice(0, 8)}`;
  const tenantB = `tb-${crypto.randomUUID().slice(0, 8)}`;
  const admin = { email: testEmail("admin"), id: "" };
  const adminB = { email: testEmail("adminb"), id: "" };
  const viewer = { email: testEmail("viewer"), id: "" };

  beforeAll(async () => {
    tc = await startTestConsole();
    redis = redisClient(tc.config.redis);
    admin.id = (await tc.createAccount({ email: admin.email, name: "Ada Admin", password: PASSWORD, roles: { [tenantA]: "admin" } })).accountId;
    adminB.id = (await tc.createAccount({ email: adminB.email, password: PASSWORD, roles: { [tenantB]: "admin" } })).accountId;
    viewer.id = (await tc.createAccount({ email: viewer.email, password: PASSWORD, roles: { [tenantA]: "viewer" } })).accountId;
  });
  afterAll(async () => {
    redis?.disconnect();
    await tc?.close();
  });

  it("password login: a new session id, stored in Redis; the viewer is the account", async () => {
    const c = new Client(tc.url);
    await c.csrf();
    const before = c.sessionKey();
    const response = await c.post("/login", { email: admin.email.toUpperCase(), password: PASSWORD, _csrf: await c.csrf(), next: "/admin/accounts" });
    expect(response.status).toBe(303);
    expect(response.headers.get("location")).toBe("/admin/accounts");
    const setCookie = response.headers.getSetCookie().find((l) => l.startsWith(`${SESSION_COOKIE}=`))!;
    expect(setCookie).toMatch(/HttpOnly/i);
    expect(setCookie).toMatch(/SameSite=Lax/i);
    expect(setCookie).not.toMatch(/Secure/i); // plain http on 127.0.0.1 (a https publicUrl makes it Secure)
    expect(c.sessionKey()).not.toBe(before);
    expect(await redis.exists(before)).toBe(0);
    const stored = JSON.parse((await redis.get(c.sessionKey()))!) as { accountId: string };
    expect(stored.accountId).toBe(admin.id);
    expect(await redis.ttl(c.sessionKey())).toBeGreaterThan(0);
    const me = (await (await c.get("/api/me")).json()) as { email: string; roles: Record<string, string>; via: string };
    expect(me).toMatchObject({ email: admin.email, roles: { [tenantA]: "admin" }, via: "password" });
  });

  it("a login's `next` is a path on the console only (no open redirect)", async () => {
    const c = new Client(tc.url);
    const response = await c.post("/login", { email: admin.email, password: PASSWORD, _csrf: await c.csrf(), next: "//evil.example/x" });
    expect(response.headers.get("location")).toBe("/");
  });

  it("a wrong password and an unknown email get the same coded 401, and no session", async () => {
    const c = new Client(tc.url);
    const wrong = await c.login(admin.email, "not the password at all");
    const unknown = await c.login(testEmail("nobody"), PASSWORD);
    for (const response of [wrong, unknown]) expect(response.status).toBe(401);
    const [a, b] = [(await wrong.json()) as { code: string; message: string }, (await unknown.json()) as { code: string; message: string }];
    expect(a).toEqual({ code: "AUDITGRAPH_E_CONSOLE_UNAUTHENTICATED", message: "unknown email or wrong password" });
    expect(b).toEqual(a);
    expect((await c.get("/api/me")).status).toBe(401);
  });

  it("login attempts per email and address are limited (429 after 10)", async () => {
    const c = new Client(tc.url);
    const email = testEmail("guessed");
    await tc.createAccount({ email, password: PASSWORD, roles: { [tenantA]: "viewer" } });
    for (let i = 0; i < 10; i++) expect((await c.login(email, `wrong guess ${i}`)).status).toBe(401);
    const limited = await c.login(email, PASSWORD);
    expect(limited.status).toBe(429);
    expect(((await limited.json()) as { code: string }).code).toBe("AUDITGRAPH_E_CONSOLE_RATE_LIMITED");
  });

  it("logout destroys the session in Redis; its cookie no longer signs anyone in", async () => {
    const c = new Client(tc.url);
    await c.login(viewer.email, PASSWORD);
    const key = c.sessionKey();
    const oldCookie = c.cookies.get(SESSION_COOKIE)!;
    expect(await redis.exists(key)).toBe(1);
    const out = await c.post("/logout", { _csrf: await c.csrf("/admin/accounts?x").catch(() => c.csrf("/login")) });
    expect(out.status).toBe(303);
    expect(await redis.exists(key)).toBe(0);
    const replay = new Client(tc.url);
    replay.cookies.set(SESSION_COOKIE, oldCookie);
    expect((await replay.get("/api/me")).status).toBe(401);
  });

  it("CSRF: a forged POST (no token, or a wrong one) is 403 with its code and changes nothing", async () => {
    const c = new Client(tc.url);
    await c.login(admin.email, PASSWORD);
    const email = testEmail("forged");
    const form = { email, name: "Forged", password: PASSWORD, tenant: tenantA, role: "admin" };
    for (const extra of [{}, { _csrf: "not-a-token" }] as Record<string, string>[]) {
      const response = await c.post("/admin/accounts", { ...form, ...extra });
      expect(response.status).toBe(403);
      expect(((await response.json()) as { code: string }).code).toBe("AUDITGRAPH_E_CONSOLE_FORBIDDEN");
    }
    expect(await tc.ctx.accounts.byEmail(email)).toBeUndefined();
    // Logout is a change too: a forged one leaves the session alive.
    expect((await c.post("/logout", {})).status).toBe(403);
    expect(await redis.exists(c.sessionKey())).toBe(1);
    // With the session's token (the header htmx sends), the same request goes through.
    const ok = await c.post("/admin/accounts", form, { "csrf-token": await c.csrf("/login") });
    expect(ok.status).toBe(201);
    expect((await tc.ctx.accounts.rolesOf((await tc.ctx.accounts.byEmail(email))!.id))[tenantA]).toBe("admin");
  });

  it("an API token authenticates a GET and needs no CSRF token; a revoked one is 401", async () => {
    const token = await tc.createToken(admin.id);
    const bot = new Client(tc.url, { authorization: `Bearer ${token}` });
    const me = await bot.get("/api/me");
    expect(me.status).toBe(200);
    expect(await me.json()).toMatchObject({ accountId: admin.id, via: "token" });
    const email = testEmail("scripted");
    const created = await bot.post("/admin/accounts", { email, name: "Scripted", password: PASSWORD, tenant: tenantA, role: "viewer" });
    expect(created.status).toBe(201);
    expect(bot.cookies.has(SESSION_COOKIE)).toBe(false);
    const { id } = (await tc.ctx.accounts.tokensOf(admin.id)).find((t) => t.revokedAt === null && t.name === "test")!;
    const revoke = await bot.post(`/admin/accounts/${admin.id}/tokens/${id}/revoke`, {});
    expect(revoke.status).toBe(200);
    const after = await bot.get("/api/me");
    expect(after.status).toBe(401);
    expect(((await after.json()) as { code: string }).code).toBe("AUDITGRAPH_E_CONSOLE_UNAUTHENTICATED");
    expect((await new Client(tc.url, { authorization: "Bearer agc_madeup" }).get("/api/me")).status).toBe(401);
  });

  it("a disabled account is signed out at its next request, its tokens too, and cannot sign in", async () => {
    const email = testEmail("leaver");
    const { accountId } = await tc.createAccount({ email, password: PASSWORD, roles: { [tenantA]: "reviewer" } });
    const c = new Client(tc.url);
    expect((await c.login(email, PASSWORD)).status).toBe(303);
    const bot = new Client(tc.url, { authorization: `Bearer ${await tc.createToken(accountId)}` });
    expect((await c.get("/api/me")).status).toBe(200);
    expect((await bot.get("/api/me")).status).toBe(200);
    await tc.ctx.accounts.disable(accountId);
    expect((await c.get("/api/me")).status).toBe(401);
    expect((await bot.get("/api/me")).status).toBe(401);
    expect((await new Client(tc.url).login(email, PASSWORD)).status).toBe(401);
  });

  it("the accounts page: an admin of tenant A cannot see or manage tenant B (404); a viewer cannot open it (403)", async () => {
    const a = new Client(tc.url);
    await a.login(admin.email, PASSWORD);
    const csrf = await a.csrf("/login");
    const listed = (await (await a.get("/admin/accounts")).json()) as { accounts: { email: string; roles: Record<string, string> }[] };
    expect(listed.accounts.map((x) => x.email)).toContain(viewer.email);
    expect(listed.accounts.map((x) => x.email)).not.toContain(adminB.email);
    expect(listed.accounts.flatMap((x) => Object.keys(x.roles)).every((t) => t === tenantA)).toBe(true);
    // Tenant B does not exist for this admin: granting, creating and touching B's admin are all 404.
    const grant = await a.post(`/admin/accounts/${viewer.id}/roles`, { tenant: tenantB, role: "admin", _csrf: csrf });
    expect(grant.status).toBe(404);
    const create = await a.post("/admin/accounts", { email: testEmail("b"), name: "B", password: PASSWORD, tenant: tenantB, role: "viewer", _csrf: csrf });
    expect(create.status).toBe(404);
    const touch = await a.post(`/admin/accounts/${adminB.id}/roles/remove`, { tenant: tenantB, _csrf: csrf });
    expect(touch.status).toBe(404);
    expect(((await touch.json()) as { code: string }).code).toBe("AUDITGRAPH_E_CONSOLE_NOT_FOUND");
    expect(await tc.ctx.accounts.rolesOf(adminB.id)).toEqual({ [tenantB]: "admin" });
    // B's admin is not an account this admin can give a role in A to, nor is a made-up id.
    for (const id of [adminB.id, "not-a-uuid", crypto.randomUUID()])
      expect((await a.post(`/admin/accounts/${id}/roles`, { tenant: tenantA, role: "viewer", _csrf: csrf })).status).toBe(404);
    expect(await tc.ctx.accounts.rolesOf(adminB.id)).toEqual({ [tenantB]: "admin" });
    expect(await tc.ctx.accounts.rolesOf(viewer.id)).toEqual({ [tenantA]: "viewer" });
    // In its own tenant it manages roles.
    expect((await a.post(`/admin/accounts/${viewer.id}/roles`, { tenant: tenantA, role: "reviewer", _csrf: csrf })).status).toBe(200);
    expect(await tc.ctx.accounts.rolesOf(viewer.id)).toEqual({ [tenantA]: "reviewer" });
    await tc.ctx.accounts.setRole(viewer.id, tenantA, "viewer");

    const v = new Client(tc.url);
    await v.login(viewer.email, PASSWORD);
    const page = await v.get("/admin/accounts", { accept: "text/html" });
    expect(page.status).toBe(403);
    const post = await v.post(`/admin/accounts/${viewer.id}/roles`, { tenant: tenantA, role: "admin", _csrf: await v.csrf("/login") });
    expect(post.status).toBe(403);
    expect(await tc.ctx.accounts.rolesOf(viewer.id)).toEqual({ [tenantA]: "viewer" });
  });

  it("behind a TLS proxy (an https publicUrl, trusted X-Forwarded-Proto) the session cookie is Secure", async () => {
    const tls = await startTestConsole({ config: tc.config, options: { publicUrl: "https://console.example", trustProxy: true } });
    try {
      expect(tls.url).toBe("https://console.example");
      const { port } = tls.app.server.address() as { port: number };
      const c = new Client(`http://127.0.0.1:${port}`, { "x-forwarded-proto": "https" });
      const response = await c.get("/login", { accept: "text/html" });
      const setCookie = response.headers.getSetCookie().find((l) => l.startsWith(`${SESSION_COOKIE}=`))!;
      expect(setCookie).toMatch(/; Secure/i);
      expect(setCookie).toMatch(/HttpOnly/i);
    } finally {
      await tls.close();
    }
  });

  it("recordAccess appends an access event: the viewer as actor, the request's address and user agent", async () => {
    const viewerOfAdmin = (await tc.ctx.accounts.viewerOf(admin.id, "password"))!;
    const request = { ip: "203.0.113.7", headers: { "user-agent": "test-agent/1.0" } } as never;
    await tc.ctx.recordAccess(request, viewerOfAdmin, { tenantId: tenantA, action: "trace.view", subject: { traceId: "trace-1" } });
    const records = inClear(await readAll(new SegmentLedger(tc.config.ledgerDir)));
    const access = records.map((r) => r.event).find((e) => e.type === "access" && e.tenantId === tenantA) as unknown as { payload: unknown };
    expect(access.payload).toEqual({
      actor: { id: admin.id, name: "Ada Admin", via: "password" },
      action: "trace.view",
      subject: { traceId: "trace-1" },
      from: { ip: "203.0.113.7", userAgent: "test-agent/1.0" },
    });
  });

  it("a strict Content-Security-Policy on every page", async () => {
    const response = await new Client(tc.url).get("/login", { accept: "text/html" });
    const csp = response.headers.get("content-security-policy")!;
    expect(csp).toContain("default-src 'self'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("object-src 'none'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toMatch(/unsafe-inline|unsafe-eval|\*/);
  });
});

describe("auditgraph console: settings from the environment", () => {
  const base = { AUDITGRAPH_CONSOLE_DATABASE_URL: CONSOLE_DATABASE_URL, AUDITGRAPH_CONSOLE_SESSION_SECRET: "x".repeat(40) };
  const env = (extra: Record<string, string | undefined>) => {
    const e: NodeJS.ProcessEnv = { ...process.env, ...base, ...extra };
    for (const [k, v] of Object.entries(extra)) if (v === undefined) delete e[k];
    return e;
  };
  const cases: [string, Record<string, string | undefined>, RegExp][] = [
    ["no database URL", { AUDITGRAPH_CONSOLE_DATABASE_URL: undefined }, /AUDITGRAPH_CONSOLE_DATABASE_URL/],
    ["a database URL that is not postgres", { AUDITGRAPH_CONSOLE_DATABASE_URL: "mysql://x" }, /AUDITGRAPH_CONSOLE_DATABASE_URL/],
    ["a short session secret", { AUDITGRAPH_CONSOLE_SESSION_SECRET: "short" }, /AUDITGRAPH_CONSOLE_SESSION_SECRET.*32/],
    ["a bad port", { AUDITGRAPH_CONSOLE_PORT: "http" }, /AUDITGRAPH_CONSOLE_PORT/],
    ["half an OIDC setting", { AUDITGRAPH_CONSOLE_OIDC_ISSUER: "https://id.example" }, /AUDITGRAPH_CONSOLE_OIDC_CLIENT_ID/],
    ["an unknown AUDITGRAPH_CONSOLE_ variable", { AUDITGRAPH_CONSOLE_PROT: "4000" }, /AUDITGRAPH_CONSOLE_PROT/],
  ];
  for (const [what, extra, pattern] of cases)
    it(`refuses ${what}, naming the variable (exit 2, one line)`, { timeout: 60_000 }, async () => {
      const result = await runCli(env(extra), "console");
      expect(result.code).toBe(2);
      expect(result.stderr.trim().split("\n")).toHaveLength(1);
      expect(result.stderr).toMatch(pattern);
      expect(result.stderr).not.toContain(base.AUDITGRAPH_CONSOLE_SESSION_SECRET);
    });

  it("refuses an unknown flag (exit 2)", { timeout: 60_000 }, async () => {
    const result = await runCli(env({}), "console", "--prot", "1");
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/--prot/);
  });

  it("serves: one line with the URL, --port wins over AUDITGRAPH_CONSOLE_PORT, SIGTERM closes it cleanly (exit 0)", { timeout: 120_000 }, async () => {
    const tc = await startTestConsole();
    const taken = (tc.app.server.address() as { port: number }).port;
    // AUDITGRAPH_CONSOLE_PORT names a port in use: were it used, the console could not listen.
    const child = spawn(process.execPath, [CLI_BIN, "console", "--port", "0"], {
      env: { ...cliEnvOf(tc.config), ...base, AUDITGRAPH_CONSOLE_PORT: String(taken) },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stderr.on("data", (b: Buffer) => (stderr += b.toString()));
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    try {
      const url = await new Promise<string>((resolve, reject) => {
        child.stdout.on("data", (b: Buffer) => {
          stdout += b.toString();
          const match = /^auditgraph console: (http:\/\/\S+)\n/.exec(stdout);
          if (match) resolve(match[1]!);
        });
        child.on("exit", (code) => reject(new Error(`console exited ${code}: ${stderr}`)));
      });
      expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(url).not.toContain(`:${taken}`);
      expect((await fetch(`${url}/login`)).status).toBe(200);
      child.kill("SIGTERM");
      expect(await exited).toBe(0);
      expect(stdout.trim().split("\n")).toHaveLength(1);
      expect(stderr).toMatch(/SIGTERM[\s\S]*stopped/);
      expect(stderr).not.toContain(base.AUDITGRAPH_CONSOLE_SESSION_SECRET);
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      await tc.close();
    }
  });

  it("create-admin makes the first admin from a password in the environment; token prints a working API token", { timeout: 120_000 }, async () => {
    const tc = await startTestConsole();
    try {
      const email = testEmail("first");
      const tenant = `tf-${crypto.randomUUID().slice(0, 8)}`;
      const e = { ...cliEnvOf(tc.config), ...base, AUDITGRAPH_CONSOLE_ADMIN_PASSWORD: PASSWORD };
      const made = await runCli(e, "console", "create-admin", "--email", email, "--name", "First Admin", "--tenant", tenant);
      expect(made.code, made.stderr).toBe(0);
      const account = (await tc.ctx.accounts.byEmail(email))!;
      expect(await tc.ctx.accounts.rolesOf(account.id)).toEqual({ [tenant]: "admin" });
      expect(await tc.ctx.accounts.authenticate(email, PASSWORD)).toMatchObject({ id: account.id });
      // The password from stdin instead (the environment's left unset), for a second tenant's admin.
      const other = testEmail("stdin");
      const child = spawn(process.execPath, [CLI_BIN, "console", "create-admin", "--email", other, "--name", "Stdin", "--tenant", tenant], {
        env: { ...e, AUDITGRAPH_CONSOLE_ADMIN_PASSWORD: undefined },
        stdio: ["pipe", "pipe", "pipe"],
      });
      child.stdin.end(`${PASSWORD}\n`);
      expect(await new Promise((resolve) => child.on("exit", resolve))).toBe(0);
      expect(await tc.ctx.accounts.authenticate(other, PASSWORD)).toMatchObject({ email: other });

      const printed = await runCli(e, "console", "token", "--email", email, "--name", "ci");
      expect(printed.code, printed.stderr).toBe(0);
      const token = printed.stdout.trim();
      const me = await fetch(`${tc.url}/api/me`, { headers: { authorization: `Bearer ${token}` } });
      expect(await me.json()).toMatchObject({ accountId: account.id, via: "token" });
    } finally {
      await tc.close();
    }
  });
});

describe("the console's account store when PostgreSQL closes its idle connections", () => {
  it("does not crash the console (a restart, an administrator's terminate): the pool connects again for the next call", async () => {
    const app = `ag-console-terminated-${Date.now()}`;
    const accounts = await AccountStore.open({ connectionString: `${CONSOLE_DATABASE_URL}?application_name=${app}` });
    const admin = new pg.Client({ connectionString: CONSOLE_DATABASE_URL });
    await admin.connect();
    try {
      const email = testEmail("terminated");
      await accounts.create({ email, name: "Terminated", password: "a long enough password", roles: {} });
      const terminated = await admin.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1", [app]);
      expect(terminated.rowCount).toBeGreaterThan(0);
      // Without an error listener on the pool, the idle client's error is an uncaught exception here.
      let found: { email: string } | undefined;
      for (let attempt = 0; ; attempt++) {
        try {
          found = await accounts.byEmail(email);
          break;
        } catch (error) {
          if (attempt >= 5) throw error;
        }
      }
      expect(found?.email).toBe(email);
    } finally {
      await admin.end();
      await accounts.close();
    }
  });
});
