import { InvalidArgumentError, type Command } from "commander";
import { streamIdFor } from "@auditgraph/core";
import { DEFAULT_LOG_ORIGIN, checkpointExporter, parseCheckpointNote, verifierKey, type Checkpoint, type Ledger } from "@auditgraph/ledger";
import { appendCosigned, cosignatureDirOf, cosignedNote, entryFor, lastCosignedSize, readCosigned, submitToWitness, withCosignatures } from "./cosigned.js";
import { loadConfig, type Config } from "./config.js";
import { configError, usageError } from "./errors.js";
import { openLedger, publicKeyOf } from "./ledger.js";

/**
 * The latest signed checkpoint of a tenant's stream (of the only stream, with no tenant given).
 * Refused (exit 2) when there is none to print, or it was signed before checkpoints carried
 * their note: a note cannot be made afterwards without the signing key.
 */
export async function latestCheckpointNote(config: Config, tenant: string | undefined): Promise<Checkpoint & { note: string }> {
  const ledger = await openLedger({ ...config, signingKeyPath: undefined });
  try {
    return await latestOf(ledger, tenant);
  } finally {
    await ledger.close?.();
  }
}

async function latestOf(ledger: Ledger, tenant: string | undefined): Promise<Checkpoint & { note: string }> {
  let streamId: string;
  if (tenant !== undefined) streamId = streamIdFor(tenant);
  else {
    const streams = await ledger.streams();
    if (streams.length !== 1)
      throw usageError(`checkpoint: give --tenant (the ledger has ${streams.length === 0 ? "no streams" : `${streams.length} streams, one per tenant`})`);
    streamId = streams[0]!;
  }
  const latest = await ledger.latestCheckpoint(streamId);
  const which = tenant === undefined ? `stream ${streamId}` : `--tenant ${JSON.stringify(tenant)}`;
  if (!latest) throw usageError(`${which}: no signed checkpoint (the ledger signs them when AUDITGRAPH_SIGNING_KEY is set)`);
  if (latest.note === undefined)
    throw usageError(
      `${which}: the latest checkpoint (size ${latest.treeSize}, ${latest.time}) was signed before checkpoints carried a signed note; the next one signed will carry it`,
    );
  return { ...latest, note: latest.note };
}

/**
 * `checkpoint --witness`: the latest checkpoint submitted to each witness (tlog-witness), from the
 * size that witness last cosigned, and its cosignatures stored beside the ledger and exported (the
 * checkpoint file and webhook, when set) so that `prove` and exports carry them.
 */
async function witnessLatest(config: Config, tenant: string | undefined, urls: string[]) {
  const ledger = await openLedger({ ...config, signingKeyPath: undefined });
  try {
    const latest = await latestOf(ledger, tenant);
    const dir = cosignatureDirOf(config);
    const entries = await readCosigned(dir, latest.streamId);
    const proofFrom = async (size: number): Promise<Buffer[]> => {
      if (size > latest.treeSize) throw new Error(`the witness holds size ${size}, above this checkpoint's ${latest.treeSize} (another history of this log?)`);
      if (size === 0 || size === latest.treeSize) return [];
      const bundle = await ledger.proveConsistency(latest.streamId, size, latest.treeSize);
      return bundle.proof.map((h) => Buffer.from(h, "hex"));
    };
    const answers = await Promise.all(urls.map((url) => submitToWitness(url, latest.note, lastCosignedSize(entries, url), proofFrom)));
    const previous = entryFor(entries, latest);
    const ok = answers.filter((a) => a.ok).map((a) => a.url);
    const note = cosignedNote(previous?.checkpoint.note ?? latest.note, answers);
    const checkpoint = { ...latest, note };
    if (ok.length > 0) {
      await appendCosigned(dir, { checkpoint, witnesses: [...new Set([...(previous?.witnesses ?? []), ...ok])] });
      const { file, webhookUrl } = config.checkpointExport;
      if (file || webhookUrl) {
        const exporter = checkpointExporter(config.checkpointExport);
        await exporter(checkpoint);
        await exporter.settled();
      }
    }
    return { checkpoint, answers };
  } finally {
    await ledger.close?.();
  }
}

