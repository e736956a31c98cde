import { streamIdFor, type SubjectKeyStore } from "@auditgraph/core";
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
  const [cursor] = await graph.cursors(streamIdFor(tenantId));
  const ledgerId = await ledger.id();
  if (!cursor || cursor.position < 0 || cursor.ledgerId === ledgerId) return;
  const deleted = await graph.deleteProjection({ tenantId });
  print(
    `ⓘ sample tenant "${tenantId}": its graph was projected from another ledger (${cursor.ledgerId ?? "one from before ledger ids"}); handed over to this demo's ledger ${ledgerId} (${deleted} nodes replaced), as \`auditgraph rebuild-graph --tenant ${tenantId} --replace\` does`,
  );
}

/**
 * The demo tenant's stream projected through its end, the first batch handing the cursor over:
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
  const streamId = streamIdFor(tenantId);
  const ledgerId = await ledger.id();
  const [cursor] = await graph.cursors(streamId);
  if (cursor && cursor.position >= 0 && cursor.ledgerId !== undefined && cursor.ledgerId !== ledgerId)
    print(`ⓘ sample tenant "${tenantId}": another demo's ledger (${cursor.ledgerId}) took its graph meanwhile; handed back to this one`);
  for (let from = 0; ; from += BATCH) {
    const batch = await readBatch(ledger, streamId, from, from + BATCH, BATCH);
    if (batch.length === 0) return;
    const opened = await openRange(batch, keyStore);
    const first = from === 0;
    await graph.projectRange({ ...opened.range, ledgerId, restart: first, handOver: first }, opened.records);
    if (batch.length < BATCH) return;
  }
}
