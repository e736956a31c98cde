import { Command, CommanderError, InvalidArgumentError } from "commander";
import { createRequire } from "node:module";
import { writeFile } from "node:fs/promises";
import { AmbiguousLineageIdError, Graph, INVESTIGATIONS, formatLineage, investigate, isInvestigation, renderLineageHtml } from "@auditgraph/graph";
import { loadConfig } from "./config.js";
import { eraseSubject } from "./erase.js";
import { recordDeployment } from "./deploy.js";
import { ESCALATION_VERBS, listCommand, showCommand, transitionCommand, type EscalationVerb } from "./escalations.js";
import { registerVerify } from "./verify.js";
import { exitCodeOf, oneLine, usageError } from "./errors.js";
import { registerRetention } from "./retention.js";
import { rebuildGraphCommand } from "./rebuild-graph.js";
import { openLedger, writeKeyPair } from "./ledger.js";
import { registerReplay } from "./replay.js";
import { registerWorker } from "./worker.js";
import { registerConsole } from "./console.js";
import { registerLedgerInit } from "./ledger-init.js";
import { registerCheckpointNote } from "./checkpoint-note.js";
import { registerTiles } from "./tiles.js";
import { registerShards } from "./shards.js";
import { registerOtlpToken } from "./otlp-token.js";
import { registerWitness } from "./witness.js";
import { bundleWithCosignatures } from "./cosigned.js";
import { listDeadLetters, replayDeadLetters, showDeadLetter } from "./dead-letters.js";

const program = new Command()
  .name("auditgraph")
  .description("Audit trail and lineage store for LLM agents. Settings come from the environment (see README).")
  .version((createRequire(import.meta.url)("../package.json") as { version: string }).version, "-V, --version", "print the version")
  // Usage errors: one line on stderr and exit 2 (see the catch at the end), not the whole help.
  // Set before any command is added, so that every command inherits them.
  .exitOverride()
  .configureOutput({ outputError: (message, write) => write(`auditgraph: ${oneLine(message)}\n`) });

program
  .command("demo")
  .description("run a sample audited agent end to end, then show the lineage of its answer and verify the ledger")
  .option("--json", "print the outcome (trace id, answer, lineage, verify report) as JSON instead of the walk-through")
  .action(async (opts: { json?: boolean }) => {
    // Loaded here, not at start: the demo agent pulls in langchain, which every other command would pay for.
    const { runDemo } = await import("./demo.js");
    const result = await runDemo(loadConfig(), opts.json ? () => {} : console.log);
    if (opts.json) console.log(JSON.stringify(result, null, 2));
  });

registerWorker(program);

registerConsole(program);

registerVerify(program);

program
  .command("trace")
  .description("print the lineage of one output, or of a trace's final output, from Neo4j")
  .argument("<id>", "an output id or a trace id")
  .option("--tenant <id>", "read only this tenant (ids are unique within a tenant only; needed when several tenants have the id)", nonEmpty)
  .option("--json", "print the lineage as JSON")
  .option("--html <file>", "also write the lineage as an HTML report (a drawing and every field)")
  .action(async (id: string, opts: { tenant?: string; json?: boolean; html?: string }) => {
    const graph = new Graph(loadConfig().neo4j);
    try {
      const lineage = await graph.lineage(id, { tenantId: opts.tenant }).catch((error: unknown) => {
        throw error instanceof AmbiguousLineageIdError ? usageError(`trace: ${error.message}`) : error;
      });
      if (!lineage) {
        console.error(
          `no output or trace with id ${JSON.stringify(id)} in the graph${opts.tenant === undefined ? "" : ` for tenant ${JSON.stringify(opts.tenant)}`}`,
        );
        process.exitCode = 1;
        return;
      }
      console.log(opts.json ? JSON.stringify(lineage, null, 2) : formatLineage(lineage));
      if (opts.html) {
        await writeFile(opts.html, renderLineageHtml(lineage));
        console.error(`lineage report: ${opts.html}`);
      }
    } finally {
      await graph.close();
    }
  });

