import { isStreamOfTenant, streamIdFor, streamsOfTenant, type SubjectKeyStore } from "@auditgraph/core";
import type { Graph } from "@auditgraph/graph";
import type { Ledger } from "@auditgraph/ledger";
import { openRange, readBatch } from "@auditgraph/worker";

const BATCH = 500;

/**
 * The demo's tenant holds sample data, and every fresh checkout's demo has a ledger of its own, so
 * a shared graph would refuse the demo as it refuses any second ledger. Before the demo's worker
 * starts, a sample tenant projected from another ledger is handed over to this one, as
 * `auditgraph rebuild-graph --tenant T --replace` does (its nodes deleted), and a line says so.
 */
export async function claimDemoTenant(ledger: Ledger, graph: Graph, tenantId: string, print: (line: string) => void): Promise<void> {
  const ledgerId = await ledger.id();
  // The cursors of every stream (shard) of the tenant the graph holds, this ledger's or not.
  const cursor = (await graph.cursors()).find((c) => isStreamOfTenant(c.streamId, tenantId) && c.position >= 0 && c.ledgerId !== ledgerId);
  if (!cursor) return;
  const deleted = await graph.deleteProjection({ tenantId });
  print(
    `ⓘ sample tenant "${tenantId}": its graph was projected from another ledger (${cursor.ledgerId ?? "one from before ledger ids"}); handed over to this demo's ledger ${ledgerId} (${deleted} nodes replaced), as \`auditgraph rebuild-graph --tenant ${tenantId} --replace\` does`,
  );
}

/**
 * The demo tenant's streams (every shard) projected through their end, the first batch of each handing its cursor over:
 * a demo of another ledger sharing this graph (tests run several side by side) may have taken the
 * sample tenant since `claimDemoTenant`, and the demo reads its own answer's lineage back next.
 */
export async function projectDemoTenant(
  ledger: Ledger,
  graph: Graph,
  tenantId: string,
  keyStore: Pick<SubjectKeyStore, "byId">,
  print: (line: string) => void,
): Promise<void> {
  const ledgerId = await ledger.id();
  const found = streamsOfTenant(await ledger.streams(), tenantId);
  const taken = (await graph.cursors()).find(
    (c) => isStreamOfTenant(c.streamId, tenantId) && c.position >= 0 && c.ledgerId !== undefined && c.ledgerId !== ledgerId,
  );
  if (taken) print(`ⓘ sample tenant "${tenantId}": another demo's ledger (${taken.ledgerId}) took its graph meanwhile; handed back to this one`);
  for (const streamId of found.length > 0 ? found : [streamIdFor(tenantId)]) await projectStream(ledger, graph, streamId, ledgerId, keyStore);
}

async function projectStream(ledger: Ledger, graph: Graph, streamId: string, ledgerId: string, keyStore: Pick<SubjectKeyStore, "byId">): Promise<void> {
  for (let from = 0; ; from += BATCH) {
    const batch = await readBatch(ledger, streamId, from, from + BATCH, BATCH);
    if (batch.length === 0) return;
    const opened = await openRange(batch, keyStore);
    const first = from === 0;
    await graph.projectRange({ ...opened.range, ledgerId, restart: first, handOver: first }, opened.records);
    if (batch.length < BATCH) return;
  }
}
