import { InvalidArgumentError, type Command } from "commander";
import { pino } from "pino";
import { z } from "zod";
import { ValidationError, parseWith } from "@auditgraph/core";
import { redisClient } from "@auditgraph/policy";
import { Graph } from "@auditgraph/graph";
import { AccountStore, startConsole } from "@auditgraph/console";
import { loadConfig, type Config } from "./config.js";
import { usageError } from "./errors.js";
import { keyStoreOf } from "./erase.js";
import { openLedger } from "./ledger.js";

const DEFAULT_PORT = 4680;
const required = (what: string) => ({ error: (issue: { input: unknown }) => (issue.input === undefined ? `is required (${what})` : undefined) });

/** The console's own settings, beside the worker's (Redis, Neo4j, the ledger: see config.ts), each named by its variable. */
export const ConsoleEnvSchema = z
  .object({
    AUDITGRAPH_CONSOLE_PORT: z
      .string()
      .regex(/^\d{1,5}$/, "must be a port number (0-65535)")
      .transform(Number)
      .pipe(z.int().max(65_535, "must be a port number (0-65535)"))
      .default(DEFAULT_PORT),
    AUDITGRAPH_CONSOLE_HOST: z.string().min(1).default("127.0.0.1"),
    /** The URL people open (behind a TLS proxy, its https:// URL): Secure cookies and the OIDC redirect follow it. */
    AUDITGRAPH_CONSOLE_URL: z.url({ protocol: /^https?$/, error: "must be an http:// or https:// URL" }).optional(),
    AUDITGRAPH_CONSOLE_DATABASE_URL: z
      .string(required("the PostgreSQL database the console's accounts live in, a postgres:// URL"))
      .regex(/^postgres(ql)?:\/\//, "must be a postgres:// URL"),
    AUDITGRAPH_CONSOLE_SESSION_SECRET: z.string().min(32, "must be at least 32 characters").optional(),
    AUDITGRAPH_CONSOLE_SESSION_TTL_SECONDS: z
      .string()
      .regex(/^[1-9]\d{0,7}$/, "must be a whole number of seconds")
      .transform(Number)
      .optional(),
    AUDITGRAPH_CONSOLE_TRUST_PROXY: z
      .enum(["true", "false", "1", "0"], { error: "must be true or false" })
      .transform((v) => v === "true" || v === "1")
      .default(false),
    AUDITGRAPH_CONSOLE_OIDC_ISSUER: z.url({ protocol: /^https?$/, error: "must be the provider's issuer URL" }).optional(),
    AUDITGRAPH_CONSOLE_OIDC_CLIENT_ID: z.string().min(1).optional(),
    AUDITGRAPH_CONSOLE_OIDC_CLIENT_SECRET: z.string().min(1).optional(),
    AUDITGRAPH_CONSOLE_OIDC_LABEL: z.string().min(1).optional(),
    /** `console create-admin` reads the password here, else from stdin. */
    AUDITGRAPH_CONSOLE_ADMIN_PASSWORD: z.string().min(12, "must be at least 12 characters").optional(),
  })
  .superRefine((e, ctx) => {
    // Tokens travel between the console and the provider: plain http only to one on this machine.
    const issuer = e.AUDITGRAPH_CONSOLE_OIDC_ISSUER ? new URL(e.AUDITGRAPH_CONSOLE_OIDC_ISSUER) : undefined;
    if (issuer?.protocol === "http:" && !["127.0.0.1", "localhost", "[::1]"].includes(issuer.hostname))
      ctx.addIssue({ code: "custom", path: ["AUDITGRAPH_CONSOLE_OIDC_ISSUER"], message: "must be an https:// URL (http:// only on this machine)" });
    // OIDC is all three settings or none: half a setting is a mistake, not a choice.
    const oidc = ["AUDITGRAPH_CONSOLE_OIDC_ISSUER", "AUDITGRAPH_CONSOLE_OIDC_CLIENT_ID", "AUDITGRAPH_CONSOLE_OIDC_CLIENT_SECRET"] as const;
    const set = oidc.filter((k) => e[k] !== undefined);
    if (set.length > 0 && set.length < oidc.length)
      for (const k of oidc.filter((x) => e[x] === undefined))
        ctx.addIssue({
          code: "custom",
          path: [k],
          message: `is required when ${set.join(" and ")} ${set.length > 1 ? "are" : "is"} set (OIDC needs the issuer, client id and secret)`,
        });
  });
export type ConsoleEnv = z.output<typeof ConsoleEnvSchema>;

const KNOWN = new Set(Object.keys(ConsoleEnvSchema.shape));

/** The console's settings; an unknown AUDITGRAPH_CONSOLE_* variable (a typo) is refused by name rather than ignored. */
export function loadConsoleEnv(env: Record<string, string | undefined> = process.env): ConsoleEnv {
  const unknown = Object.keys(env).filter((k) => k.startsWith("AUDITGRAPH_CONSOLE_") && !KNOWN.has(k));
  if (unknown.length > 0)
    throw new ValidationError(
      "configuration",
      unknown.map((path) => ({ path, message: `unknown setting; the console reads ${[...KNOWN].join(", ")}` })),
    );
  return parseWith(ConsoleEnvSchema, env, "configuration");
}

function port(value: string): number {
  if (!/^\d{1,5}$/.test(value) || Number(value) > 65_535) throw new InvalidArgumentError(`must be a port number (0-65535), got ${JSON.stringify(value)}`);
  return Number(value);
}

export function registerConsole(program: Command): void {
  const command = program
    .command("console")
    .description(
      "serve the review console (escalation inbox, traces, reviews, ledger) until SIGTERM/SIGINT; settings from AUDITGRAPH_CONSOLE_* and the worker's variables (see packages/console/README.md)",
    )
    .option("--port <port>", `the port (default: AUDITGRAPH_CONSOLE_PORT, else ${DEFAULT_PORT}; 0 takes a free one)`, port)
    .action(async (opts: { port?: number }) => {
      await runConsole(loadConfig(), loadConsoleEnv(), opts);
    });

  command
    .command("create-admin")
    .description(
      "create an account that is admin of a tenant (how the first admin is made); the password is read from stdin, or AUDITGRAPH_CONSOLE_ADMIN_PASSWORD. An existing account is made admin of the tenant, its password unchanged",
    )
    .requiredOption("--email <email>", "the account's email (its sign-in name)")
    .requiredOption("--name <name>", "the name shown in the console and in access events")
    .requiredOption("--tenant <id>", "the tenant it administers")
    .action(async (opts: { email: string; name: string; tenant: string }) => {
      const env = loadConsoleEnv();
      await withAccounts(env, async (accounts) => {
        const existing = await accounts.byEmail(opts.email);
        if (existing) {
          await accounts.setRole(existing.id, opts.tenant, "admin");
          console.log(`account ${existing.email} (${existing.id}) exists: now admin of tenant ${opts.tenant}; password unchanged`);
          return;
        }
        const password = env.AUDITGRAPH_CONSOLE_ADMIN_PASSWORD ?? (await passwordFromStdin());
        const parsed = z.string().min(12).safeParse(password);
        if (!parsed.success) throw usageError("create-admin: the password must be at least 12 characters");
        const account = await accounts.create({ email: opts.email, name: opts.name, password, roles: { [opts.tenant]: "admin" } }).catch((error: unknown) => {
          throw error instanceof z.ZodError ? usageError(`create-admin: ${error.issues.map((i) => `--${String(i.path[0])}: ${i.message}`).join("; ")}`) : error;
        });
        console.log(`created ${account.email} (${account.id}), admin of tenant ${opts.tenant}`);
      });
    });

  command
    .command("token")
    .description("make an API token for an account (for scripts: `Authorization: Bearer <token>`); printed once on stdout, stored as its hash only")
    .requiredOption("--email <email>", "the account")
    .requiredOption("--name <name>", "what the token is for (shown on the accounts page)")
    .action(async (opts: { email: string; name: string }) => {
      await withAccounts(loadConsoleEnv(), async (accounts) => {
        const account = await accounts.byEmail(opts.email);
        if (!account) throw usageError(`--email: no account ${JSON.stringify(opts.email)}`);
        console.log((await accounts.createToken(account.id, opts.name)).token);
      });
    });
}

async function withAccounts<T>(env: ConsoleEnv, use: (accounts: AccountStore) => Promise<T>): Promise<T> {
  const accounts = await AccountStore.open({ connectionString: env.AUDITGRAPH_CONSOLE_DATABASE_URL });
  try {
    return await use(accounts);
  } finally {
    await accounts.close();
  }
}

/** The first line of stdin (a pipe, or typed at a terminal). */
async function passwordFromStdin(): Promise<string> {
  if (process.stdin.isTTY) process.stderr.write("password for the new admin (then Enter): ");
  let text = "";
  for await (const chunk of process.stdin) {
    text += String(chunk);
    if (text.includes("\n")) break;
  }
  return text.split(/\r?\n/)[0] ?? "";
}

/** The `console` command: one line with the URL on stdout; logs (pino JSON) on stderr. */
export async function runConsole(config: Config, env: ConsoleEnv, opts: { port?: number }): Promise<void> {
  if (env.AUDITGRAPH_CONSOLE_SESSION_SECRET === undefined)
    throw new ValidationError("configuration", [
      { path: "AUDITGRAPH_CONSOLE_SESSION_SECRET", message: "is required (signs the session cookie; at least 32 random characters)" },
    ]);
  const log = pino({ name: "auditgraph-console", level: config.logLevel ?? "info" }, pino.destination({ dest: 2, sync: true }));
  const oidc = env.AUDITGRAPH_CONSOLE_OIDC_ISSUER
    ? {
        issuer: env.AUDITGRAPH_CONSOLE_OIDC_ISSUER,
        clientId: env.AUDITGRAPH_CONSOLE_OIDC_CLIENT_ID!,
        clientSecret: env.AUDITGRAPH_CONSOLE_OIDC_CLIENT_SECRET!,
        ...(env.AUDITGRAPH_CONSOLE_OIDC_LABEL ? { label: env.AUDITGRAPH_CONSOLE_OIDC_LABEL } : {}),
      }
    : undefined;
  const accounts = await AccountStore.open({ connectionString: env.AUDITGRAPH_CONSOLE_DATABASE_URL });
  const graph = new Graph(config.neo4j);
  const ledger = await openLedger(config);
  const redis = redisClient(config.redis);
  const stopped = new Promise<string>((resolve) => {
    process.once("SIGTERM", () => resolve("SIGTERM"));
    process.once("SIGINT", () => resolve("SIGINT"));
  });
  try {
    const running = await startConsole({
      options: {
        port: opts.port ?? env.AUDITGRAPH_CONSOLE_PORT,
        host: env.AUDITGRAPH_CONSOLE_HOST,
        ...(env.AUDITGRAPH_CONSOLE_URL ? { publicUrl: env.AUDITGRAPH_CONSOLE_URL } : {}),
        sessionSecret: env.AUDITGRAPH_CONSOLE_SESSION_SECRET,
        ...(env.AUDITGRAPH_CONSOLE_SESSION_TTL_SECONDS ? { sessionTtlSeconds: env.AUDITGRAPH_CONSOLE_SESSION_TTL_SECONDS } : {}),
        trustProxy: env.AUDITGRAPH_CONSOLE_TRUST_PROXY,
        ...(oidc ? { oidc } : {}),
        highImpactTools: config.highImpactTools ?? [],
        ...(config.publicKeyPath ? { publicKeyPath: config.publicKeyPath } : {}),
      },
      ledger,
      graph,
      redis,
      accounts,
      log,
      // The worker's key store: sealed content opens for readers (an erased user's stays erased).
      keyStore: keyStoreOf(config),
    });
    console.log(`auditgraph console: ${running.url}`);
    const signal = await stopped;
    log.info(`auditgraph console: ${signal}, closing`);
    await running.close();
  } finally {
    redis.disconnect();
    await accounts.close();
    await graph.close();
    await ledger.close?.();
  }
  log.info("auditgraph console: stopped");
}
