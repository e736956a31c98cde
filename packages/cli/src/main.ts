import { Command } from "commander";
import { ValidationError } from "@auditgraph/core";
import { readFile, writeFile } from "node:fs/promises";
import { Graph, INVESTIGATIONS, formatLineage, investigate, isInvestigation, renderLineageHtml } from "@auditgraph/graph";
import { readCheckpointFile, verifyConsistencyBundle, verifyInclusionBundle } from "@auditgraph/ledger";
import { AuditWorker, loadWorkerPolicies } from "@auditgraph/worker";
import { keyStoreDirOf, loadConfig } from "./config.js";
import { eraseSubject, keyStoreOf } from "./erase.js";
import { recordDeployment } from "./deploy.js";
import { ESCALATION_VERBS, listCommand, showCommand, transitionCommand, type EscalationVerb } from "./escalations.js";
import { runDemo } from "./demo.js";
import { formatVerify } from "./verify.js";
import { registerRetention } from "./retention.js";
import { rebuildGraphCommand } from "./rebuild-graph.js";
import { openLedger, publicKeyOf, writeKeyPair } from "./ledger.js";
import { registerReplay } from "./replay.js";
import { listDeadLetters, replayDeadLetters, showDeadLetter } from "./dead-letters.js";

const program = new Command()
  .name("auditgraph")
  .description("Audit trail and lineage store for LLM agents. Settings come from the environment (see README).")
  .showHelpAfterError();

program
  .command("demo")
  .description("run a sample audited agent end to end, then show the lineage of its answer and verify the ledger")
  .action(async () => {
    await runDemo(loadConfig());
  });

program
  .command("worker")
  .description("run the audit worker until SIGTERM/SIGINT (the batch in hand is finished first)")
  .option("--concurrency <n>", "jobs processed at once", (v) => positiveInt(v, "--concurrency"), 1)
  .option("--lock-ms <n>", "after how long a batch held by a dead worker is taken over", (v) => positiveInt(v, "--lock-ms"), 30_000)
  .action(async (opts: { concurrency: number; lockMs: number }) => {
    const config = loadConfig();
    const graph = new Graph(config.neo4j);
    await graph.migrate();
    const ledger = await openLedger(config);
    if (!config.signingKeyPath) console.error("auditgraph worker: no AUDITGRAPH_SIGNING_KEY, so no signed checkpoints are made");
    const policies = await loadWorkerPolicies(config.policiesPath);
    console.log(
      `auditgraph worker: policies ${config.policiesPath ?? "(built-in defaults)"}, set ${policies.hash.slice(0, 12)}, ${policies.policies.length} policies, escalating at ${config.escalationSeverity ?? "high"} and above`,
    );
    const worker = new AuditWorker({
      policies,
      ...(config.escalationSeverity ? { escalationSeverity: config.escalationSeverity } : {}),
      connection: config.redis,
      queueName: config.queueName,
      ledger,
      graph,
      keyStore: keyStoreOf(config),
      concurrency: opts.concurrency,
      lockDurationMs: opts.lockMs,
      ...(config.escalationWebhook ? { notifier: { webhook: config.escalationWebhook } } : {}),
    });
    // The webhook's host only: its path or query may carry a token, and the secret is never printed.
    if (config.escalationWebhook) console.log(`auditgraph worker: notifying escalations to a signed webhook on ${new URL(config.escalationWebhook.url).host}`);
    await worker.waitUntilReady();
    console.log(`auditgraph worker: queue ${config.queueName}, ledger ${config.ledgerDir}, key store ${keyStoreDirOf(config)}, graph ${config.neo4j.uri}`);
    await new Promise<void>((resolve) => {
      const stop = (signal: string) => {
        console.log(`auditgraph worker: ${signal}, finishing the batch in hand`);
        resolve();
      };
      process.once("SIGTERM", () => stop("SIGTERM"));
      process.once("SIGINT", () => stop("SIGINT"));
    });
    await worker.close();
    await graph.close();
    await ledger.close?.();
    console.log("auditgraph worker: stopped");
  });

program
  .command("verify")
  .description("recompute every ledger stream's hash chain; exit 1 at the first record that does not match")
  .option("--json", "print the report as JSON")
  .option("--checkpoints <file>", "also check against checkpoints kept outside the ledger (an exported file)")
  .action(async (opts: { json?: boolean; checkpoints?: string }) => {
    const config = loadConfig();
    const kept = opts.checkpoints ? await readCheckpointFile(opts.checkpoints) : [];
    const ledger = await openLedger({ ...config, signingKeyPath: undefined });
    const report = await ledger.verify(await publicKeyOf(config), kept).finally(() => ledger.close?.());
    console.log(opts.json ? JSON.stringify(report, null, 2) : formatVerify(report));
    if (!report.ok) process.exitCode = 1;
  });

