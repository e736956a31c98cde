import { afterEach, describe, expect, it } from "vitest";
import { readFile } from "node:fs/promises";
import { SCHEMA_VERSION, newEventId, upcastEvent, type EventOf } from "@auditgraph/core";
import { Graph } from "@auditgraph/graph";
import { SegmentLedger } from "@auditgraph/ledger";
import { processBatch } from "@auditgraph/worker";
import { isolatedConfig, readAll } from "./helpers.js";

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!().catch(() => undefined);
});

/** The real graph, keeping what the worker hands it: the graph is to see the current version only. */
type Projected = Parameters<Graph["project"]>[0];
class RecordingGraph extends Graph {
  readonly projected: Projected = [];
  override async project(records: Projected): Promise<void> {
    this.projected.push(...records);
    await super.project(records);
  }
}

type V1Event = Record<string, unknown> & { schemaVersion: number; type: string; traceId: string; runId: string; eventId: string };
type V1LlmEnd = V1Event & { usage: Record<string, number>; payload: { cost: unknown; output: { text: string } }; model: { version: string } };

/**
 * The recorded v1 batch with fresh ids (Neo4j is shared by every run of this test), every id
 * replaced consistently; all else is byte for byte as the old producer sent it.
 */
async function recordedV1Batch(): Promise<V1Event[]> {
  const text = await readFile(new URL("./fixtures/v1/order-assistant-batch.json", import.meta.url), "utf8");
  const fresh = new Map<string, string>();
  const renamed = text.replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, (id) => {
    if (!fresh.has(id)) fresh.set(id, newEventId());
    return fresh.get(id)!;
  });
  // The tenant too: each run's fresh ledger owns its tenant's projection (a tenant's graph is one ledger's).
  return JSON.parse(renamed.replaceAll('"acme-rollback"', JSON.stringify(TENANT))) as V1Event[];
}
const TENANT = `acme-rollback-${newEventId().slice(-8)}`;

const isLlmEnd = (e: { type: string }): e is V1LlmEnd => e.type === "llm.end";

