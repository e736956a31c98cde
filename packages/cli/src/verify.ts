import { stat, readFile } from "node:fs/promises";
import { InvalidArgumentError, type Command } from "commander";
import { readCheckpointFile, verifyConsistencyBundle, verifyInclusionBundle, type Checkpoint, type VerifyReport } from "@auditgraph/ledger";
import { loadConfig, type Config } from "./config.js";
import { CliError, cannotVerify, configError } from "./errors.js";
import { cosignatureDirOf, newestEntry, readCosigned } from "./cosigned.js";
import {
  EXIT_WITNESSES,
  WITNESS_OPTIONS_HELP,
  checkQuorum,
  formatQuorum,
  witnessPolicy,
  type StreamQuorum,
  type WitnessOptions,
  type WitnessPolicy,
} from "./witness-quorum.js";
import { openLedger, publicKeyFile, publicKeyOf } from "./ledger.js";

/**
 * Whether checkpoint signatures were checked: `verified` with a public key, `not-checked` with
 * --skip-signatures, `none` when there was no checkpoint to check.
 */
export type SignatureCheck = "verified" | "not-checked" | "none";

export interface VerifyOutcome {
  report: VerifyReport;
  signatures: SignatureCheck;
  /** Which variable the public key came from (null: none used). */
  publicKey: "AUDITGRAPH_PUBLIC_KEY" | "AUDITGRAPH_SIGNING_KEY" | null;
  /** The files of checkpoints kept outside the ledger that were checked too. */
  checkpointFiles: string[];
  /** With --witness-key: each stream's newest cosigned checkpoint and whether its cosignatures meet the quorum. */
  witnesses?: { required: number; of: string[]; streams: StreamQuorum[] };
}

const NOT_CHECKED = "signatures NOT checked (--skip-signatures): the records, chains and checkpoint roots were, but not who signed the checkpoints";

export function formatVerify(report: VerifyReport, signatures: SignatureCheck = "verified"): string {
  if (report.ok) {
    const streams = report.streams.map((s) => {
      const checkpoints =
        s.checkpoints === 0
          ? "no signed checkpoints"
          : s.signaturesVerified === s.checkpoints
            ? `${s.checkpoints} signed checkpoints verified`
            : `${s.checkpoints} checkpoint roots match, signatures NOT checked`;
      return (
        `  ${s.streamId}: ${s.count} events, root ${s.root}, ${checkpoints}` +
        (s.expired ? `; positions ${s.expired.from}..${s.expired.to - 1} expired by retention` : "")
      );
    });
    const lines = [`OK: ${report.count} events in ${report.streams.length} streams`, ...streams];
    if (signatures === "not-checked") lines.push(`WARNING: ${NOT_CHECKED}`);
    return lines.join("\n");
  }
  const f = report.failure;
  return `FAILED: stream ${f.streamId}, position ${f.position}, event ${f.eventId ?? "(none)"}: ${f.reason} (${f.detail})`;
}

async function keptCheckpoints(files: { path: string; name: string }[]): Promise<Checkpoint[]> {
  const kept: Checkpoint[] = [];
  for (const { path, name } of files) {
    kept.push(
      ...(await readCheckpointFile(path).catch((error: Error) => {
        throw cannotVerify(`${name}: cannot read the checkpoints kept in ${path}: ${error.message}`);
      })),
    );
  }
  return kept;
}

/**
 * `auditgraph verify`: every stream's chain, hashes and checkpoints, the exported checkpoints
 * too. Refuses (CliError, exit 2) rather than report what it did not check: no ledger where
 * AUDITGRAPH_LEDGER_DIR points, or signed checkpoints and no public key to check them with.
 */