program
  .command("keygen")
  .description("make an Ed25519 key pair for signing ledger checkpoints (set AUDITGRAPH_SIGNING_KEY to the private one)")
  .option("--out <dir>", "where to write the two PEM files", ".auditgraph/keys")
  .option("--json", "print the two paths as JSON")
  .action(async (opts: { out: string; json?: boolean }) => {
    const { privateKeyPath, publicKeyPath } = await writeKeyPair(opts.out);
    if (opts.json) return console.log(JSON.stringify({ privateKeyPath, publicKeyPath }, null, 2));
    console.log(`private key: ${privateKeyPath} (keep it secret; AUDITGRAPH_SIGNING_KEY=${privateKeyPath})`);
    console.log(`public key:  ${publicKeyPath} (give it to whoever verifies)`);
  });

program
  .command("prove")
  .description("print an event's record, its Merkle inclusion proof and the signed checkpoint it is under, as JSON")
  .argument("<eventId>", "the event id")
  .action(async (eventId: string) => {
    const config = loadConfig();
    const ledger = await openLedger({ ...config, signingKeyPath: undefined });
    // The checkpoint carries its witnesses' cosignatures when `checkpoint --witness` gathered some.
    console.log(JSON.stringify(await bundleWithCosignatures(config, await ledger.prove(eventId).finally(() => ledger.close?.())), null, 2));
  });

program
  .command("prove-consistency")
  .description("print two signed checkpoints of a stream and the Merkle consistency proof that the later extends the earlier, as JSON")
  .argument("<streamId>", "the stream (e.g. tenant-acme)")
  .argument("<fromSize>", "the earlier checkpoint's tree size", (v) => positiveInt(v, "fromSize"))
  .argument("[toSize]", "the later checkpoint's tree size (default: the latest)", (v) => positiveInt(v, "toSize"))
  .action(async (streamId: string, fromSize: number, toSize: number | undefined) => {
    const config = loadConfig();
    const ledger = await openLedger({ ...config, signingKeyPath: undefined });
    const bundle = await ledger.proveConsistency(streamId, fromSize, toSize).finally(() => ledger.close());
    console.log(JSON.stringify(await bundleWithCosignatures(config, bundle), null, 2));
  });

registerCheckpointNote(program);

registerTiles(program);
registerShards(program);
registerWitness(program);
registerOtlpToken(program);
registerRetention(program);
registerReplay(program);
registerLedgerInit(program);

program
  .command("erase")
  .description(
    "erase a data subject: record a subject.erased event (no personal data in it), drop the subject's plaintext from the graph, destroy its data key (its sealed payloads become unreadable; verify and prove still hold)",
  )
  .requiredOption("--user <id>", "the user's id, as the agent recorded it")
  .requiredOption("--tenant <id>", "the user's tenant")
  .option("--reason <text>", "why, kept in the ledger (write no personal data in it)")
  .option("--by <operator>", "who asked for the erasure (an operator id)")
  .option("--json", "print the outcome as JSON")
  .action(async ({ json, ...opts }: { user: string; tenant: string; reason?: string; by?: string; json?: boolean }) => {
    const result = await eraseSubject(loadConfig(), opts, json ? () => {} : console.log);
    if (json) console.log(JSON.stringify(result, null, 2));
  });

program
  .command("deploy")
  .description(
    "record a deployment: an agent version or a model version rolled out (or, with --rollback, rolled back to) in an environment; appended to the tenant's ledger stream and projected, so investigations can say which version was live when an output was produced",
  )
  .requiredOption("--tenant <id>", "the tenant the deployment serves")
  .option("--agent <id>", "the agent deployed (with --agent-version)")
  .option("--agent-version <v>", "the agent version live after this deployment")
  .option("--model <provider/name>", "the model deployed, as its calls name it, e.g. openai/gpt-4o (with --model-version)")
  .option("--model-version <v>", "the served model version live after this deployment, e.g. gpt-4o-2024-08-06")
  .option("--rollback", "a rollback: the version given is the one gone back to")
  .option("--env <name>", "the environment", "production")
  .option("--reason <text>", "why, kept in the ledger")
  .option("--by <operator>", "who deployed (an operator or pipeline id)")
  .option("--json", "print the deployment as JSON")
  .action(async ({ json, ...opts }: Parameters<typeof recordDeployment>[1] & { json?: boolean }) => {
    const result = await recordDeployment(loadConfig(), opts, json ? () => {} : console.log);
    if (json) console.log(JSON.stringify(result, null, 2));
  });