/** The note verifier key of the configured key (AUDITGRAPH_PUBLIC_KEY, else AUDITGRAPH_SIGNING_KEY's) and AUDITGRAPH_LOG_ORIGIN. */
export async function configuredVerifierKey(config: Config): Promise<{ origin: string; vkey: string }> {
  const publicKeyPem = await publicKeyOf(config);
  if (!publicKeyPem) throw configError("AUDITGRAPH_PUBLIC_KEY: not set, nor AUDITGRAPH_SIGNING_KEY: the verifier key is made from the checkpoint signer's key");
  const origin = config.logOrigin ?? DEFAULT_LOG_ORIGIN;
  return { origin, vkey: verifierKey(publicKeyPem, origin) };
}

function witnessUrl(value: string, name: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new InvalidArgumentError(`${name}: ${JSON.stringify(value)} is not a URL`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw new InvalidArgumentError(`${name}: ${JSON.stringify(value)} is not an http(s) URL`);
  return value;
}

function collectUrl(value: string, into: string[] = []): string[] {
  return [...into, witnessUrl(value, "must be a witness's http(s) URL")];
}

/** AUDITGRAPH_WITNESSES: the witnesses' URLs, comma-separated (none when unset). */
function witnessesFromEnv(): string[] {
  const urls = (process.env.AUDITGRAPH_WITNESSES ?? "")
    .split(",")
    .map((u) => u.trim())
    .filter(Boolean);
  try {
    return urls.map((u) => witnessUrl(u, "AUDITGRAPH_WITNESSES"));
  } catch (error) {
    throw configError((error as Error).message);
  }
}

function tenantId(value: string): string {
  if (value.trim() === "") throw new InvalidArgumentError("must not be empty");
  return value;
}

export function registerCheckpointNote(program: Command): void {
  program
    .command("checkpoint")
    .description(
      "print a tenant stream's latest signed checkpoint as a C2SP signed note (tlog-checkpoint), which standard tooling verifies with `auditgraph vkey`'s key (see docs/verifying-proofs.md)",
    )
    .option("--tenant <id>", "the tenant whose stream's checkpoint is printed (needed when the ledger has several streams)", tenantId)
    .option("--json", "print the checkpoint as JSON, its note and origin included")
    .option(
      "--witness <url>",
      "submit the checkpoint to this C2SP tlog-witness and keep its cosignature with the checkpoint (repeat it; default: AUDITGRAPH_WITNESSES, comma-separated); exit 1 if a witness did not cosign",
      collectUrl,
    )
    .action(async (opts: { tenant?: string; json?: boolean; witness?: string[] }) => {
      const config = loadConfig();
      const urls = opts.witness ?? witnessesFromEnv();
      let checkpoint: Checkpoint & { note: string };
      if (urls.length === 0) checkpoint = await withCosignatures(cosignatureDirOf(config), await latestCheckpointNote(config, opts.tenant));
      else {
        const done = await witnessLatest(config, opts.tenant, urls);
        checkpoint = done.checkpoint;
        for (const a of done.answers) if (!a.ok) console.error(`auditgraph: witness ${a.url} did not cosign: ${a.error}`);
        if (done.answers.some((a) => !a.ok)) process.exitCode = 1;
      }
      if (opts.json) return console.log(JSON.stringify({ ...checkpoint, origin: parseCheckpointNote(checkpoint.note).origin }, null, 2));
      // Written as it is: one newline more and the note no longer parses (its signatures end it).
      process.stdout.write(checkpoint.note);
    });

  program
    .command("vkey")
    .description(
      "print the verifier key (C2SP vkey: <origin>+<key id>+<key>) that checkpoint notes verify with: the checkpoint signer's key under AUDITGRAPH_LOG_ORIGIN",
    )
    .option("--json", "print the origin and the verifier key as JSON")
    .action(async (opts: { json?: boolean }) => {
      const { origin, vkey } = await configuredVerifierKey(loadConfig());
      console.log(opts.json ? JSON.stringify({ origin, vkey }, null, 2) : vkey);
    });
}
