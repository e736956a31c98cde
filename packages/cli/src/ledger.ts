import { createPublicKey } from "node:crypto";
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
import { configError } from "./errors.js";

/** The ledger of a config (segment files, or PostgreSQL), signing checkpoints when a signing key is configured. */
export async function openLedger(config: Config, segment: Pick<SegmentLedgerOptions, "lockWaitMs"> = {}): Promise<Ledger & { close?: () => Promise<void> }> {
  const options: SegmentLedgerOptions = { ...segment };
  if (config.signingKeyPath) {
    const pem = await readFile(config.signingKeyPath, "utf8").catch((error: Error) => {
      throw configError(`AUDITGRAPH_SIGNING_KEY: cannot read ${config.signingKeyPath}: ${error.message}`);
    });
    options.signer = new CheckpointSigner(pem, { origin: config.logOrigin });
    const { file, webhookUrl } = config.checkpointExport;
    if (file || webhookUrl) options.onCheckpoint = checkpointExporter(config.checkpointExport);
  }
  return config.ledgerUrl
    ? PostgresLedger.open({ connectionString: config.ledgerUrl, schema: config.ledgerSchema }, options)
    : new SegmentLedger(config.ledgerDir, options);
}

/**
 * The public key signatures are checked with: AUDITGRAPH_PUBLIC_KEY's, else the one of
 * AUDITGRAPH_SIGNING_KEY (whoever holds the private key may verify with it); undefined when
 * neither is set. A file that cannot be read, or is not an Ed25519 key, is a configuration
 * error naming its variable.
 */
export async function publicKeyOf(config: Config): Promise<string | undefined> {
  if (config.publicKeyPath) return publicKeyFile(config.publicKeyPath, "AUDITGRAPH_PUBLIC_KEY", configError);
  if (config.signingKeyPath) {
    const pem = await readFile(config.signingKeyPath, "utf8").catch((error: Error) => {
      throw configError(`AUDITGRAPH_SIGNING_KEY: cannot read ${config.signingKeyPath}: ${error.message}`);
    });
    try {
      return new CheckpointSigner(pem).publicKeyPem;
    } catch {
      throw configError(`AUDITGRAPH_SIGNING_KEY: ${config.signingKeyPath} is not an Ed25519 private key (PEM)`);
    }
  }
  return undefined;
}

/** An Ed25519 public key (PEM) read from `path`; what is wrong with it is thrown by `fail`, naming `name`. */
export async function publicKeyFile(path: string, name: string, fail: (message: string) => Error): Promise<string> {
  const pem = await readFile(path, "utf8").catch((error: Error) => {
    throw fail(`${name}: cannot read ${path}: ${error.message}`);
  });
  let type: string | undefined;
  try {
    type = createPublicKey(pem).asymmetricKeyType;
  } catch {
    throw fail(`${name}: ${path} is not a public key (PEM)`);
  }
  if (type !== "ed25519") throw fail(`${name}: ${path} is a ${type ?? "unknown"} key; checkpoints are signed with Ed25519`);
  return pem;
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
  const exists = await readFile(privateKeyPath).then(
    () => true,
    () => false,
  );
  if (!exists) await writeKeyPair(dir);
  return { ...config, signingKeyPath: privateKeyPath, publicKeyPath: join(dir, "checkpoint-public-key.pem") };
}