program
  .command("query")
  .description(`run a named investigation (read-only): ${Object.keys(INVESTIGATIONS).join(", ")}`)
  .argument("<name>", "the investigation")
  .option("--tenant <id>", "the tenant whose graph is read (the investigation's tenantId)", nonEmpty)
  .option("--user <id>", "the audited user (the investigation's userId: user-activity, data-readers)", nonEmpty)
  .option("--param <key=value>", "a parameter (repeat it); tenantId may be given here instead of --tenant", collectParam, {})
  .option("--json", "print the rows as JSON")
  .action(async (name: string, opts: { tenant?: string; user?: string; param: Record<string, string>; json?: boolean }) => {
    if (!isInvestigation(name)) {
      throw usageError(`<name>: no investigation ${JSON.stringify(name)}; there are: ${Object.keys(INVESTIGATIONS).join(", ")}`);
    }
    const given = opts.param.tenantId;
    if (opts.tenant !== undefined && given !== undefined && given !== opts.tenant)
      throw usageError(`--tenant ${JSON.stringify(opts.tenant)} and --param tenantId=${given} name different tenants; give one`);
    const config = loadConfig();
    if (opts.user !== undefined && opts.param.userId !== undefined && opts.param.userId !== opts.user)
      throw usageError(`--user ${JSON.stringify(opts.user)} and --param userId=${opts.param.userId} name different users; give one`);
    const params: Record<string, string> = opts.tenant === undefined ? { ...opts.param } : { ...opts.param, tenantId: opts.tenant };
    if (opts.user !== undefined) params.userId = opts.user;
    // The worker's list of high-impact tools is the investigation's too, unless the caller names others.
    if (name === "approval-integrity" && params.highImpactTools === undefined && config.highImpactTools)
      params.highImpactTools = config.highImpactTools.join(",");
    const graph = new Graph(config.neo4j);
    try {
      const rows = await investigate(graph, name, params as never);
      // A table shows flat rows only; a row with lists or maps in it (trace-output's) prints as JSON.
      const flat = rows.every((row) => Object.values(row).every((v) => v === null || typeof v !== "object"));
      if (opts.json || !flat) console.log(JSON.stringify(rows, null, 2));
      else if (rows.length === 0) console.log("(no rows)");
      else console.table(rows);
    } finally {
      await graph.close();
    }
  });

program
  .command("migrate")
  .description("apply the graph schema migrations (constraints, indexes); idempotent")
  .option("--json", "print what was applied as JSON")
  .action(async (opts: { json?: boolean }) => {
    const graph = new Graph(loadConfig().neo4j);
    try {
      const { applied, skipped } = await graph.migrate({
        onWait: (holder) => console.error(`waiting for another migrator (${holder}) to finish…`),
      });
      if (opts.json) return console.log(JSON.stringify({ applied, skipped }, null, 2));
      console.log(`applied ${applied.length} (${applied.join(", ") || "none"}), already applied ${skipped.length}`);
    } finally {
      await graph.close();
    }
  });

program
  .command("rebuild-graph")
  .description(
    "rebuild the Neo4j projection from the ledger (every stream, or one tenant's), with a progress bar; refuses a non-empty graph (or tenant) unless --replace",
  )
  .option("--batch <n>", "events projected per write transaction", (v) => positiveInt(v, "--batch"), 500)
  .option("--tenant <id>", "rebuild only this tenant's stream (and, with --replace, delete only its nodes)")
  .option("--replace", "delete the existing projection (or the tenant's nodes) first, in batches")
  .option("--json", "print the outcome as JSON (the progress still goes to stderr)")
  .action(async ({ json, ...opts }: { batch: number; tenant?: string; replace?: boolean; json?: boolean }) => {
    const result = await rebuildGraphCommand(loadConfig(), opts, { print: json ? () => {} : console.log, progress: process.stderr });
    if (json) console.log(JSON.stringify(result, null, 2));
  });

const escalations = program
  .command("escalations")
  .description(
    "the escalation lifecycle: list the queue, show one, and ack / resolve / dismiss / reopen (each an appended event with the reviewer and a reason)",
  );

