import { afterEach, describe, expect, it } from "vitest";
import { readFile } from "node:fs/promises";
import { randomUUID } from "node:crypto";
import { fileURLToPath } from "node:url";
import { BATCH_JOB_NAME, newEventId, streamIdFor } from "@auditgraph/core";
import { projectionLag, waitUntilIdle } from "@auditgraph/worker";
import { Graph } from "@auditgraph/graph";
import { SegmentLedger } from "@auditgraph/ledger";
import { AuditWorker } from "@auditgraph/worker";
import { Queue } from "bullmq";
import { eventually, isolatedConfig, readAll, sampleTrace, startPipeline } from "./helpers.js";

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

  it("acknowledges jobs while Neo4j is unreachable; a worker with the graph back catches the projection up from its cursor", async () => {
    const config = await isolatedConfig();
    const ledger = new SegmentLedger(config.ledgerDir);
    const unreachable = new Graph({ ...config.neo4j, uri: "bolt://127.0.0.1:1", maxRetryTimeMs: 200 });
    const down = new AuditWorker({
      connection: config.redis,
      queueName: config.queueName,
      ledger,
      graph: unreachable,
      projection: { retryMinMs: 20, retryMaxMs: 100 },
    });
    const queue = new Queue(config.queueName, { connection: config.redis });
    cleanups.push(async () => {
      await queue.obliterate({ force: true }).catch(() => undefined);
      await queue.close();
    });
    const tenantId = `down-${randomUUID().slice(0, 8)}`;
    const traces = [sampleTrace(tenantId), sampleTrace(tenantId)];
    for (const events of traces) await queue.add(BATCH_JOB_NAME, { events });
    // Acknowledged on the ledger alone: the graph being down holds up neither appends nor acks.
    await waitUntilIdle(queue, 30_000, { projection: false });
    // Acknowledged: nothing left in the queue, nothing failed (completed jobs leave Redis at once).
    expect(await queue.getJobCounts("waiting", "active", "delayed", "prioritized", "failed", "completed")).toEqual({
      waiting: 0,
      active: 0,
      delayed: 0,
      prioritized: 0,
      failed: 0,
      completed: 0,
    });
    expect(await readAll(ledger)).toHaveLength(12);
    // The projection keeps retrying in the background, and says how far behind it is.
    await eventually(async () => ((down.projectionLag()[0]?.failures ?? 0) >= 2 ? true : undefined));
    await expect(down.projected(200)).rejects.toThrow(/did not catch up within 200 ms: tenant-down-\w+ at \S+ of 11 \(\d+ failures, last: /);
    await down.close();
    await unreachable.close();

    // A new worker on the same ledger, with the graph: it resumes from the cursor at start.
    const up = await startPipeline(config);
    cleanups.push(() => up.stop());
    await up.worker!.projected(30_000);
    for (const events of traces)
      expect(await countNodes(up.graph, events[0]!.traceId)).toEqual([{ traces: 1, parts: 2, prompts: 1, outputs: 1, actedFor: 1, users: 1 }]);
    const records = await readAll(ledger);
    expect(await up.graph.cursors(streamIdFor(tenantId))).toEqual([
      { ledgerId: await ledger.id(), streamId: streamIdFor(tenantId), position: 11, hash: records.at(-1)!.hash },
    ]);
    expect(await projectionLag(ledger, up.graph).then((lags) => lags.find((l) => l.streamId === streamIdFor(tenantId)))).toEqual({
      streamId: streamIdFor(tenantId),
      cursor: 11,
      last: 11,
      behind: 0,
      setAside: 0,
    });
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
    // And a fresh tenant: each run's fresh ledger owns its tenant's projection.
    const tenantId = `acme-v1-${randomUUID().slice(0, 8)}`;
    const events = (JSON.parse(raw) as (Record<string, unknown> & { identity: { user: object } })[]).map((e) => ({
      ...e,
      eventId: newEventId(),
      traceId,
      identity: { ...e.identity, user: { ...e.identity.user, tenantId } },
    }));
    await queue.add(BATCH_JOB_NAME, { events });
    await waitUntilIdle(queue);
    const records = await readAll(ledger);
    expect(records.map((r) => r.event)).toEqual(events);
    expect(await ledger.readDeadLetters()).toEqual([]);
    const lineage = await graph.lineage(traceId);
    expect(lineage).toMatchObject({ output: { text: "3 × KB-ERGO-2 cost 268.5 EUR in total." }, user: { id: "alice", tenantId }, agent: { version: "1.3.0" } });
  });
});
