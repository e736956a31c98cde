// Issue 14, point 3: replays are kept apart from production. A user's real traces are recorded
// by a real LangChain agent through the queue and a signing worker, replayed through a candidate
// version with `auditgraph replay`, and then every answer about production must be what it was
// before the replay: her activity, her session's order, who the agent acted for, the next
// snapshot (and its control run). `includeReplays` / `--include-replays` bring the replays in.
import { randomUUID } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BATCH_JOB_NAME } from "@auditgraph/core";
import { Queue } from "bullmq";
import { Graph, investigate } from "@auditgraph/graph";
import { AuditCallbackHandler, QueueTransport } from "@auditgraph/langchain";
import { CheckpointSigner, SegmentLedger, generateSigningKey } from "@auditgraph/ledger";
import { AuditWorker, waitUntilIdle } from "@auditgraph/worker";
import { keyStoreOf, type Config } from "@auditgraph/cli";
import { readSnapshot } from "@auditgraph/replay";
import { cliEnvOf, eventually, isolatedConfig, runCli, sampleTrace } from "./helpers.js";

const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));
const V1 = fixture("replays-apart-v1.mjs");
const V2 = fixture("replays-apart-v2.mjs");
const tenantId = `apart-${randomUUID().slice(0, 8)}`;
const OPERATOR = `op-${randomUUID().slice(0, 8)}`;
const QUESTIONS = ["What does 3 x KB-ERGO-2 cost?", "And MS-VERT-1?", "And DK-STAND-3?"];

let config: Config;
let graph: Graph;
let queue: Queue;
let worker: AuditWorker;
let ledger: SegmentLedger;
let env: NodeJS.ProcessEnv;
let dir: string;
/** Ana's real traces, in the order she made them. */
const real: string[] = [];
let unfinishedTraceId: string;

const cli = (...args: string[]) => runCli(env, ...args);
const ids = (rows: { traceId: string }[]) => rows.map((r) => r.traceId).sort();

beforeAll(async () => {
  config = await isolatedConfig();
  dir = dirname(config.ledgerDir);
  const keys = generateSigningKey();
  const publicKey = join(dir, "public.pem");
  await writeFile(publicKey, keys.publicKeyPem);
  env = { ...cliEnvOf(config), AUDITGRAPH_PUBLIC_KEY: publicKey };
  graph = new Graph(config.neo4j);
  await graph.migrate();
  // A worker that signs a checkpoint after every batch, as a snapshot needs.
  ledger = new SegmentLedger(config.ledgerDir, { signer: new CheckpointSigner(keys.privateKeyPem) });
  queue = new Queue(config.queueName, { connection: config.redis });
  worker = new AuditWorker({ connection: config.redis, queueName: config.queueName, ledger, graph, keyStore: keyStoreOf(config) });
  await worker.waitUntilReady();

  // The agent the CLI's --agent modules replay, a plain ESM module.
  const { orderAgent } = (await import(pathToFileURL(fixture("replays-apart-agent.mjs")).href)) as {
    orderAgent: (version: string) => { invoke(input: unknown, config: Record<string, unknown>): Promise<unknown> };
  };
  const transport = new QueueTransport({ connection: config.redis, queueName: config.queueName, spoolDir: config.spoolDir });
  const handler = new AuditCallbackHandler({ agent: { id: "orders", name: "Order assistant", version: "1.0.0" } }, transport);
  for (const q of QUESTIONS) {
    const runId = randomUUID();
    await orderAgent("1.0.0").invoke(
      { messages: [{ role: "user", content: q }] },
      { runId, callbacks: [handler], metadata: { auditgraph_user_id: "ana", auditgraph_tenant_id: tenantId, auditgraph_session_id: "s-ana" } },
    );
    real.push(runId);
  }
  await handler.close();
  // A trace still in progress: its root chain started, a tool call began, nothing ended.
  const unfinished = sampleTrace(tenantId).slice(0, 4);
  unfinishedTraceId = unfinished[0]!.traceId;
  await queue.add(BATCH_JOB_NAME, { events: unfinished });
  await waitUntilIdle(queue);
}, 120_000);