describe("schema evolution: an agent rolled back to a schema-1 release", () => {
  it("its recorded batch is accepted, kept in the ledger as received, read back upcast, and projected", async () => {
    const config = await isolatedConfig();
    const ledger = new SegmentLedger(config.ledgerDir);
    cleanups.push(() => ledger.close());
    const graph = new RecordingGraph(config.neo4j);
    cleanups.push(() => graph.close());
    await graph.migrate();

    const events = await recordedV1Batch();
    const received = structuredClone(events);
    const v1LlmEnds = events.filter(isLlmEnd);
    expect(new Set(events.map((e) => e.schemaVersion))).toEqual(new Set([1]));
    expect(v1LlmEnds.length).toBe(3);
    expect(v1LlmEnds.every((e) => e.payload.cost !== undefined && !("cost" in e))).toBe(true);

    // The worker's own path: validate, append, project.
    const outcome = await processBatch(ledger, graph, "v1-job", { events });
    expect(outcome).toEqual({ appended: events.length, duplicates: 0, deadLettered: 0, projected: events.length });
    expect(await ledger.readDeadLetters()).toEqual([]);
    expect(events).toEqual(received);

    // The ledger stores each event as received, version 1, and its chain verifies.
    const records = await readAll(ledger);
    expect(records.map((r) => r.event)).toEqual(received);
    expect(records.every((r) => r.event.schemaVersion === 1)).toBe(true);
    expect(await ledger.verify()).toMatchObject({ ok: true, count: events.length });

    // Readers upcast what they read: version 2, each llm.end's cost beside its usage.
    const current = records.map((r) => upcastEvent(r.event));
    expect(current.every((e) => e.schemaVersion === SCHEMA_VERSION)).toBe(true);
    const llmEnds = current.filter((e): e is EventOf<"llm.end"> => e.type === "llm.end");
    expect(llmEnds.map((e) => ({ eventId: e.eventId, cost: e.cost, usage: e.usage, payloadHasCost: "cost" in e.payload }))).toEqual(
      v1LlmEnds.map((e) => ({ eventId: e.eventId, cost: e.payload.cost, usage: e.usage, payloadHasCost: false })),
    );

    // The graph was handed the upcast events, never the stored version-1 ones.
    expect(graph.projected.map((r) => r.event)).toEqual(current);
    expect(graph.projected.map(({ event: _, ...rest }) => rest)).toEqual(records.map(({ event: _, ...rest }) => rest));

    // And projected them: each LLM call with its usage, its output and its served model.
    const traceId = events[0]!.traceId;
    const calls = await graph.read(
      `MATCH (c:LLMCall {traceId: $traceId})-[:GENERATED]->(o:Output)
       MATCH (c)-[:USED_MODEL]->(m:ModelVersion)
       MATCH (c)-[:PART_OF]->(:Trace {id: $traceId})
       RETURN c.id AS runId, c.status AS status, c.inputTokens AS inputTokens, c.outputTokens AS outputTokens,
              c.totalTokens AS totalTokens, c.costCurrency AS costCurrency, c.costTotal AS costTotal,
              o.id AS outputId, o.text AS text, m.version AS modelVersion
       ORDER BY o.position`,
      { traceId },
    );
    expect(calls).toEqual(
      v1LlmEnds.map((e) => ({
        runId: e.runId,
        status: "ok",
        inputTokens: e.usage.inputTokens,
        outputTokens: e.usage.outputTokens,
        totalTokens: e.usage.totalTokens,
        // The v1 cost, moved by the upcaster, is projected too.
        costCurrency: (e.payload.cost as { currency: string }).currency,
        costTotal: (e.payload.cost as { total: number }).total,
        outputId: e.eventId,
        text: e.payload.output.text,
        modelVersion: e.model.version,
      })),
    );
    const lineage = await graph.lineage(traceId);
    expect(lineage).toMatchObject({
      output: { text: "3 × KB-ERGO-2 (Ergonomic keyboard, split layout) cost 268.5 EUR in total." },
      user: { id: "alice", tenantId: TENANT },
      agent: { id: "order-assistant", version: "1.3.0" },
      trace: { status: "ok" },
    });
    expect(lineage!.toolCalls.filter((x) => x.status === "ok").map((x) => x.name)).toEqual(["catalog_lookup", "calculator"]);

    // Delivered again (a retried job): nothing is appended twice, and it still verifies.
    const again = await processBatch(ledger, graph, "v1-job", { events });
    expect(again).toEqual({ appended: 0, duplicates: events.length, deadLettered: 0, projected: events.length });
    expect(await readAll(ledger)).toEqual(records);
    expect(await ledger.verify()).toMatchObject({ ok: true, count: events.length });
  });

  it("a bad event of the old release is dead-lettered with the field named as it sent it; the rest is kept", async () => {
    const config = await isolatedConfig();
    const ledger = new SegmentLedger(config.ledgerDir);
    cleanups.push(() => ledger.close());
    const graph = new Graph(config.neo4j);
    cleanups.push(() => graph.close());
    await graph.migrate();

    const events = await recordedV1Batch();
    const index = events.findIndex(isLlmEnd);
    const bad = structuredClone(events[index]!) as V1LlmEnd;
    (bad.payload.cost as { currency: string }).currency = "US dollars";
    const future = { ...structuredClone(events[index + 1]!), schemaVersion: SCHEMA_VERSION + 1 };
    const batch = events.map((e, i) => (i === index ? bad : i === index + 1 ? future : e));

    const outcome = await processBatch(ledger, graph, "v1-bad", { events: batch });
    expect(outcome).toMatchObject({ appended: events.length - 2, deadLettered: 2 });
    const deadLetters = await ledger.readDeadLetters();
    expect(deadLetters.map((d) => [d.id, d.input])).toEqual([
      [`v1-bad#${index}`, bad],
      [`v1-bad#${index + 1}`, future],
    ]);
    expect(deadLetters[0]!.reason).toMatch(new RegExp(`^invalid event ${index}: payload\\.cost\\.currency: `));
    expect(deadLetters[1]!.reason).toMatch(new RegExp(`^invalid event ${index + 1}: schemaVersion: version ${SCHEMA_VERSION + 1} is newer`));
    const kept = (await readAll(ledger)).map((r) => r.event.eventId);
    expect(kept).toEqual(events.filter((_, i) => i !== index && i !== index + 1).map((e) => e.eventId));
  });
});