escalations
  .command("list")
  .description("escalations from the graph, most severe and oldest first (default: open and acknowledged)")
  .option("--tenant <id>", "one tenant's (default: every tenant's)")
  .option("--state <states>", "open, acknowledged, resolved, dismissed (comma-separated) or all")
  .option("--limit <n>", "at most this many", "100")
  .option("--json", "print the rows as JSON")
  .action(async (opts: { tenant?: string; state?: string; limit?: string; json?: boolean }) => {
    await listCommand(loadConfig(), opts);
  });

escalations
  .command("show")
  .description("one escalation and every transition, folded from the ledger")
  .argument("<id>", "the escalation id")
  .option("--tenant <id>", "refuse it unless it is this tenant's")
  .option("--json", "print it as JSON")
  .action(async (id: string, opts: { tenant?: string; json?: boolean }) => {
    await showCommand(loadConfig(), id, opts);
  });

for (const verb of Object.keys(ESCALATION_VERBS) as EscalationVerb[]) {
  escalations
    .command(verb)
    .description(`move an escalation to ${ESCALATION_VERBS[verb]}: an escalation.transition event with the reviewer and the reason, appended and projected`)
    .argument("<id>", "the escalation id")
    .requiredOption("--by <reviewer>", "the reviewer's id (an operator, recorded in the event)")
    .requiredOption("--reason <text>", "why (recorded in the event)")
    .option("--name <name>", "the reviewer's display name")
    .option("--tenant <id>", "refuse it unless it is this tenant's")
    .option("--decision <allow|deny>", "for an escalation about a held call: the reviewer's decision")
    .option("--json", "print the event as JSON")
    .action(async (id: string, opts: Parameters<typeof transitionCommand>[3]) => {
      await transitionCommand(loadConfig(), verb, id, opts);
    });
}

const deadLetterCommands = program
  .command("dead-letters")
  .description("input the worker refused (each with the reason naming the field): list, show, and replay it as a new job once the cause is fixed");

deadLetterCommands
  .command("list")
  .description("every dead letter: id, when, the reason, and whether it was replayed (inputs are shown by `show`)")
  .option("--json", "print them as JSON (without their inputs)")
  .action(async (opts: { json?: boolean }) => {
    await listDeadLetters(loadConfig(), opts);
  });

deadLetterCommands
  .command("show")
  .description("one dead letter, its input as received, and its replays")
  .argument("<id>", "the dead letter's id (<jobId> or <jobId>#<index>)")
  .option("--json", "print it as JSON")
  .action(async (id: string, opts: { json?: boolean }) => {
    await showDeadLetter(loadConfig(), id, opts);
  });

deadLetterCommands
  .command("replay")
  .description("submit dead letters' inputs again as new jobs (validated again by the worker); each replay is recorded, append-only")
  .argument("[ids...]", "the dead letters to replay")
  .option("--all", "every dead letter not replayed yet")
  .option("--by <operator>", "who replays them (recorded with the replay)")
  .option("--json", "print the replays as JSON")
  .action(async (ids: string[], { json, ...opts }: { all?: boolean; by?: string; json?: boolean }) => {
    if (Boolean(opts.all) === ids.length > 0) throw usageError("replay: give dead letter ids, or --all (not both)");
    const done = await replayDeadLetters(loadConfig(), ids, opts, json ? () => {} : console.log);
    if (json) console.log(JSON.stringify(done, null, 2));
  });

// Option parsers throw commander's InvalidArgumentError: commander then names the flag, and it is a usage error (exit 2).
function collectParam(value: string, into: Record<string, string>): Record<string, string> {
  const at = value.indexOf("=");
  if (at < 1) throw new InvalidArgumentError(`--param must be key=value, got ${JSON.stringify(value)}`);
  return { ...into, [value.slice(0, at)]: value.slice(at + 1) };
}

function positiveInt(value: string, name: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`${name} must be a positive integer, got ${JSON.stringify(value)}`);
  return n;
}

function nonEmpty(value: string): string {
  if (value.trim() === "") throw new InvalidArgumentError("must not be empty");
  return value;
}

program.parseAsync().catch((error: unknown) => {
  const code = exitCodeOf(error);
  // Commander printed its own errors (one line, see configureOutput) and help.
  if (!(error instanceof CommanderError)) console.error(`auditgraph: ${oneLine(error instanceof Error ? error.message : String(error))}`);
  process.exit(code);
});