afterAll(async () => {
  await worker?.close();
  await queue?.obliterate({ force: true }).catch(() => undefined);
  await queue?.close();
  await ledger?.close();
  await graph?.close();
});

// Each test runs the CLI a few times: on a busy machine that takes longer than the default timeout.
describe("replays apart from production", { timeout: 240_000 }, () => {
  it("snapshot create leaves an unfinished trace out unless --include-unfinished", async () => {
    const snap = join(dir, "snap-1.json");
    const created = await cli("snapshot", "create", "--out", snap, "--tenant", tenantId);
    expect(created.code).toBe(0);
    expect((await readSnapshot(snap)).traces.map((t) => t.traceId)).toEqual(real);
    const all = join(dir, "snap-1-all.json");
    expect((await cli("snapshot", "create", "--out", all, "--tenant", tenantId, "--include-unfinished")).code).toBe(0);
    expect((await readSnapshot(all)).traces.map((t) => t.traceId).sort()).toEqual([...real, unfinishedTraceId].sort());
    // Unknown flags stay refused.
    const typo = await cli("snapshot", "create", "--out", all, "--tenant", tenantId, "--include-replay");
    expect(typo.code).not.toBe(0);
    expect(typo.stderr).toMatch(/unknown option '--include-replay'/);
  });

  describe("after a replay of her traces through a candidate version", () => {
    beforeAll(async () => {
      // Her traces named one by one: what is replayed does not hang on the default filter.
      const snap = join(dir, "snap-replayed.json");
      const created = await cli("snapshot", "create", "--out", snap, "--tenant", tenantId, ...real.flatMap((id) => ["--trace", id]));
      expect(created.code, created.stderr).toBe(0);
      const replayed = await cli("replay", "--snapshot", snap, "--agent", V2, "--out", join(dir, "replay-1"), "--operator", OPERATOR);
      expect(replayed.code, replayed.stderr).toBe(0);
      await waitUntilIdle(queue);
      // The replays and the review's record are projected.
      await eventually(async () => {
        const [row] = await graph.read(
          `MATCH (r:Trace {tenantId: $tenantId})-[:REPLAY_OF]->(:Trace) WITH count(r) AS replays
           RETURN replays, COUNT { MATCH (:Review {tenantId: $tenantId}) } AS reviews`,
          { tenantId },
        );
        return Number(row!.replays) === 3 && Number(row!.reviews) === 1 ? true : undefined;
      });
    }, 120_000);

    it("user-activity counts her real traces only; includeReplays=true brings the replays in", async () => {
      expect(ids(await investigate(graph, "user-activity", { tenantId, userId: "ana" }))).toEqual([...real].sort());
      const withReplays = await investigate(graph, "user-activity", { tenantId, userId: "ana", includeReplays: true });
      expect(withReplays).toHaveLength(6);
      // The same from the CLI, where parameters are text.
      const q = await cli("query", "user-activity", "--tenant", tenantId, "--param", "userId=ana", "--param", "includeReplays=true", "--json");
      expect((JSON.parse(q.stdout) as unknown[]).length).toBe(6);
      const bad = await cli("query", "user-activity", "--tenant", tenantId, "--param", "userId=ana", "--param", "includeReplays=maybe");
      expect(bad.code).not.toBe(0);
      expect(bad.stderr).toContain("includeReplays");
    });

    it("her session's order holds her real traces only", async () => {
      const [row] = await graph.read(
        `MATCH (s:Session {tenantId: $tenantId, id: 's-ana'})-[:FIRST_TRACE]->(first:Trace)
         MATCH path = (first)-[:NEXT_TRACE*0..]->(last:Trace) WHERE NOT (last)-[:NEXT_TRACE]->()
         RETURN [t IN nodes(path) | t.id] AS order,
                COUNT { MATCH (s)<-[:IN_SESSION]-(r:Trace)-[:REPLAY_OF]->() WHERE (r)-[:NEXT_TRACE]-() OR (s)-[:FIRST_TRACE]->(r) } AS replaysInOrder`,
        { tenantId },
      );
      expect(row!.order).toEqual(real);
      expect(Number(row!.replaysInOrder)).toBe(0);
    });

    it("on-behalf-of: the candidate version acted for nobody, and the operator is never a user", async () => {
      const rows = await investigate(graph, "on-behalf-of", { tenantId, agentId: "orders" });
      expect(rows.map(({ userId, agentVersion, traces }) => ({ userId, agentVersion, traces }))).toEqual([{ userId: "ana", agentVersion: "1.0.0", traces: 3 }]);
      const withReplays = await investigate(graph, "on-behalf-of", { tenantId, agentId: "orders", includeReplays: true });
      expect(withReplays.map(({ userId, agentVersion, traces }) => ({ userId, agentVersion, traces }))).toEqual([
        { userId: "ana", agentVersion: "1.0.0", traces: 3 },
        { userId: "ana", agentVersion: "2.0.0", traces: 3 },
      ]);
      // Not a user, with or without replays, in the graph or in any query.
      const [operator] = await graph.read(
        `RETURN COUNT { MATCH (u:User {tenantId: $tenantId, id: $operator}) } AS users,
                COUNT { MATCH (:Agent {tenantId: $tenantId})-[:ACTED_ON_BEHALF_OF]->(:User {tenantId: $tenantId, id: $operator}) } AS actedFor`,
        { tenantId, operator: OPERATOR },
      );
      expect({ users: Number(operator!.users), actedFor: Number(operator!.actedFor) }).toEqual({ users: 0, actedFor: 0 });
      expect(await investigate(graph, "user-activity", { tenantId, userId: OPERATOR, includeReplays: true })).toEqual([]);
      // Who ran the review is kept with it.
      const [review] = await graph.read(`MATCH (rv:Review {tenantId: $tenantId}) RETURN rv.operator AS operator`, { tenantId });
      expect(review!.operator).toBe(OPERATOR);
    });

    it("blast-radius of the candidate version is empty: it served no one", async () => {
      expect(await investigate(graph, "blast-radius", { tenantId, agentId: "orders", agentVersion: "2.0.0" })).toEqual([]);
      const withReplays = await investigate(graph, "blast-radius", { tenantId, agentId: "orders", agentVersion: "2.0.0", includeReplays: true });
      expect(withReplays.map((r) => [r.userId, r.traces])).toEqual([["ana", 3]]);
    });

    it("a second snapshot takes neither the replays nor the review's record, and its control run passes", async () => {
      const snap = join(dir, "snap-2.json");
      expect((await cli("snapshot", "create", "--out", snap, "--tenant", tenantId)).code).toBe(0);
      expect((await readSnapshot(snap)).traces.map((t) => t.traceId)).toEqual(real);
      const control = await cli("replay", "--snapshot", snap, "--agent", V1, "--control", "--out", join(dir, "replay-2"), "--operator", OPERATOR);
      expect(control.stdout).toContain("control: all 3 traces reproduced exactly");
      expect(control.stdout).toContain("Gate: PASSED");
      expect(control.code).toBe(0);
    }, 120_000);

    it("--include-replays takes them; a control run over them fails, and says so in its gate", async () => {
      // The control run before this one was a replay too: all its events in the ledger first.
      await waitUntilIdle(queue);
      const snap = join(dir, "snap-3.json");
      expect((await cli("snapshot", "create", "--out", snap, "--tenant", tenantId, "--include-replays")).code).toBe(0);
      const taken = (await readSnapshot(snap)).traces.map((t) => t.traceId);
      // Her 3 traces, the two replays' 3 runs each and their 2 reviews' records.
      expect(taken).toHaveLength(11);
      expect(taken.filter((id) => real.includes(id))).toEqual(real);
      const control = await cli("replay", "--snapshot", snap, "--agent", V1, "--control", "--out", join(dir, "replay-3"), "--operator", OPERATOR);
      expect(control.code).toBe(2);
      expect(control.stdout).toContain("Gate: FAILED");
      expect(control.stdout).not.toContain("Gate: PASSED");
    }, 120_000);
  });
});
