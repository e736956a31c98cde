import { randomUUID } from "node:crypto";
import { afterAll, describe, expect, it } from "vitest";
import { GENESIS_HASH, streamIdFor, type PlainRecord } from "@auditgraph/core";
import { Graph } from "@auditgraph/graph";
import { loadConfig } from "@auditgraph/cli";
import { RecordChain, TraceGenerator } from "../bench/generator.js";
import { deleteTenant } from "../bench/graph.js";
import { dumpTenant } from "./graph-dump.js";

// A trace's ACTED_ON_BEHALF_OF is found by its trace id and created when missing (traces/
// traces.cypher), no longer MERGEd. Whatever order and grouping the same records come in, again
// and again, the tenant's graph must come out the same: node for node, relationship for relationship.

const graph = new Graph(loadConfig().neo4j);
const tenants: string[] = [];
afterAll(async () => {
  for (const tenantId of tenants) await deleteTenant(graph, tenantId);
  await graph.close();
});

/** A tenant's synthetic agent traffic (bench/generator.ts: model calls, reasoning, tools, retrievers, sessions) as sealed records. */
function recordsOf(tenantId: string, events: number): PlainRecord[] {
  const generator = new TraceGenerator({ seed: "projection-idempotency", tenantId, events, sampleOutputs: 0 });
  const chain = new RecordChain(streamIdFor(tenantId));
  const records: PlainRecord[] = [];
  for (let batch = generator.take(250); batch.length > 0; batch = generator.take(250))
    records.push(...chain.seal(batch, new Date(Date.parse(batch.at(-1)!.occurredAt) + 40).toISOString()));
  return records;
}

const slices = (records: PlainRecord[], size: number, step = size) => {
  const out: PlainRecord[][] = [];
  for (let from = 0; from < records.length; from += step) out.push(records.slice(from, from + size));
  return out;
};

const countsOf = (dump: { nodes: string[]; relationships: string[] }) => ({ nodes: dump.nodes.length, relationships: dump.relationships.length });

describe("projecting the same records again changes nothing", () => {
  it("in ranges, again over the same ranges, in overlapping and reversed batches, and with a record twice in one batch", async () => {
    await graph.migrate();
    const tenantId = `idem-${randomUUID().slice(0, 8)}`;
    tenants.push(tenantId);
    const records = recordsOf(tenantId, 1500);
    const streamId = streamIdFor(tenantId);
    const ledgerId = randomUUID();

    // The worker's way: ranges from the cursor, each in the transaction that moves it.
    for (const batch of slices(records, 400)) {
      const outcome = await graph.projectRange(
        { ledgerId, streamId, from: batch[0]!.position, prevHash: batch[0]!.prevHash, hashes: batch.map((r) => r.hash) },
        batch,
      );
      expect(outcome).toMatchObject({ status: "projected", projected: batch.length });
    }
    const first = await dumpTenant(graph, tenantId);
    expect(first.nodes.some((n) => n.includes('"Prompt"'))).toBe(true);
    expect(first.nodes.some((n) => n.includes('"Output"'))).toBe(true);
    expect(first.relationships.some((r) => r.includes('"ACTED_ON_BEHALF_OF"'))).toBe(true);

    // rebuild-graph's way: the whole stream again from its first record, over the graph as it is.
    const again = await graph.projectRange({ ledgerId, streamId, from: 0, prevHash: GENESIS_HASH, hashes: records.map((r) => r.hash), restart: true }, records);
    expect(again).toMatchObject({ status: "projected", projected: records.length });
    expect(countsOf(await dumpTenant(graph, tenantId))).toEqual(countsOf(first));

    // Overlapping batches, last first (a redelivered job, a catch-up over what a job projected).
    for (const batch of slices(records, 300, 170).reverse()) await graph.project(batch);
    // One batch holding some records twice.
    await graph.project([...records.slice(0, 200), ...records.slice(100, 300)]);
    const last = await dumpTenant(graph, tenantId);
    expect(countsOf(last)).toEqual(countsOf(first));
    expect(last).toEqual(first);
  });

  it("gives the graph of in-order projection when the batches come in another order", async () => {
    await graph.migrate();
    const inOrder = `idem-${randomUUID().slice(0, 8)}`;
    const shuffled = `idem-${randomUUID().slice(0, 8)}`;
    tenants.push(inOrder, shuffled);
    for (const batch of slices(recordsOf(inOrder, 1000), 250)) await graph.project(batch);
    // The same traffic under another tenant, its batches in another order, one of them twice.
    const batches = slices(recordsOf(shuffled, 1000), 250);
    for (const i of [2, 0, 3, 1, 0]) if (batches[i]) await graph.project(batches[i]!);
    for (const batch of batches.slice(4)) await graph.project(batch);
    const a = await dumpTenant(graph, inOrder);
    const b = await dumpTenant(graph, shuffled);
    expect(countsOf(b)).toEqual(countsOf(a));
    // Same shape (the tenant's own ids and subject refs apart): nodes by label, relationships by type and ends.
    const shape = (dump: { nodes: string[]; relationships: string[] }) => {
      const count = (keys: string[]) => {
        const n: Record<string, number> = {};
        for (const k of keys) n[k] = (n[k] ?? 0) + 1;
        return n;
      };
      const labels = (node: { labels: string[] }) => node.labels.join(":");
      return {
        nodes: count(dump.nodes.map((l) => labels(JSON.parse(l)))),
        relationships: count(
          dump.relationships.map((l) => {
            const r = JSON.parse(l);
            return `${labels(r.start)}-${r.type}->${labels(r.end)}`;
          }),
        ),
      };
    };
    expect(shape(b)).toEqual(shape(a));
  });
});
