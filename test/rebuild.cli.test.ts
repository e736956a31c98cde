import { randomUUID } from "node:crypto";
import { afterAll, describe, expect, it } from "vitest";
import { streamIdFor } from "@auditgraph/core";
import { Graph } from "@auditgraph/graph";
import { SegmentLedger } from "@auditgraph/ledger";
import { processBatch, rebuildGraph } from "@auditgraph/worker";
import { keyStoreOf, type Config } from "@auditgraph/cli";
import { dumpTenant } from "./graph-dump.js";
import { isolatedConfig, sampleTrace, runCli, cliEnvOf } from "./helpers.js";

const cli = (config: Config, ...args: string[]) => runCli(cliEnvOf(config), ...args);

let graph: Graph | undefined;
let shardGraph: Graph | undefined;
afterAll(async () => {
  await graph?.close();
  await shardGraph?.close();
});

describe("auditgraph rebuild-graph", () => {
  it("refuses a non-empty graph or tenant without --replace; with it, rebuilds the tenant from the ledger with a progress bar", {
    timeout: 180_000,
  }, async () => {
    const config = await isolatedConfig();
    graph = new Graph(config.neo4j);
    await graph.migrate();
    const tenantId = `rebuild-cli-${randomUUID().slice(0, 8)}`;
    const ledger = new SegmentLedger(config.ledgerDir);
    const events = [...sampleTrace(tenantId), ...sampleTrace(tenantId), ...sampleTrace(tenantId)];
    // Sealed for their subject and projected as the worker does: the graph is not empty from here on.
    await processBatch(ledger, graph, "rebuild-cli", { events }, { keyStore: keyStoreOf(config) }).finally(() => ledger.close());
    const live = await dumpTenant(graph, tenantId);
    expect(live.nodes.length).toBeGreaterThan(10);

    const whole = await cli(config, "rebuild-graph");
    expect(whole.code).toBe(1);
    expect(whole.stderr).toMatch(
      /auditgraph: the graph is not empty: it holds \d+ nodes besides its migrations; .*pass --replace to delete the whole projection first/,
    );

    const tenant = await cli(config, "rebuild-graph", "--tenant", tenantId);
    expect(tenant.code).toBe(1);
    expect(tenant.stderr).toContain(`the graph is not empty: it holds ${live.nodes.length} nodes of tenant "${tenantId}"`);
    expect(tenant.stderr).toContain("pass --replace to delete that tenant's nodes first");
    expect(await dumpTenant(graph, tenantId)).toEqual(live);

    const replaced = await cli(config, "rebuild-graph", "--tenant", tenantId, "--replace", "--batch", "5");
    expect(replaced.stderr).toContain(`rebuild-graph: ${events.length} events in 1 stream of the ledger`);
    expect(replaced.stderr).toMatch(/--replace: deleted \d+ of \d+ nodes/);
    expect(replaced.stderr).toMatch(
      new RegExp(`rebuild-graph \\[[█░]+\\] 100% \\| ${events.length}/${events.length} events \\| \\d+ events/s \\| ETA \\S+ \\| ${streamIdFor(tenantId)}`),
    );
    expect(replaced.stdout).toMatch(
      new RegExp(
        `rebuilt the projection of tenant "${tenantId}" from ${events.length} events in 1 stream: ${events.length} projected, 0 of erased subjects left out, \\d+ nodes replaced; [\\d.]+ s, \\d+ events/s`,
      ),
    );
    expect(replaced.code).toBe(0);
    expect(await dumpTenant(graph, tenantId)).toEqual(live);

    const unknown = await cli(config, "rebuild-graph", "--tenant", "no-such-tenant");
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain(`--tenant "no-such-tenant": the ledger (${config.ledgerDir}) has no stream tenant-no-such-tenant for it`);
    const badBatch = await cli(config, "rebuild-graph", "--batch", "0");
    expect(badBatch.code).toBe(2); // a usage error
    expect(badBatch.stderr).toContain('--batch must be a positive integer, got "0"');
  });

  it("--tenant rebuilds every shard (stream) of the tenant, and --replace takes the cursors of all of them, not a neighbour's", {
    timeout: 180_000,
  }, async () => {
    const config = await isolatedConfig();
    const graph = (shardGraph = new Graph(config.neo4j));
    await graph.migrate();
    const tenantId = `rebuild-shards-${randomUUID().slice(0, 8)}`;
    // Its id extends the tenant's: its streams are no shards of the tenant's.
    const neighbour = `${tenantId}x`;
    const [base, third, next] = [sampleTrace(tenantId), sampleTrace(tenantId), sampleTrace(neighbour)];
    const ledger = new SegmentLedger(config.ledgerDir);
    try {
      await ledger.append(streamIdFor(tenantId), base);
      await ledger.append(streamIdFor(tenantId, 3), third);
      await ledger.append(streamIdFor(neighbour, 3), next);
      await rebuildGraph(ledger, graph, { tenantId: neighbour });
    } finally {
      await ledger.close();
    }

    const rebuilt = await cli(config, "rebuild-graph", "--tenant", tenantId);
    expect(rebuilt.code, rebuilt.stderr).toBe(0);
    const total = base.length + third.length;
    expect(rebuilt.stdout).toContain(`rebuilt the projection of tenant "${tenantId}" from ${total} events in 2 streams: ${total} projected`);
    const dump = (await dumpTenant(graph, tenantId)).nodes.join("\n");
    for (const events of [base, third]) expect(dump).toContain(events[0]!.traceId);
    expect(dump).not.toContain(next[0]!.traceId);
    for (const [streamId, events] of [
      [streamIdFor(tenantId), base],
      [streamIdFor(tenantId, 3), third],
      [streamIdFor(neighbour, 3), next],
    ] as const)
      expect(
        (await graph.cursors(streamId)).map((c) => c.position),
        streamId,
      ).toEqual([events.length - 1]);

    // What --replace deletes: the tenant's nodes and the cursors of both its streams; the neighbour's own.
    expect(await graph.countProjection({ tenantId })).toBe((await dumpTenant(graph, tenantId)).nodes.length + 2);
    expect(await graph.countProjection({ tenantId: neighbour })).toBe((await dumpTenant(graph, neighbour)).nodes.length + 1);
    await graph.deleteProjection({ tenantId });
    expect(await graph.cursors(streamIdFor(tenantId, 3))).toEqual([]);
    expect((await graph.cursors(streamIdFor(neighbour, 3))).map((c) => c.position)).toEqual([next.length - 1]);
  });
});
