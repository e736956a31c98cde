import { mkdir, readFile, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import {
  CheckpointSigner,
  PostgresLedger,
  SegmentLedger,
  checkpointExporter,
  generateSigningKey,
  type Ledger,
  type SegmentLedgerOptions,
} from "@auditgraph/ledger";
import type { Config } from "./config.js";

/** The ledger of a config (segment files, or PostgreSQL), signing checkpoints when a signing key is configured. */
export async function openLedger(config: Config): Promise<Ledger & { close?: () => Promise<void> }> {
  const options: SegmentLedgerOptions = {};
  if (config.signingKeyPath) {
    const pem = await readFile(config.signingKeyPath, "utf8").catch((error: Error) => {
      throw new Error(`AUDITGRAPH_SIGNING_KEY: cannot read ${config.signingKeyPath}: ${error.message}`);
    });
    options.signer = new CheckpointSigner(pem);
    const { file, webhookUrl } = config.checkpointExport;
    if (file || webhookUrl) options.onCheckpoint = checkpointExporter(config.checkpointExport);
  }
  return config.ledgerUrl
    ? PostgresLedger.open({ connectionString: config.ledgerUrl, schema: config.ledgerSchema }, options)
    : new SegmentLedger(config.ledgerDir, options);
}

/** The public key `verify` checks signatures with: the configured one, else the signing key's. */
export async function publicKeyOf(config: Config): Promise<string | undefined> {
  if (config.publicKeyPath) return readFile(config.publicKeyPath, "utf8");
  if (config.signingKeyPath) return new CheckpointSigner(await readFile(config.signingKeyPath, "utf8")).publicKeyPem;
  return undefined;
}

/** Writes a new Ed25519 key pair (the private key readable by its owner only). */
export async function writeKeyPair(dir: string): Promise<{ privateKeyPath: string; publicKeyPath: string }> {
  await mkdir(dir, { recursive: true });
  const { privateKeyPem, publicKeyPem } = generateSigningKey();
  const privateKeyPath = join(dir, "checkpoint-signing-key.pem");
  const publicKeyPath = join(dir, "checkpoint-public-key.pem");
  await writeFile(privateKeyPath, privateKeyPem, { mode: 0o600, flag: "wx" });
  await writeFile(publicKeyPath, publicKeyPem, { flag: "wx" });
  return { privateKeyPath, publicKeyPath };
}

/** The demo's own key pair beside its ledger, made on first use. */
export async function demoKeys(config: Config): Promise<Config> {
  if (config.signingKeyPath) return config;
  const dir = join(dirname(config.ledgerDir), "keys");
  const privateKeyPath = join(dir, "checkpoint-signing-key.pem");
  const exists = await readFile(privateKeyPath).then(() => true, () => false);
  if (!exists) await writeKeyPair(dir);
  return { ...config, signingKeyPath: privateKeyPath, publicKeyPath: join(dir, "checkpoint-public-key.pem") };
}
