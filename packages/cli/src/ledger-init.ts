import type { Command } from "commander";
import { z } from "zod";
import { AuditgraphError, parseWith } from "@auditgraph/core";
import { PostgresLedger, type PostgresLedgerInitResult } from "@auditgraph/ledger";

const Identifier = z.string().regex(/^[a-z_][a-z0-9_]{0,62}$/, "must be a lower-case SQL identifier");

/** Keyed by the flag or variable each value comes from, so that an error names the one to fix. */
export const LedgerInitArgsSchema = z
  .object({
    "--owner-url (or AUDITGRAPH_LEDGER_OWNER_URL)": z
      .string({ error: "is required: the URL of a role that may create the schema and the writer role" })
      .regex(/^postgres(ql)?:\/\//, "must be a postgres:// URL"),
    "--schema (or AUDITGRAPH_LEDGER_SCHEMA)": Identifier.default("auditgraph"),
    "--writer-role": Identifier.default("auditgraph_writer"),
    AUDITGRAPH_LEDGER_WRITER_PASSWORD: z.string().min(1, "must not be empty (unset it for a writer without a password)").optional(),
  })
  .strict();

export interface LedgerInitOptions {
  ownerUrl?: string;
  schema?: string;
  writerRole?: string;
  json?: boolean;
}

/** Where a URL points and as whom, with no password: what may be printed. */
function describeUrl(url: string): { user: string; where: string } {
  const u = new URL(url);
  const host = u.port ? `${u.hostname}:${u.port}` : u.hostname || "localhost";
  return { user: decodeURIComponent(u.username) || "(default user)", where: `${host}${u.pathname.length > 1 ? u.pathname : "/"}` };
}

/** The URL the workers are to use: the owner's host and database, as the writer role, with a placeholder for its password. */
export function writerUrl(ownerUrl: string, role: string, withPassword: boolean): string {
  const u = new URL(ownerUrl);
  u.username = role;
  u.password = withPassword ? "PASSWORD" : "";
  return u.toString().replace(":PASSWORD@", ":<password>@");
}

/**
 * `auditgraph ledger init`: the PostgreSQL ledger's one-time setup (see `initPostgresLedger`),
 * run with an owner's URL. The owner URL's password is never printed; the writer's password
 * comes from AUDITGRAPH_LEDGER_WRITER_PASSWORD only, not a flag, so that it is in neither the
 * shell's history nor the process list.
 */
export async function ledgerInitCommand(
  env: Record<string, string | undefined>,
  opts: LedgerInitOptions,
  print: (line: string) => void = console.log,
): Promise<PostgresLedgerInitResult> {
  const args = parseWith(
    LedgerInitArgsSchema,
    {
      "--owner-url (or AUDITGRAPH_LEDGER_OWNER_URL)": opts.ownerUrl ?? env.AUDITGRAPH_LEDGER_OWNER_URL,
      "--schema (or AUDITGRAPH_LEDGER_SCHEMA)": opts.schema ?? env.AUDITGRAPH_LEDGER_SCHEMA,
      "--writer-role": opts.writerRole,
      AUDITGRAPH_LEDGER_WRITER_PASSWORD: env.AUDITGRAPH_LEDGER_WRITER_PASSWORD,
    },
    "ledger init arguments",
  );
  const ownerUrl = args["--owner-url (or AUDITGRAPH_LEDGER_OWNER_URL)"];
  const password = args.AUDITGRAPH_LEDGER_WRITER_PASSWORD;
  const owner = describeUrl(ownerUrl);
  const result = await PostgresLedger.init({
    connectionString: ownerUrl,
    schema: args["--schema (or AUDITGRAPH_LEDGER_SCHEMA)"],
    writerRole: args["--writer-role"],
    ...(password ? { writerPassword: password } : {}),
  }).catch((error: unknown) => {
    // The driver's messages name the user and host at most, never the password; said again here without the URL.
    throw new AuditgraphError(
      "AUDITGRAPH_E_LEDGER_INIT",
      `ledger init as ${owner.user} on ${owner.where}: ${error instanceof Error ? error.message : String(error)}`,
      { cause: error },
    );
  });
  const workerUrl = writerUrl(ownerUrl, result.writerRole, result.passwordSet);
  if (opts.json) {
    print(JSON.stringify({ ...result, database: owner.where, workerUrl }, null, 2));
    return result;
  }
  print(
    `ledger init: schema "${result.schema}" on ${owner.where} (as ${owner.user}): ${result.created ? "created" : "already there, brought up to date"}; ledger id ${result.ledgerId}`,
  );
  const passwordLine = result.passwordSet
    ? "password set from AUDITGRAPH_LEDGER_WRITER_PASSWORD"
    : result.roleCreated
      ? "no password (AUDITGRAPH_LEDGER_WRITER_PASSWORD unset): it logs in only where pg_hba.conf trusts it"
      : "password unchanged (AUDITGRAPH_LEDGER_WRITER_PASSWORD unset)";
  print(
    `ledger init: writer role ${result.writerRole} ${result.roleCreated ? "created" : "updated"} (LOGIN; SELECT and INSERT only, no UPDATE, DELETE, TRUNCATE or DDL); ${passwordLine}`,
  );
  print(
    `ledger init: start the workers with AUDITGRAPH_LEDGER_URL=${workerUrl}${result.schema === "auditgraph" ? "" : ` AUDITGRAPH_LEDGER_SCHEMA=${result.schema}`}`,
  );
  return result;
}

export function registerLedgerInit(program: Command): void {
  const ledger = program.command("ledger").description("the PostgreSQL ledger's setup");
  ledger
    .command("init")
    .description(
      "one-time setup of the PostgreSQL ledger, with an owner's URL: the schema, its append-only tables, triggers and partition function, the ledger's id, and a LOGIN writer role that may only INSERT and SELECT; idempotent (run it again after an upgrade)",
    )
    .option(
      "--owner-url <url>",
      "a postgres:// URL of a role that may create the schema and the writer role (default: AUDITGRAPH_LEDGER_OWNER_URL, which keeps its password out of the process list)",
    )
    .option("--schema <name>", "the ledger's schema (default: AUDITGRAPH_LEDGER_SCHEMA, else auditgraph)")
    .option(
      "--writer-role <name>",
      "the LOGIN role the workers connect as; its password comes from AUDITGRAPH_LEDGER_WRITER_PASSWORD when set",
      "auditgraph_writer",
    )
    .option("--json", "print the outcome as JSON")
    .action(async (opts: LedgerInitOptions) => {
      await ledgerInitCommand(process.env, opts);
    });
}
