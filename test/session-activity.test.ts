import { randomUUID } from "node:crypto";
import { afterAll, describe, expect, it } from "vitest";
import { streamIdFor } from "@auditgraph/core";
import { Graph } from "@auditgraph/graph";
import { SegmentLedger } from "@auditgraph/ledger";
import { inClear, isolatedConfig, readAll, sampleTrace } from "./helpers.js";

let graph: Graph | undefined;
afterAll(() => graph?.close());

describe("Session.lastActivityAt", () => {
  it("is the session's latest record time, however the records are cut into projection batches", async () => {
    const config = await isolatedConfig();
    graph = new Graph(config.neo4j);
    await graph.migrate();
    const ledger = new SegmentLedger(config.ledgerDir);
    const tenants = [`activity-a-${randomUUID().slice(0, 8)}`, `activity-b-${randomUUID().slice(0, 8)}`];
    const [early, late] = ["2026-03-01T10:00:00.000Z", "2026-03-01T10:00:05.000Z"];
    for (const tenantId of tenants) {
      // One trace recorded by two appends, five seconds apart.
      const trace = sampleTrace(tenantId);
      await ledger.append(streamIdFor(tenantId), trace.slice(0, 3), early);
      await ledger.append(streamIdFor(tenantId), trace.slice(3), late);
    }
    const records = inClear(await readAll(ledger));
    await ledger.close();
    const of = (tenantId: string) => records.filter((r) => r.streamId === streamIdFor(tenantId));
    // Tenant a in one batch (the trace's records at both times together), tenant b record by record.
    await graph.project(of(tenants[0]!));
    for (const record of of(tenants[1]!)) await graph.project([record]);

    const rows = await graph.read(`MATCH (s:Session {id: "s1"}) WHERE s.tenantId IN $tenants RETURN s.tenantId AS tenantId, toString(s.lastActivityAt) AS at`, {
      tenants,
    });
    expect(rows.map((r) => r.tenantId).sort()).toEqual([...tenants].sort());
    for (const row of rows) expect(new Date(row.at as string).toISOString()).toBe(late);
  });
});
