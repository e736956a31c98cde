import { z } from "zod";
import { AuditgraphError, parseWith, streamIdFor, streamsOfTenant, type LedgerRecord, type SubjectKeyStore } from "@auditgraph/core";
import type { Ledger } from "@auditgraph/ledger";
import type { Graph } from "@auditgraph/graph";
import { openRange } from "./projector.js";
import { projectSettingAside } from "./projection-dead-letter.js";

export const RebuildOptionsSchema = z.object({
  /** Records projected in one write transaction. */
  batchSize: z.int().positive().default(500),
  /** Rebuild only this tenant's streams, every shard of it (and replace only its nodes). */
  tenantId: z.string().trim().min(1, "must be a non-empty tenant id").optional(),
  /** Delete what the scope holds first; without it a non-empty scope is refused. */
  replace: z.boolean().default(false),
  /** Nodes deleted per transaction when replacing. */
  deleteBatchSize: z.int().positive().default(5_000),
});

export type RebuildProgress =
  | { phase: "counted"; total: number; streams: { streamId: string; records: number }[] }
  | { phase: "deleting"; deleted: number; total: number }
  | { phase: "projecting"; streamId: string; done: number; total: number; erased: number };

export type RebuildOptions = z.input<typeof RebuildOptionsSchema> & {
  /** Opens sealed records; an erased subject's records stay out of the graph. */
  keyStore?: Pick<SubjectKeyStore, "byId">;
  onProgress?: (progress: RebuildProgress) => void;
};

export interface RebuildResult {
  streams: { streamId: string; records: number; projected: number; erased: number; setAside: number; cursor: number }[];
  /**
   * Records read from the ledger, projected (readable), left out (their subject erased), and set
   * aside (the graph refused them for good: projection dead letters, see `dead-letters`).
   */
  records: number;
  projected: number;
  erased: number;
  setAside: number;
  /** Nodes deleted first (with `replace`). */
  deleted: number;
}

/** The graph (or the tenant's part of it) is not empty, and `replace` was not given. */
export class ProjectionNotEmptyError extends AuditgraphError {
  override readonly name = "ProjectionNotEmptyError";
  constructor(
    readonly nodes: number,
    readonly tenantId: string | undefined,
  ) {
    const what = tenantId === undefined ? `${nodes} nodes besides its migrations` : `${nodes} nodes of tenant ${JSON.stringify(tenantId)}`;
    super(
      "AUDITGRAPH_E_PROJECTION_NOT_EMPTY",
      `the graph is not empty: it holds ${what}; a rebuild goes into an empty projection, or replaces it (deleting it first) when told to`,
    );
  }
}

/** How many records a stream holds, for a progress total: each backend counts its own cheaply (segment lines unparsed, a SQL count). */
export function countStreamRecords(ledger: Pick<Ledger, "count">, streamId: string): Promise<number> {
  return ledger.count(streamId);
}

/**
 * Rebuilds the projection from the ledger: the schema first, then every stream (or the tenant's, all its shards)
 * read in position order, opened with the key store (an erased subject's records stay out) and
 * upcast, projected in batches through the same code and cursor as the live worker, the first
 * batch of each stream taking its cursor over. Refuses a non-empty scope unless `replace`, which
 * deletes it first, in batches.
 */
export async function rebuildGraph(ledger: Ledger, graph: Graph, options: RebuildOptions = {}): Promise<RebuildResult> {
  const { keyStore, onProgress, ...rest } = options;
  const { batchSize, tenantId, replace, deleteBatchSize } = parseWith(RebuildOptionsSchema, rest, "rebuild options");
  await graph.migrate();
  const scope = tenantId === undefined ? {} : { tenantId };
  const existing = await graph.countProjection(scope);
  if (existing > 0 && !replace) throw new ProjectionNotEmptyError(existing, tenantId);

  const known = await ledger.streams();
  // A tenant's records are in any of its streams (shards), whatever the shard count when written.
  const streamIds = tenantId === undefined ? known : streamsOfTenant(known, tenantId);
  if (tenantId !== undefined && streamIds.length === 0)
    throw new RangeError(
      `tenantId: the ledger has no stream ${streamIdFor(tenantId)} (nor a shard of it) for tenant ${JSON.stringify(tenantId)} (it has ${known.length} streams)`,
    );
  const counts = [];
  for (const streamId of streamIds) counts.push({ streamId, records: await countStreamRecords(ledger, streamId) });
  const total = counts.reduce((n, c) => n + c.records, 0);
  onProgress?.({ phase: "counted", total, streams: counts });

  let deleted = 0;
  if (existing > 0)
    deleted = await graph.deleteProjection(scope, {
      batchSize: deleteBatchSize,
      onProgress: (n) => onProgress?.({ phase: "deleting", deleted: n, total: existing }),
    });

  const result: RebuildResult = { streams: [], records: 0, projected: 0, erased: 0, setAside: 0, deleted };
  // The streams' cursors become this ledger's: a rebuild (after --replace) hands their graphs over to it.
  const ledgerId = await ledger.id();
  for (const streamId of streamIds) {
    const stream = { streamId, records: 0, projected: 0, erased: 0, setAside: 0, cursor: -1 };
    let batch: LedgerRecord[] = [];
    const flush = async () => {
      if (batch.length === 0) return;
      const opened = await openRange(batch, keyStore);
      // The first batch takes the cursor over, whatever it held: a rebuild starts the stream afresh.
      // With --replace the first batch hands the stream over, even should another ledger's worker have made its cursor again since the delete.
      const first = stream.records === 0;
      // A record the graph refuses for good is set aside (a projection dead letter) and the rebuild goes on.
      const { outcome, setAside } = await projectSettingAside(
        graph,
        ledger,
        { ...opened.range, ledgerId, restart: first, handOver: first && replace },
        opened.records,
      );
      stream.setAside += setAside.length;
      if (outcome.status === "foreign")
        throw new Error(
          `stream ${streamId}: its graph is projected from ledger ${outcome.ledgerId ?? "(one from before ledger ids)"}, not from this ledger ${ledgerId}: rebuild with --replace to hand it over (stop that ledger's workers first, or give one of the ledgers its own NEO4J_DATABASE)`,
        );
      if (outcome.status === "gap" || outcome.status === "mismatch")
        throw new Error(
          `stream ${streamId}: its projection cursor moved to position ${outcome.position} while it was being rebuilt (another rebuild, or a worker of another ledger, writes to this graph)`,
        );
      stream.records += batch.length;
      stream.projected += outcome.status === "projected" ? outcome.projected : 0;
      stream.erased += opened.erased;
      stream.cursor = Math.max(stream.cursor, outcome.position);
      result.records += batch.length;
      batch = [];
      onProgress?.({ phase: "projecting", streamId, done: result.records, total, erased: result.erased + stream.erased });
    };
    for await (const record of ledger.readStream(streamId)) {
      batch.push(record);
      if (batch.length >= batchSize) await flush();
    }
    await flush();
    result.projected += stream.projected;
    result.erased += stream.erased;
    result.setAside += stream.setAside;
    result.streams.push(stream);
  }
  return result;
}
