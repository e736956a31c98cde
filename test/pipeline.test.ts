import { afterEach, describe, expect, it } from "vitest";
import { readFile } from "node:fs/promises";
import { randomUUID } from "node:crypto";
import { fileURLToPath } from "node:url";
import { BATCH_JOB_NAME, newEventId, streamIdFor } from "@auditgraph/core";
import { waitUntilIdle } from "@auditgraph/worker";
import { Graph } from "@auditgraph/graph";
import { SegmentLedger } from "@auditgraph/ledger";
import { AuditWorker } from "@auditgraph/worker";
import { Queue } from "bullmq";
import { isolatedConfig, readAll, sampleTrace, startPipeline } from "./helpers.js";

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function pipeline() {
  const config = await isolatedConfig();
  const p = await startPipeline(config);
  cleanups.push(() => p.stop());
  return { config, ...p };
}

const countNodes = (graph: Graph, traceId: string) =>
  graph.read(
    `MATCH (t:Trace {id: $traceId})
     OPTIONAL MATCH (n)-[:PART_OF]->(t)
     WITH t, collect(n) AS parts
     MATCH (p:Prompt {traceId: $traceId})
     MATCH (o:Output {traceId: $traceId})
     MATCH (a:Agent)-[r:ACTED_ON_BEHALF_OF {traceId: $traceId}]->(u:User)
     RETURN count(DISTINCT t) AS traces, size(parts) AS parts, count(DISTINCT p) AS prompts,
            count(DISTINCT o) AS outputs, count(DISTINCT r) AS actedFor, count(DISTINCT u) AS users`,
    { traceId },
  );

describe("worker: ledger append, then projection", () => {
  it("records a job delivered twice once in the ledger and once in the graph", async () => {
    const { queue, ledger, graph } = await pipeline();
    const events = sampleTrace();
    await queue.add(BATCH_JOB_NAME, { events });
    await waitUntilIdle(queue);
    const first = await countNodes(graph, events[0]!.traceId);
    await queue.add(BATCH_JOB_NAME, { events });
    await queue.add(BATCH_JOB_NAME, { events: [...events].reverse() });
    await waitUntilIdle(queue);

    const records = await readAll(ledger);
    expect(records).toHaveLength(events.length);
    expect(new Set(records.map((r) => r.event.eventId)).size).toBe(events.length);
    expect(await ledger.verify()).toMatchObject({ ok: true, count: events.length });
    const again = await countNodes(graph, events[0]!.traceId);
    expect(again).toEqual(first);
    // LLM call + tool call are the trace's parts; one of every other node.
    expect(again).toEqual([{ traces: 1, parts: 2, prompts: 1, outputs: 1, actedFor: 1, users: 1 }]);
  });

  it("dead-letters a malformed event with the field it lacks, keeps the rest, and keeps running", async () => {
    const { queue, ledger } = await pipeline();
    const [good1, bad, good2] = sampleTrace();
    const broken = structuredClone(bad) as unknown as { identity: { user: Record<string, unknown> } };
    delete broken.identity.user.id;
    const job = await queue.add(BATCH_JOB_NAME, { events: [good1, broken, good2] });
    await queue.add(BATCH_JOB_NAME, { nope: true });
    await waitUntilIdle(queue);

    const deadLetters = await ledger.readDeadLetters();
    expect(deadLetters).toHaveLength(2);
    expect(deadLetters[0]).toMatchObject({ id: `${job.id}#1`, jobId: job.id, input: broken });
    expect(deadLetters[0]!.reason).toMatch(/event 1: identity\.user\.id/);
    expect(deadLetters[1]!.reason).toMatch(/batch job: events/);
    expect((await readAll(ledger)).map((r) => r.event.eventId)).toEqual([good1!.eventId, good2!.eventId]);
    expect(await queue.getFailedCount()).toBe(0);

    // Still consuming.
    const next = sampleTrace();
    await queue.add(BATCH_JOB_NAME, { events: next });
    await waitUntilIdle(queue);
    expect(await readAll(ledger)).toHaveLength(2 + next.length);
  });

  it("keeps appending while Neo4j is unreachable and projects everything once it is back", async () => {
    const config = await isolatedConfig();
    const ledger = new SegmentLedger(config.ledgerDir);
    const unreachable = new Graph({ ...config.neo4j, uri: "bolt://127.0.0.1:1", maxRetryTimeMs: 500 });
    const down = new AuditWorker({ connection: config.redis, queueName: config.queueName, ledger, graph: unreachable });
    const queue = new Queue(config.queueName, { connection: config.redis });
    cleanups.push(async () => {
      await queue.obliterate({ force: true }).catch(() => undefined);
      await queue.close();
    });
    const events = sampleTrace();
    const failed = new Promise((resolve) => down.worker.once("failed", resolve));
    await queue.add(BATCH_JOB_NAME, { events }, { attempts: 50, backoff: { type: "fixed", delay: 200 } });
    await failed;

    // Durable in the ledger although the projection failed.
    expect(await readAll(ledger)).toHaveLength(events.length);
    await down.close();
    await unreachable.close();

    const up = await startPipeline(config);
    cleanups.push(() => up.stop());
    await waitUntilIdle(queue);
    const rows = await countNodes(up.graph, events[0]!.traceId);
    expect(rows).toEqual([{ traces: 1, parts: 2, prompts: 1, outputs: 1, actedFor: 1, users: 1 }]);
    expect(await readAll(new SegmentLedger(config.ledgerDir))).toHaveLength(events.length);
    expect((await readAll(ledger))[0]!.streamId).toBe(streamIdFor(events[0]!.identity.user.tenantId));
  });
});

