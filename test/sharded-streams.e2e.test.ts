import { spawn, type ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { AIMessage } from "@langchain/core/messages";
import { awaitAllCallbacks } from "@langchain/core/callbacks/promises";
import { fakeModel } from "@langchain/core/testing";
import { tool } from "@langchain/core/tools";
import { createAgent } from "langchain";
import { z } from "zod";
import { Queue } from "bullmq";
import { shardOf, streamIdFor, streamsOfTenant, type EventOf, type LedgerRecord } from "@auditgraph/core";
import { AuditCallbackHandler, QueueTransport } from "@auditgraph/langchain";
import { SegmentLedger } from "@auditgraph/ledger";
import { Graph } from "@auditgraph/graph";
import { SHARDS_TRACE_ID, waitUntilIdle } from "@auditgraph/worker";
import { CLI_BIN, cliEnvOf, eventually, isolatedConfig, runCli } from "./helpers.js";
import { freePort } from "./redis-process.js";

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

/** `auditgraph worker` as its own process: its port serves /metrics. */
async function startWorker(env: NodeJS.ProcessEnv) {
  const port = await freePort();
  const child: ChildProcess = spawn(process.execPath, [CLI_BIN, "worker", "--concurrency", "2"], {
    env: { ...env, AUDITGRAPH_WORKER_HTTP_PORT: String(port) },
    stdio: ["ignore", "ignore", "pipe"],
  });
  let err = "";
  child.stderr!.on("data", (b: Buffer) => (err += b.toString()));
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  cleanups.push(async () => {
    if (child.exitCode === null) child.kill("SIGTERM");
    await exited;
  });
  const appended = async () => {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    return Number(/^auditgraph_events_appended_total (\d+)/m.exec(text)?.[1] ?? Number.NaN);
  };
  await eventually(
    () =>
      fetch(`http://127.0.0.1:${port}/metrics`).then(
        (r) => (r.ok ? true : undefined),
        () => undefined,
      ),
    60_000,
  );
  return { appended, stderr: () => err };
}

/** Runs `traces` real LangChain agent requests (a tool call, then an answer) for `tenantId`, through a transport grouped by `shards`. */
async function runAgents(env: NodeJS.ProcessEnv, tenantId: string, shards: number, traces: number): Promise<string[]> {
  const transport = new QueueTransport({ env, shards, batchSize: 50, lingerMs: 20 });
  const handler = new AuditCallbackHandler({ agent: { id: "shard-agent", name: "Shard agent", version: "1.0.0" }, user: { id: "u-1", tenantId } }, transport);
  const add = tool(({ a, b }) => String(a + b), { name: "add", description: "adds", schema: z.object({ a: z.number(), b: z.number() }) });
  const ids: string[] = [];
  // Concurrent requests, so batches are cut from a buffer holding several traces (and shards).
  await Promise.all(
    Array.from({ length: traces }, async (_, i) => {
      const traceId = randomUUID();
      ids.push(traceId);
      const model = fakeModel()
        .respondWithTools([{ id: `c-${i}`, name: "add", args: { a: i, b: 1 } }])
        .respond(new AIMessage(`it is ${i + 1}`));
      await createAgent({ model, tools: [add] }).invoke({ messages: [{ role: "user", content: `add ${i} and 1` }] }, { runId: traceId, callbacks: [handler] });
    }),
  );
  await awaitAllCallbacks();
  await transport.close();
  return ids;
}

async function tenantRecords(ledger: SegmentLedger, tenantId: string): Promise<LedgerRecord[]> {
  const out: LedgerRecord[] = [];
  for (const stream of streamsOfTenant(await ledger.streams(), tenantId)) for await (const r of ledger.readStream(stream)) out.push(r);
  return out;
}

const changesOf = (records: LedgerRecord[]) =>
  records.filter((r) => r.event.type === "shards.changed").map((r) => ({ streamId: r.streamId, payload: (r.event as EventOf<"shards.changed">).payload }));

describe("sharded streams: one tenant over K shards, written by two workers at once", () => {
  it("places each trace in one shard by its id, records each count change once, and verify, prove and the graph cover every shard", {
    timeout: 300_000,
  }, async () => {
    const config = await isolatedConfig();
    const tenantId = `shard-${randomUUID().slice(0, 8)}`;
    const keysDir = join(config.ledgerDir, "..", "keys");
    expect((await runCli(cliEnvOf(config), "keygen", "--out", keysDir)).code).toBe(0);
    const env = { ...cliEnvOf(config), AUDITGRAPH_SHARDS: `${tenantId}:8`, AUDITGRAPH_SIGNING_KEY: join(keysDir, "checkpoint-signing-key.pem") };
    const workers = [await startWorker(env), await startWorker(env)];
    const queue = new Queue(config.queueName, { connection: config.redis });
    cleanups.push(() => queue.obliterate({ force: true }).then(() => queue.close()));
    const ledger = new SegmentLedger(config.ledgerDir);
    const graph = new Graph(config.neo4j);
    cleanups.push(() => graph.close());

    const first = await runAgents(env, tenantId, 8, 40);
    await waitUntilIdle(queue, 120_000, { projection: false });
    const records = await tenantRecords(ledger, tenantId);
    expect(new Set(records.filter((r) => r.event.type === "chain.end").map((r) => r.event.traceId))).toEqual(new Set(first));

    // Every trace in exactly one stream: its shard by id among 8.
    const streamsOf = new Map<string, Set<string>>();
    for (const r of records) streamsOf.set(r.event.traceId, (streamsOf.get(r.event.traceId) ?? new Set()).add(r.streamId));
    for (const traceId of first) expect([...streamsOf.get(traceId)!]).toEqual([streamIdFor(tenantId, shardOf(traceId, 8))]);
    const used = new Set(first.map((t) => shardOf(t, 8)));
    expect(used.size).toBeGreaterThan(4);
    expect(streamsOfTenant(await ledger.streams(), tenantId)).toEqual([...new Set([0, ...used])].sort((a, b) => a - b).map((s) => streamIdFor(tenantId, s)));
    // The change from one shard to 8 is on the base stream, once, though both workers met it.
    expect(changesOf(records)).toEqual([{ streamId: streamIdFor(tenantId), payload: expect.objectContaining({ from: 1, to: 8, generation: 1 }) }]);
    // Both workers wrote the tenant.
    for (const w of workers) expect(await w.appended()).toBeGreaterThan(0);

    // verify covers every shard; a record in a shard other than 0 is proved and the proof checks.
    const verified = await runCli(env, "verify");
    expect(verified.code, verified.stderr).toBe(0);
    expect(verified.stdout).toMatch(new RegExp(`OK: ${records.length} events in ${used.size + (used.has(0) ? 0 : 1)} streams`));
    const inShard = records.find((r) => r.streamId !== streamIdFor(tenantId) && r.event.type === "tool.start")!;
    const proved = await runCli(env, "prove", inShard.event.eventId);
    expect(proved.code, proved.stderr).toBe(0);
    expect(JSON.parse(proved.stdout)).toMatchObject({ record: { streamId: inShard.streamId, position: inShard.position } });
    const file = join(config.ledgerDir, "..", "proof.json");
    await writeFile(file, proved.stdout);
    const checked = await runCli(env, "verify-proof", file, "--public-key", join(keysDir, "checkpoint-public-key.pem"));
    expect(checked.code, checked.stdout + checked.stderr).toBe(0);

    // The projection follows every shard's stream: each trace is in the graph.
    await eventually(async () => {
      const [row] = await graph.read("MATCH (t:Trace) WHERE t.id IN $ids AND t.tenantId = $tenantId RETURN count(t) AS n", { ids: first, tenantId });
      return Number(row?.n) === first.length ? true : undefined;
    }, 120_000);

    // Agents now group by 4: the change is recorded (generation 2) before the first event placed by it, and new traces keep to shards 0-3.
    const second = await runAgents(env, tenantId, 4, 12);
    await waitUntilIdle(queue, 120_000, { projection: false });
    const after = await tenantRecords(ledger, tenantId);
    expect(new Set(after.filter((r) => r.event.type === "chain.end").map((r) => r.event.traceId))).toEqual(new Set([...first, ...second]));
    expect(changesOf(after).map((c) => c.payload)).toEqual([
      expect.objectContaining({ from: 1, to: 8, generation: 1 }),
      expect.objectContaining({ from: 8, to: 4, generation: 2 }),
    ]);
    const change = after.find((r) => r.event.type === "shards.changed" && (r.event as EventOf<"shards.changed">).payload.generation === 2)!;
    for (const traceId of second) {
      const own = after.filter((r) => r.event.traceId === traceId);
      expect(new Set(own.map((r) => r.streamId))).toEqual(new Set([streamIdFor(tenantId, shardOf(traceId, 4))]));
      // Written after the change was: the worker records it first.
      for (const r of own) expect(r.recordedAt >= change.recordedAt).toBe(true);
    }
    expect(after.filter((r) => r.event.traceId === SHARDS_TRACE_ID)).toHaveLength(2);
    const report = await runCli(env, "shards", "--tenant", tenantId, "--json");
    expect(report.code, report.stderr).toBe(0);
    expect(JSON.parse(report.stdout)).toMatchObject({
      tenantId,
      recorded: 4,
      configured: 8,
      changes: [expect.objectContaining({ generation: 1, from: 1, to: 8 }), expect.objectContaining({ generation: 2, from: 8, to: 4 })],
    });
    expect(JSON.parse(report.stdout).streams.reduce((n: number, s: { records: number }) => n + s.records, 0)).toBe(after.length);
    const again = await runCli(env, "verify");
    expect(again.code, again.stderr).toBe(0);
    for (const w of workers) expect(w.stderr()).not.toMatch(/"level":50/);
  });
});
