// The console under test: real Redis, Neo4j, PostgreSQL (accounts) and a ledger, listening on a
// free port of 127.0.0.1 (plain http, so the session cookie is not Secure; see the README).
import { randomBytes, randomUUID } from "node:crypto";
import { pino } from "pino";
import type { Page } from "playwright-core";
import type { SubjectKeyStore } from "@auditgraph/core";
import { redisClient } from "@auditgraph/policy";
import { Graph } from "@auditgraph/graph";
import { SegmentLedger, type Ledger } from "@auditgraph/ledger";
import type { Config } from "@auditgraph/cli";
import { AccountStore, startConsole, type ConsoleContext, type ConsoleOptions, type Role } from "@auditgraph/console";
import { isolatedConfig } from "../helpers.js";

/** The PostgreSQL the accounts live in (the environment's; tests use random emails, so they share its schema). */
export const CONSOLE_DATABASE_URL = process.env.AUDITGRAPH_CONSOLE_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";

/** A unique email for a test account. */
export const testEmail = (tag = "user") => `${tag}-${randomUUID().slice(0, 8)}@example.test`;

export interface TestConsoleOptions {
  /** From isolatedConfig(); a fresh one when absent. */
  config?: Config;
  oidc?: ConsoleOptions["oidc"];
  /**
   * The pipeline's own ledger and graph (startPipeline's), so that the console and the worker share
   * one writer per ledger stream in this process; opened (and closed) here when absent.
   */
  ledger?: Ledger;
  graph?: Graph;
  /** The worker's key store, to open sealed records (absent: sealed content reads as erased). */
  keyStore?: Pick<SubjectKeyStore, "byId">;
  /** Any other console option (publicUrl, highImpactTools, sessionTtlSeconds...). */
  options?: Partial<Omit<ConsoleOptions, "oidc">>;
}

export async function startTestConsole(opts: TestConsoleOptions = {}) {
  const config = opts.config ?? (await isolatedConfig());
  const graph = opts.graph ?? new Graph(config.neo4j);
  if (!opts.graph) await graph.migrate();
  const ledger = opts.ledger ?? new SegmentLedger(config.ledgerDir);
  const redis = redisClient(config.redis);
  const accounts = await AccountStore.open({ connectionString: CONSOLE_DATABASE_URL });
  const log = pino({ level: "warn" });
  const running = await startConsole({
    options: {
      port: 0,
      host: "127.0.0.1",
      sessionSecret: randomBytes(32).toString("base64url"),
      ...opts.options,
      ...(opts.oidc ? { oidc: opts.oidc } : {}),
    },
    ledger,
    graph,
    redis,
    accounts,
    log,
    ...(opts.keyStore ? { keyStore: opts.keyStore } : {}),
  });
  return {
    url: running.url,
    ctx: running.ctx as ConsoleContext,
    config,
    app: running.app,
    async createAccount(input: { email: string; name?: string; password: string; roles: Record<string, Role> }): Promise<{ accountId: string }> {
      const account = await accounts.create({
        email: input.email,
        name: input.name ?? input.email.split("@")[0]!,
        password: input.password,
        roles: input.roles,
      });
      return { accountId: account.id };
    },
    async createToken(accountId: string): Promise<string> {
      return (await accounts.createToken(accountId, "test")).token;
    },
    /** Signs in through the login form, like a person; resolves once the console has moved past /login. */
    async login(page: Page, email: string, password: string): Promise<void> {
      await page.goto(`${running.url}/login`);
      await page.fill('input[name="email"]', email);
      await page.fill('input[name="password"]', password);
      await Promise.all([page.waitForURL((u) => !u.pathname.startsWith("/login")), page.click('form.login button[type="submit"]')]);
    },
    async close(): Promise<void> {
      await running.close();
      await accounts.close();
      redis.disconnect();
      if (!opts.ledger) await ledger.close();
      if (!opts.graph) await graph.close();
    },
  };
}
export type TestConsole = Awaited<ReturnType<typeof startTestConsole>>;

export { chromiumPath, launchBrowser } from "../browser.js";