describe("reasoning in the graph", () => {
  it("an LLM call's reasoning steps hang off it in order (FIRST_STEP, NEXT), the tool call step linked to its ToolCall", async () => {
    const { queue, graph } = await pipeline();
    const events = sampleTrace();
    await queue.add(BATCH_JOB_NAME, { events });
    await queue.add(BATCH_JOB_NAME, { events }); // projected twice: nothing doubles
    await waitUntilIdle(queue);
    const rows = await graph.read(
      `MATCH (c:LLMCall {traceId: $traceId})-[:FIRST_STEP]->(first:ReasoningStep)
       MATCH path = (first)-[:NEXT*0..]->(s:ReasoningStep)
       OPTIONAL MATCH (s)-[:REQUESTS]->(x:ToolCall)
       RETURN s.index AS index, s.kind AS kind, s.text AS text, x.callId AS callId, x.output AS output, length(path) AS hops
       ORDER BY hops`,
      { traceId: events[0]!.traceId },
    );
    expect(rows).toEqual([
      { index: 0, kind: "reasoning", text: "The user wants a sum; the add tool is exact.", callId: null, output: null, hops: 0 },
      { index: 1, kind: "tool_call", text: null, callId: "c1", output: '"3"', hops: 1 },
    ]);
  });
});

describe("older producers", () => {
  it("events of the walking skeleton's release (llm.start carried a promptHash) are accepted, kept as sent, and projected", async () => {
    const { queue, ledger, graph } = await pipeline();
    const raw = await readFile(fileURLToPath(new URL("./fixtures/v1-skeleton-events.json", import.meta.url)), "utf8");
    // Fresh ids, so the fixture can run again against the same graph.
    const traceId = randomUUID();
    const events = (JSON.parse(raw) as Record<string, unknown>[]).map((e) => ({ ...e, eventId: newEventId(), traceId }));
    await queue.add(BATCH_JOB_NAME, { events });
    await waitUntilIdle(queue);
    const records = await readAll(ledger);
    expect(records.map((r) => r.event)).toEqual(events);
    expect(await ledger.readDeadLetters()).toEqual([]);
    const lineage = await graph.lineage(traceId);
    expect(lineage).toMatchObject({ output: { text: "3 × KB-ERGO-2 cost 268.5 EUR in total." }, user: { id: "alice", tenantId: "acme-v1" }, agent: { version: "1.3.0" } });
  });
});