program
  .command("trace")
  .description("print the lineage of one output, or of a trace's final output, from Neo4j")
  .argument("<id>", "an output id or a trace id")
  .option("--json", "print the lineage as JSON")
  .option("--html <file>", "also write the lineage as an HTML report (a drawing and every field)")
  .action(async (id: string, opts: { json?: boolean; html?: string }) => {
    const graph = new Graph(loadConfig().neo4j);
    try {
      const lineage = await graph.lineage(id);
      if (!lineage) {
        console.error(`no output or trace with id ${JSON.stringify(id)} in the graph`);
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
  .action(async (opts: { out: string }) => {
    const { privateKeyPath, publicKeyPath } = await writeKeyPair(opts.out);
    console.log(`private key: ${privateKeyPath} (keep it secret; AUDITGRAPH_SIGNING_KEY=${privateKeyPath})`);
    console.log(`public key:  ${publicKeyPath} (give it to whoever verifies)`);
  });

program
  .command("prove")
  .description("print an event's record, its Merkle inclusion proof and the signed checkpoint it is under, as JSON")
  .argument("<eventId>", "the event id")
  .action(async (eventId: string) => {
    const ledger = await openLedger({ ...loadConfig(), signingKeyPath: undefined });
    console.log(JSON.stringify(await ledger.prove(eventId).finally(() => ledger.close?.()), null, 2));
  });

program
  .command("prove-consistency")
  .description("print two signed checkpoints of a stream and the Merkle consistency proof that the later extends the earlier, as JSON")
  .argument("<streamId>", "the stream (e.g. tenant-acme)")
  .argument("<fromSize>", "the earlier checkpoint's tree size", (v) => positiveInt(v, "fromSize"))
  .argument("[toSize]", "the later checkpoint's tree size (default: the latest)", (v) => positiveInt(v, "toSize"))
  .action(async (streamId: string, fromSize: number, toSize: number | undefined) => {
    const ledger = await openLedger({ ...loadConfig(), signingKeyPath: undefined });
    console.log(JSON.stringify(await ledger.proveConsistency(streamId, fromSize, toSize).finally(() => ledger.close()), null, 2));
  });

program
  .command("verify-proof")
  .description("check a `prove` or `prove-consistency` file with nothing but the public key (see docs/verifying-proofs.md)")
  .argument("<file>", "the JSON printed by `auditgraph prove` or `auditgraph prove-consistency`")
  .requiredOption("--public-key <pem>", "the checkpoint signer's public key (PEM file)")
  .action(async (file: string, opts: { publicKey: string }) => {
    const input = JSON.parse(await readFile(file, "utf8")) as Record<string, unknown>;
    const publicKey = await readFile(opts.publicKey, "utf8");
    if ("record" in input) {
      const bundle = verifyInclusionBundle(input, publicKey);
      return console.log(
        `OK: event ${bundle.record.event.eventId} is record ${bundle.leafIndex} of the ${bundle.treeSize} in stream ${bundle.checkpoint.streamId} signed at ${bundle.checkpoint.time} (root ${bundle.checkpoint.rootHash})`,
      );
    }
    const { from, to } = verifyConsistencyBundle(input, publicKey);
    console.log(`OK: in stream ${to.streamId}, the ${to.treeSize} records signed at ${to.time} extend the ${from.treeSize} signed at ${from.time}`);
  });

registerRetention(program);
registerReplay(program);

program
  .command("erase")
  .description(
    "erase a data subject: record a subject.erased event (no personal data in it), drop the subject's plaintext from the graph, destroy its data key (its sealed payloads become unreadable; verify and prove still hold)",
  )
  .requiredOption("--user <id>", "the user's id, as the agent recorded it")
  .requiredOption("--tenant <id>", "the user's tenant")
  .option("--reason <text>", "why, kept in the ledger (write no personal data in it)")
  .option("--by <operator>", "who asked for the erasure (an operator id)")
  .action(async (opts: { user: string; tenant: string; reason?: string; by?: string }) => {
    await eraseSubject(loadConfig(), opts);
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
  .action(async (opts: Parameters<typeof recordDeployment>[1]) => {
    await recordDeployment(loadConfig(), opts);
  });

program
  .command("query")
  .description(`run a named investigation (read-only): ${Object.keys(INVESTIGATIONS).join(", ")}`)
  .argument("<name>", "the investigation")
  .option("--param <key=value>", "a parameter (repeat it); every investigation needs tenantId", collectParam, {})
  .option("--json", "print the rows as JSON")
  .action(async (name: string, opts: { param: Record<string, string>; json?: boolean }) => {
    if (!isInvestigation(name)) {
      throw new Error(`no investigation ${JSON.stringify(name)}; there are: ${Object.keys(INVESTIGATIONS).join(", ")}`);
    }
    const graph = new Graph(loadConfig().neo4j);
    try {
      const rows = await investigate(graph, name, opts.param as never);
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
  .action(async () => {
    const graph = new Graph(loadConfig().neo4j);
    try {
      const { applied, skipped } = await graph.migrate();
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
  .action(async (opts: { batch: number; tenant?: string; replace?: boolean }) => {
    await rebuildGraphCommand(loadConfig(), opts);
  });

const escalations = program
  .command("escalations")
  .description("the escalation lifecycle: list the queue, show one, and ack / resolve / dismiss / reopen (each an appended event with the reviewer and a reason)");

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
  .action(async (ids: string[], opts: { all?: boolean; by?: string }) => {
    if (Boolean(opts.all) === ids.length > 0) throw new Error("replay: give dead letter ids, or --all (not both)");
    await replayDeadLetters(loadConfig(), ids, opts);
  });

function collectParam(value: string, into: Record<string, string>): Record<string, string> {
  const at = value.indexOf("=");
  if (at < 1) throw new Error(`--param must be key=value, got ${JSON.stringify(value)}`);
  return { ...into, [value.slice(0, at)]: value.slice(at + 1) };
}

function positiveInt(value: string, name: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a positive integer, got ${JSON.stringify(value)}`);
  return n;
}

program.parseAsync().catch((error: unknown) => {
  const message = error instanceof ValidationError || error instanceof Error ? error.message : String(error);
  console.error(`auditgraph: ${message}`);
  process.exit(1);
});

