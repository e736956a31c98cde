import cliProgress from "cli-progress";
import { z } from "zod";
import { AuditgraphError, parseWith, streamIdFor, streamsOfTenant } from "@auditgraph/core";
import { Graph } from "@auditgraph/graph";
import { ProjectionNotEmptyError, rebuildGraph, type RebuildProgress, type RebuildResult } from "@auditgraph/worker";
import type { Config } from "./config.js";
import { keyStoreOf } from "./erase.js";
import { openLedger } from "./ledger.js";

/** Keyed by the options' flags, so that an error names the flag to fix. */
export const RebuildArgsSchema = z.object({
  "--batch": z.int().positive("must be a positive integer").default(500),
  "--tenant": z.string().trim().min(1, "must be a non-empty tenant id").optional(),
  "--replace": z.boolean().default(false),
});

export interface RebuildOutput {
  /** Where the summary goes. */
  print: (line: string) => void;
  /** Where the progress bar and the steps before it go (a terminal gets a live bar, anything else a line now and then). */
  progress: NodeJS.WritableStream;
}

/**
 * `auditgraph rebuild-graph`: the projection rebuilt from the ledger (all of it, or one tenant's),
 * with a progress bar. A non-empty graph (or tenant) is refused unless `--replace`, which deletes
 * that part first; the schema and its migrations stay.
 */
export async function rebuildGraphCommand(
  config: Config,
  given: { batch?: number; tenant?: string; replace?: boolean },
  output: RebuildOutput = { print: console.log, progress: process.stderr },
): Promise<RebuildResult> {
  const args = parseWith(RebuildArgsSchema, { "--batch": given.batch, "--tenant": given.tenant, "--replace": given.replace }, "rebuild-graph arguments");
  const tenantId = args["--tenant"];
  const ledger = await openLedger({ ...config, signingKeyPath: undefined });
  const graph = new Graph(config.neo4j);
  const bar = new cliProgress.SingleBar(
    {
      format: "rebuild-graph [{bar}] {percentage}% | {value}/{total} events | {rate} events/s | ETA {eta_formatted} | {stream}",
      stream: output.progress,
      // Not a terminal (a log, CI): a line each second rather than nothing.
      noTTYOutput: true,
      notTTYSchedule: 1_000,
      hideCursor: true,
    },
    cliProgress.Presets.shades_classic,
  );
  const line = (text: string) => output.progress.write(`${text}\n`);
  const started = Date.now();
  let barStarted = false;
  // Events a second of projecting: counting and deleting come before and are not in it.
  let projecting = started;
  const rate = (done: number) => String(Math.round(done / Math.max(0.001, (Date.now() - projecting) / 1000)));
  const onProgress = (p: RebuildProgress) => {
    if (p.phase === "counted") line(`rebuild-graph: ${p.total} events in ${p.streams.length} stream${p.streams.length === 1 ? "" : "s"} of the ledger`);
    else if (p.phase === "deleting") line(`rebuild-graph: --replace: deleted ${p.deleted} of ${p.total} nodes`);
    else {
      if (!barStarted) {
        projecting = Date.now();
        bar.start(p.total, 0, { rate: "0", stream: p.streamId });
        barStarted = true;
      }
      bar.update(p.done, { rate: rate(p.done), stream: p.streamId });
    }
  };
  try {
    // A tenant is every stream it has (all its shards): none at all is a tenant the ledger does not know.
    if (tenantId !== undefined && streamsOfTenant(await ledger.streams(), tenantId).length === 0)
      throw new AuditgraphError(
        "AUDITGRAPH_E_NO_STREAM",
        `--tenant ${JSON.stringify(tenantId)}: the ledger (${config.ledgerUrl ? "PostgreSQL" : config.ledgerDir}) has no stream ${streamIdFor(tenantId)} for it`,
      );
    line(`rebuild-graph: counting the ledger's events${tenantId === undefined ? "" : ` of tenant ${JSON.stringify(tenantId)}`}`);
    const result = await rebuildGraph(ledger, graph, {
      batchSize: args["--batch"],
      replace: args["--replace"],
      keyStore: keyStoreOf(config),
      onProgress,
      ...(tenantId === undefined ? {} : { tenantId }),
    }).catch((error: unknown) => {
      if (error instanceof ProjectionNotEmptyError)
        throw new AuditgraphError(
          "AUDITGRAPH_E_PROJECTION_NOT_EMPTY",
          `${error.message}: pass --replace to delete ${tenantId === undefined ? "the whole projection" : "that tenant's nodes"} first`,
        );
      throw error;
    });
    if (barStarted) bar.update(result.records, { rate: rate(result.records) });
    bar.stop();
    const seconds = (Date.now() - started) / 1000;
    output.print(
      `rebuilt the projection${tenantId === undefined ? "" : ` of tenant ${JSON.stringify(tenantId)}`} from ${result.records} events in ${result.streams.length} stream${
        result.streams.length === 1 ? "" : "s"
      }: ${result.projected} projected, ${result.erased} of erased subjects left out${result.setAside ? `, ${result.setAside} set aside (the graph refuses them: see \`auditgraph dead-letters list\`)` : ""}${result.deleted ? `, ${result.deleted} nodes replaced` : ""}; ${seconds.toFixed(1)} s, ${rate(result.records)} events/s`,
    );
    return result;
  } finally {
    bar.stop();
    await graph.close();
    await ledger.close?.();
  }
}