export async function verifyLedger(
  config: Config,
  opts: { checkpoints?: string; skipSignatures?: boolean; witnesses?: WitnessPolicy | undefined },
): Promise<VerifyOutcome> {
  if (!config.ledgerUrl) {
    const dir = await stat(config.ledgerDir).catch(() => undefined);
    if (!dir?.isDirectory())
      throw cannotVerify(
        `AUDITGRAPH_LEDGER_DIR: no ledger at ${config.ledgerDir} (${dir ? "not a directory" : "it does not exist"}); point AUDITGRAPH_LEDGER_DIR at the worker's ledger directory`,
      );
  }
  const files = [
    ...(opts.checkpoints ? [{ path: opts.checkpoints, name: "--checkpoints" }] : []),
    ...(config.checkpointExport.file && config.checkpointExport.file !== opts.checkpoints
      ? [{ path: config.checkpointExport.file, name: "AUDITGRAPH_CHECKPOINT_FILE" }]
      : []),
  ];
  const kept = await keptCheckpoints(files);
  const publicKey = opts.skipSignatures ? undefined : await publicKeyOf(config);
  const ledger = await openLedger({ ...config, signingKeyPath: undefined });
  try {
    if (!publicKey && !opts.skipSignatures) {
      const signed = kept.length > 0 || (await Promise.all((await ledger.streams()).map((s) => ledger.latestCheckpoint(s)))).some(Boolean);
      if (signed)
        throw cannotVerify(
          "AUDITGRAPH_PUBLIC_KEY is not set: the ledger has signed checkpoints, and their signatures cannot be checked without the signer's public key; set AUDITGRAPH_PUBLIC_KEY to its PEM file, or pass --skip-signatures to check everything else",
        );
    }
    // The newest cosigned checkpoint of each stream is checked against the records like any kept one:
    // cosignatures over a root the ledger does not give would vouch for nothing.
    const quorums: StreamQuorum[] = [];
    if (opts.witnesses) {
      const dir = cosignatureDirOf(config);
      for (const streamId of await ledger.streams()) {
        const newest = newestEntry(await readCosigned(dir, streamId));
        if (newest) kept.push(newest.checkpoint);
        else if (!(await ledger.latestCheckpoint(streamId))) continue;
        quorums.push({ streamId, treeSize: newest?.checkpoint.treeSize ?? null, ...checkQuorum(newest?.checkpoint.note, opts.witnesses) });
      }
    }
    const report = await ledger.verify(publicKey, kept);
    const checkpoints = report.streams.reduce((n, s) => n + s.checkpoints, 0);
    const signatures: SignatureCheck = checkpoints === 0 && report.ok ? "none" : opts.skipSignatures ? "not-checked" : "verified";
    const source = publicKey ? (config.publicKeyPath ? "AUDITGRAPH_PUBLIC_KEY" : "AUDITGRAPH_SIGNING_KEY") : null;
    const witnesses = opts.witnesses && { required: opts.witnesses.required, of: opts.witnesses.cosigners.map((c) => c.name), streams: quorums };
    return { report, signatures, publicKey: source, checkpointFiles: files.map((f) => f.path), ...(witnesses ? { witnesses } : {}) };
  } finally {
    await ledger.close?.();
  }
}

/** Anything but an integrity failure found means the command could not verify: exit 2, never 1. */
const couldNot = (error: unknown): Error =>
  error instanceof CliError ? error : Object.assign(cannotVerify(`could not verify: ${(error as Error).message ?? String(error)}`), { cause: error });

/** A file's JSON, or a CliError (exit 2) saying why it could not be read. */
export async function readJsonFile(path: string, what: string): Promise<unknown> {
  const text = await readFile(path, "utf8").catch((error: Error) => {
    throw cannotVerify(`${what}: cannot read ${path}: ${error.message}`);
  });
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw cannotVerify(`${what}: ${path} is not JSON: ${(error as Error).message}`);
  }
}

/** The key a proof or snapshot is checked with: --public-key's, else the configured one. */
export async function verifyingKey(flag: string | undefined): Promise<string> {
  if (flag) return publicKeyFile(flag, "--public-key", cannotVerify);
  const configured = await publicKeyOf(loadConfig());
  if (!configured) throw configError("--public-key: no public key given, and none configured (AUDITGRAPH_PUBLIC_KEY)");
  return configured;
}

