import { readFile } from "node:fs/promises";
import { InvalidArgumentError, type Command } from "commander";
import { pino } from "pino";
import { cosigner, encodeCosignerKey } from "@auditgraph/ledger";
import { Witness, WitnessState, witnessServer } from "@auditgraph/witness";
import { createPrivateKey, type KeyObject } from "node:crypto";
import { loadConfig } from "./config.js";
import { configError, usageError } from "./errors.js";

/**
 * The witness's private key: --key's file, else AUDITGRAPH_WITNESS_KEY (a PEM file, or the PEM
 * itself). What is wrong with it names where it came from, never what it holds.
 */
async function witnessKey(flag: string | undefined): Promise<KeyObject> {
  const env = process.env.AUDITGRAPH_WITNESS_KEY;
  const source = flag !== undefined ? "--key" : "AUDITGRAPH_WITNESS_KEY";
  const fail = flag !== undefined ? usageError : configError;
  const value = flag ?? env;
  if (value === undefined || value.trim() === "")
    throw usageError("witness: give --key <file> or set AUDITGRAPH_WITNESS_KEY (a PEM private key; `auditgraph keygen` makes one)");
  const pem = value.trimStart().startsWith("-----BEGIN")
    ? value
    : await readFile(value, "utf8").catch((error: Error) => {
        throw fail(`${source}: cannot read ${value}: ${error.message}`);
      });
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch {
    throw fail(`${source}: not a private key (PEM)`);
  }
  if (key.asymmetricKeyType !== "ed25519") throw fail(`${source}: a ${key.asymmetricKeyType} key; a witness cosigns with Ed25519`);
  return key;
}

function witnessName(value: string): string {
  if (value === "" || /[\s+]/u.test(value)) throw new InvalidArgumentError("must be a non-empty name with no space and no '+' (e.g. witness.example.com/w1)");
  return value;
}

const collect = (value: string, into: string[] = []) => [...into, value];

function port(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65_535) throw new InvalidArgumentError(`must be a port number (0 to 65535), got ${JSON.stringify(value)}`);
  return n;
}

interface ServeOptions {
  state: string;
  key?: string;
  name: string;
  log: string[];
  port: number;
  host: string;
}

/** Runs the witness until SIGTERM or SIGINT: closes the server (requests in flight finish), then the state. */
async function serve(opts: ServeOptions): Promise<void> {
  const config = loadConfig();
  const log = pino({ name: "auditgraph-witness", level: config.logLevel ?? "info" }, pino.destination({ dest: 1, sync: true }));
  const privateKey = await witnessKey(opts.key);
  const state = await WitnessState.open(opts.state, (error) => {
    // Another process took the state over: cosigning on would risk a rollback.
    log.fatal({ err: error.message }, "lost the witness state lock; stopping");
    process.exit(1);
  });
  let witness: Witness;
  try {
    witness = new Witness({ name: opts.name, privateKey, logs: opts.log, state, log });
  } catch (error) {
    await state.close();
    throw usageError(`--log: ${(error as Error).message}`);
  }
  const app = witnessServer({ witness, state, logger: log });
  const address = await app.listen({ port: opts.port, host: opts.host });
  log.info({ url: address, witness: opts.name, vkey: witness.verifierKey, logs: opts.log.length }, "witness listening");
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      log.info({ signal }, "witness stopping");
      resolve();
    };
    process.once("SIGTERM", stop);
    process.once("SIGINT", stop);
  });
  await app.close();
  await state.close();
  log.info("witness stopped");
}

export function registerWitness(program: Command): void {
  const witness = program
    .command("witness")
    .description(
      "run a C2SP tlog-witness (POST /add-checkpoint): cosign (tlog-cosignature, Ed25519) each log checkpoint that extends the last one it cosigned, refuse a split view; JSON logs on stdout, stops on SIGTERM",
    )
    .option("--state <dir>", "where it keeps the last checkpoint cosigned per log (locked: one witness per directory)")
    .option("--key <file>", "its Ed25519 private key, PEM (default: AUDITGRAPH_WITNESS_KEY; `auditgraph keygen` makes one)")
    .option("--name <name>", "its name, the key name of its cosignatures (e.g. witness.example.com/w1)", witnessName)
    .option(
      "--log <vkey>",
      "a log it witnesses: the log's verifier key as `auditgraph vkey` prints it (repeat it); a key named N covers origin N and N/<stream>",
      collect,
    )
    .option("--port <n>", "the port to listen on (0: any free one)", port, 8009)
    .option("--host <host>", "the address to listen on", "127.0.0.1")
    .action(async (opts: Partial<ServeOptions>) => {
      // Checked here, not by commander: a parent's mandatory options would be asked of `witness vkey` too.
      for (const [flag, value] of [
        ["--state <dir>", opts.state],
        ["--name <name>", opts.name],
        ["--log <vkey>", opts.log],
      ] as const)
        if (value === undefined) throw usageError(`witness: required option '${flag}' not specified`);
      await serve(opts as ServeOptions);
    });

  witness
    .command("vkey")
    .description(
      "print the witness's verifier key (<name>+<key id>+<base64 of 0x04 and the key>) for `verify --witness-key`: give `witness` its --name and --key (or AUDITGRAPH_WITNESS_KEY)",
    )
    .option("--json", "print the name and the verifier key as JSON")
    .action(async (opts: { json?: boolean }) => {
      // `witness`'s own --name and --key: commander reads them for the parent wherever they are written.
      const { name, key } = witness.opts<Partial<ServeOptions>>();
      if (name === undefined) throw usageError("witness vkey: required option '--name <name>' not specified");
      const vkey = encodeCosignerKey(cosigner(name, await witnessKey(key)));
      console.log(opts.json ? JSON.stringify({ name, vkey }, null, 2) : vkey);
    });
}
