import { InvalidArgumentError, type Command } from "commander";
import { streamIdFor } from "@auditgraph/core";
import { DEFAULT_LOG_ORIGIN, parseCheckpointNote, verifierKey, type Checkpoint } from "@auditgraph/ledger";
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
    .action(async (opts: { tenant?: string; json?: boolean }) => {
      const checkpoint = await latestCheckpointNote(loadConfig(), opts.tenant);
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