export function registerVerify(program: Command): void {
  program
    .command("verify")
    .description(
      `recompute every ledger stream's hash chain and check its signed checkpoints; exit 0 verified, 1 an integrity failure found, 2 could not verify, ${EXIT_WITNESSES} verified but witness cosignatures missing (--witness-key)`,
    )
    .option("--json", "print the report as JSON")
    .option(
      "--checkpoints <file>",
      "also check against checkpoints kept outside the ledger (an exported file; AUDITGRAPH_CHECKPOINT_FILE, when set, is checked without this flag)",
    )
    .option("--skip-signatures", "verify without a public key: records, chains and checkpoint roots are checked, who signed the checkpoints is not")
    .option("--witness-key <vkey>", `${WITNESS_OPTIONS_HELP.key}; each stream's newest cosigned checkpoint (\`checkpoint --witness\`) must carry them`, collect)
    .option("--witnesses-required <k>", WITNESS_OPTIONS_HELP.required, positiveCount)
    .action(async (opts: { json?: boolean; checkpoints?: string; skipSignatures?: boolean } & WitnessOptions) => {
      const witnesses = witnessPolicy(opts);
      const outcome = await verifyLedger(loadConfig(), { ...opts, witnesses }).catch((error: unknown) => {
        throw couldNot(error);
      });
      const { report, ...rest } = outcome;
      const short = rest.witnesses?.streams.filter((q) => !q.ok) ?? [];
      console.log(
        opts.json
          ? JSON.stringify({ ...report, ...rest, ...(rest.signatures === "not-checked" ? { warning: NOT_CHECKED } : {}) }, null, 2)
          : [formatVerify(report, rest.signatures), ...(rest.witnesses?.streams ?? []).map((q) => formatQuorum(q, rest.witnesses!.required))].join("\n"),
      );
      if (!report.ok) process.exitCode = 1;
      else if (short.length > 0) {
        console.error(`auditgraph: missing cosignatures: ${short.map((q) => formatQuorum(q, rest.witnesses!.required)).join("; ")}`);
        process.exitCode = EXIT_WITNESSES;
      }
    });

  program
    .command("verify-proof")
    .description(
      `check a \`prove\` or \`prove-consistency\` file with nothing but the public key (see docs/verifying-proofs.md); exit 0 it holds, 1 it does not, 2 could not check, ${EXIT_WITNESSES} it holds but witness cosignatures are missing (--witness-key)`,
    )
    .argument("<file>", "the JSON printed by `auditgraph prove` or `auditgraph prove-consistency`")
    .option("--public-key <pem>", "the checkpoint signer's public key (PEM file; default: AUDITGRAPH_PUBLIC_KEY)")
    .option("--json", "print the outcome as JSON")
    .option("--witness-key <vkey>", `${WITNESS_OPTIONS_HELP.key}; the proof's checkpoint (a consistency proof's later one) must carry them`, collect)
    .option("--witnesses-required <k>", WITNESS_OPTIONS_HELP.required, positiveCount)
    .action(async (file: string, opts: { publicKey?: string; json?: boolean } & WitnessOptions) => {
      const witnesses = witnessPolicy(opts);
      const [input, publicKey] = await Promise.all([readJsonFile(file, "<file>"), verifyingKey(opts.publicKey)]).catch((error: unknown) => {
        throw couldNot(error);
      });
      const kind =
        typeof input === "object" && input !== null
          ? "record" in input
            ? "inclusion"
            : "from" in input && "to" in input
              ? "consistency"
              : undefined
          : undefined;
      if (!kind) throw cannotVerify(`<file>: ${file} is neither what \`auditgraph prove\` nor what \`auditgraph prove-consistency\` prints`);
      let text: string;
      let result: Record<string, unknown>;
      let cosigned: Checkpoint;
      try {
        if (kind === "inclusion") {
          const b = verifyInclusionBundle(input, publicKey);
          text = `OK: event ${b.record.event.eventId} is record ${b.leafIndex} of the ${b.treeSize} in stream ${b.checkpoint.streamId} signed at ${b.checkpoint.time} (root ${b.checkpoint.rootHash})`;
          result = { eventId: b.record.event.eventId, leafIndex: b.leafIndex, treeSize: b.treeSize, checkpoint: b.checkpoint };
          cosigned = b.checkpoint;
        } else {
          const { from, to } = verifyConsistencyBundle(input, publicKey);
          text = `OK: in stream ${to.streamId}, the ${to.treeSize} records signed at ${to.time} extend the ${from.treeSize} signed at ${from.time}`;
          result = { from, to };
          cosigned = to;
        }
      } catch (error) {
        const reason = (error as Error).message;
        if (opts.json) console.log(JSON.stringify({ ok: false, kind, reason }, null, 2));
        console.error(`FAILED: ${reason}`);
        process.exitCode = 1;
        return;
      }
      if (!witnesses) return console.log(opts.json ? JSON.stringify({ ok: true, kind, ...result }, null, 2) : text);
      const quorum: StreamQuorum = { streamId: cosigned.streamId, treeSize: cosigned.treeSize, ...checkQuorum(cosigned.note, witnesses) };
      const line = formatQuorum(quorum, witnesses.required);
      if (opts.json)
        console.log(
          JSON.stringify(
            { ok: quorum.ok, kind, ...result, witnesses: { required: witnesses.required, of: witnesses.cosigners.map((c) => c.name), ...quorum } },
            null,
            2,
          ),
        );
      else console.log(`${text}\n${line}`);
      if (!quorum.ok) {
        console.error(`FAILED: missing cosignatures: ${line}`);
        process.exitCode = EXIT_WITNESSES;
      }
    });
}

const collect = (value: string, into: string[] = []) => [...into, value];

function positiveCount(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`must be a whole number from 1, got ${JSON.stringify(value)}`);
  return n;
}
