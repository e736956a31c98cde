import { InvalidArgumentError, type Command } from "commander";
import { MAX_SHARDS, shardOfStream, streamIdFor, streamsOfTenant } from "@auditgraph/core";
import { DEFAULT_LOG_ORIGIN, checkpointExporter, parseCheckpointNote, verifierKey, type Checkpoint, type Ledger } from "@auditgraph/ledger";
import { appendCosigned, cosignatureDirOf, cosignedNote, entryFor, lastCosignedSize, readCosigned, submitToWitness, withCosignatures } from "./cosigned.js";
import { loadConfig, type Config } from "./config.js";
import { configError, usageError } from "./errors.js";
import { openLedger, publicKeyOf } from "./ledger.js";

/** Which stream's checkpoint: a tenant's (and one of its shards), or with neither the ledger's only stream. */
export interface CheckpointTarget {
  tenant?: string;
  shard?: number;
}

/**
 * The latest signed checkpoint of a tenant's stream (of the only stream, with no tenant given).
 * Refused (exit 2) when there is none to print, or it was signed before checkpoints carried
 * their note: a note cannot be made afterwards without the signing key.
 */
export async function latestCheckpointNote(config: Config, target: CheckpointTarget): Promise<Checkpoint & { note: string }> {
  const ledger = await openLedger({ ...config, signingKeyPath: undefined });
  try {
    return await latestOf(ledger, target);
  } finally {
    await ledger.close?.();
  }
}

/**
 * The stream a checkpoint is asked of. A tenant's stream is its base stream, or with `--shard` that
 * shard's; a tenant with several streams (shards) has one checkpoint per stream, so it is refused
 * without `--shard` rather than one picked for the caller.
 */
async function streamOf(ledger: Ledger, { tenant, shard }: CheckpointTarget): Promise<string> {
  if (tenant === undefined) {
    if (shard !== undefined) throw usageError("--shard: give --tenant too (the shard is one of a tenant's streams)");
    const streams = await ledger.streams();
    if (streams.length !== 1)
      throw usageError(
        `checkpoint: give --tenant (the ledger has ${streams.length === 0 ? "no streams" : `${streams.length} streams, one per tenant or shard`})`,
      );
    return streams[0]!;
  }
  const streams = streamsOfTenant(await ledger.streams(), tenant);
  if (shard !== undefined) {
    const streamId = streamIdFor(tenant, shard);
    if (!streams.includes(streamId))
      throw usageError(
        `--shard ${shard}: tenant ${JSON.stringify(tenant)} has no stream ${streamId} (${streams.length === 0 ? "it has no streams" : `its streams: ${streams.join(", ")}`})`,
      );
    return streamId;
  }
  if (streams.length > 1)
    throw usageError(
      `--tenant ${JSON.stringify(tenant)}: the tenant has ${streams.length} streams (${streams.join(", ")}), one checkpoint each: give --shard <n> (${streams.map((s) => shardOfStream(s).shard).join(", ")})`,
    );
  return streamIdFor(tenant);
}

async function latestOf(ledger: Ledger, target: CheckpointTarget): Promise<Checkpoint & { note: string }> {
  const streamId = await streamOf(ledger, target);
  const latest = await ledger.latestCheckpoint(streamId);
  const which =
    target.tenant === undefined
      ? `stream ${streamId}`
      : `--tenant ${JSON.stringify(target.tenant)}${target.shard === undefined ? "" : ` --shard ${target.shard}`}`;
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
async function witnessLatest(config: Config, target: CheckpointTarget, urls: string[]) {
  const ledger = await openLedger({ ...config, signingKeyPath: undefined });
  try {
    const latest = await latestOf(ledger, target);
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

function shardNumber(value: string): number {
  const n = Number(value);
  if (!/^\d{1,3}$/.test(value.trim()) || n >= MAX_SHARDS) throw new InvalidArgumentError(`must be a shard number (an integer from 0 to ${MAX_SHARDS - 1})`);
  return n;
}

export function registerCheckpointNote(program: Command): void {
  program
    .command("checkpoint")
    .description(
      "print a tenant stream's latest signed checkpoint as a C2SP signed note (tlog-checkpoint), which standard tooling verifies with `auditgraph vkey`'s key (see docs/verifying-proofs.md)",
    )
    .option("--tenant <id>", "the tenant whose stream's checkpoint is printed (needed when the ledger has several streams)", tenantId)
    .option("--shard <n>", "which of the tenant's streams (shards): 0 is its base stream (needed when the tenant has several)", shardNumber)
    .option("--json", "print the checkpoint as JSON, its note and origin included")
    .option(
      "--witness <url>",
      "submit the checkpoint to this C2SP tlog-witness and keep its cosignature with the checkpoint (repeat it; default: AUDITGRAPH_WITNESSES, comma-separated); exit 1 if a witness did not cosign",
      collectUrl,
    )
    .action(async (opts: { tenant?: string; shard?: number; json?: boolean; witness?: string[] }) => {
      const config = loadConfig();
      const urls = opts.witness ?? witnessesFromEnv();
      const target: CheckpointTarget = {
        ...(opts.tenant === undefined ? {} : { tenant: opts.tenant }),
        ...(opts.shard === undefined ? {} : { shard: opts.shard }),
      };
      let checkpoint: Checkpoint & { note: string };
      if (urls.length === 0) checkpoint = await withCosignatures(cosignatureDirOf(config), await latestCheckpointNote(config, target));
      else {
        const done = await witnessLatest(config, target, urls);
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
