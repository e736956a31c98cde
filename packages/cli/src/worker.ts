import { InvalidArgumentError, type Command } from "commander";
import { pino } from "pino";
import { Graph } from "@auditgraph/graph";
import { AuditWorker, loadWorkerPolicies, startWorkerHttp, type WorkerHttp } from "@auditgraph/worker";
import { keyStoreDirOf, loadConfig, type Config } from "./config.js";
import { keyStoreOf } from "./erase.js";
import { openLedger } from "./ledger.js";

export interface WorkerCommandOptions {
  concurrency: number;
  lockMs: number;
  httpPort?: number;
  httpHost: string;
}

// Commander names the flag and makes it a usage error (exit 2).
function whole(min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^\d+$/.test(value) || n < min || n > max)
      throw new InvalidArgumentError(`must be a whole number from ${min} to ${max}, got ${JSON.stringify(value)}`);
    return n;
  };
}

export function registerWorker(program: Command): void {
  program
    .command("worker")
    .description(
      "run the audit worker until SIGTERM/SIGINT (the batch in hand is finished first); it takes jobs while Neo4j is down, and migrates and projects once it answers",
    )
    .option("--concurrency <n>", "jobs processed at once", whole(1, 10_000), 1)
    .option("--lock-ms <n>", "after how long a batch held by a dead worker is taken over", whole(1, 2 ** 31 - 1), 30_000)
    .option(
      "--http-port <port>",
      "serve /healthz, /readyz and /metrics on this port (default: AUDITGRAPH_WORKER_HTTP_PORT; unset: no server)",
      whole(0, 65_535),
    )
    .option("--http-host <address>", "the address the HTTP server listens on", "0.0.0.0")
    .action(async (opts: WorkerCommandOptions) => {
      await runWorker(loadConfig(), opts);
    });
}

/** The `worker` command: JSON log lines (pino) on stdout, at AUDITGRAPH_LOG_LEVEL. */
export async function runWorker(config: Config, opts: WorkerCommandOptions): Promise<void> {
  const log = pino({ name: "auditgraph-worker", level: config.logLevel ?? "info" }, pino.destination({ dest: 1, sync: true }));
  // No migration here: the worker applies them in the background, so it starts while Neo4j is away.
  const graph = new Graph(config.neo4j);
  // A stream another worker writes is not waited for: its job goes back to the queue for a moment
  // and this worker takes another (see `AuditWorker`), so N workers settle on different shards.
  const ledger = await openLedger(config, { lockWaitMs: 0 });
  if (!config.signingKeyPath) log.warn("auditgraph worker: no AUDITGRAPH_SIGNING_KEY, so no signed checkpoints are made");
  const policies = await loadWorkerPolicies(config.policiesPath);
  log.info(
    {
      policies: config.policiesPath ?? "(built-in defaults)",
      policySet: policies.hash.slice(0, 12),
      count: policies.policies.length,
      escalating: config.escalationSeverity ?? "high",
    },
    "auditgraph worker: policies loaded",
  );
  const worker = new AuditWorker({
    policies,
    ...(config.escalationSeverity ? { escalationSeverity: config.escalationSeverity } : {}),
    ...(config.highImpactTools ? { highImpactTools: config.highImpactTools } : {}),
    connection: config.redis,
    queueName: config.queueName,
    ledger,
    graph,
    keyStore: keyStoreOf(config),
    concurrency: opts.concurrency,
    ...(config.shards ? { shards: config.shards } : {}),
    // With the ledger's lockWaitMs 0 above: a stream another worker writes sends its job back for a moment.
    busyStreamReturnMs: 30_000,
    lockDurationMs: opts.lockMs,
    logger: log,
    ...(config.escalationWebhook ? { notifier: { webhook: config.escalationWebhook } } : {}),
    ...(config.otlpExport ? { otlpExport: config.otlpExport } : {}),
  });
  // The endpoint's host and protocol only: its path may carry a token, and the headers are secrets.
  if (config.otlpExport)
    log.info(
      { otlpHost: new URL(config.otlpExport.url).host, protocol: config.otlpExport.protocol, content: config.otlpExport.content },
      "auditgraph worker: exporting recorded events as GenAI spans over OTLP",
    );
  // The webhook's host only: its path or query may carry a token, and the secret is never printed.
  if (config.escalationWebhook)
    log.info({ webhookHost: new URL(config.escalationWebhook.url).host }, "auditgraph worker: notifying escalations to a signed webhook");
  let http: WorkerHttp | undefined;
  const stopped = new Promise<string>((resolve) => {
    process.once("SIGTERM", () => resolve("SIGTERM"));
    process.once("SIGINT", () => resolve("SIGINT"));
  });
  try {
    const port = opts.httpPort ?? config.workerHttpPort;
    if (port !== undefined) {
      http = await startWorkerHttp(worker, { port, host: opts.httpHost });
      log.info({ port: http.port, host: opts.httpHost }, "auditgraph worker: serving /healthz, /readyz and /metrics");
    }
    // Redis away at start: the worker waits for it (a signal still stops it).
    const signal = await Promise.race([worker.waitUntilReady().then(() => undefined), stopped]);
    if (signal === undefined) {
      // Hosts only: neither Neo4j's nor PostgreSQL's URL may carry a password here.
      const where = config.ledgerUrl ? `PostgreSQL, schema ${config.ledgerSchema}` : config.ledgerDir;
      log.info(
        { queue: config.queueName, ledger: where, keyStore: keyStoreDirOf(config), graph: new URL(config.neo4j.uri).host },
        `auditgraph worker: queue ${config.queueName} ready`,
      );
    }
    log.info(`auditgraph worker: ${signal ?? (await stopped)}, finishing the batch in hand`);
  } finally {
    await worker.close();
    await http?.close();
    await graph.close();
    await ledger.close?.();
  }
  log.info("auditgraph worker: stopped");
}
