import { spawn, type ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import { rm, stat } from "node:fs/promises";
import { dirname, join } from "node:path";
import { performance } from "node:perf_hooks";
import { HumanMessage } from "@langchain/core/messages";
import { awaitAllCallbacks } from "@langchain/core/callbacks/promises";
import { describe, expect, it, onTestFinished } from "vitest";
import { QueueEvents, type ConnectionOptions } from "bullmq";
import type { AuditEvent } from "@auditgraph/core";
import { bullConnection } from "@auditgraph/policy";
import type { SegmentLedger } from "@auditgraph/ledger";
import { AuditCallbackHandler, METADATA_KEYS, QueueTransport, tapTransport } from "@auditgraph/langchain";
import { DEMO_IDENTITY, DEMO_QUESTION, demoAgent, keyStoreOf } from "@auditgraph/cli";
import { waitUntilIdle } from "@auditgraph/worker";
import { CLI_BIN, cliEnvOf, isolatedConfig, readAll, startPipeline } from "../helpers.js";

/**
 * SIGKILL the worker at random points during a sustained load, many times: afterwards every
 * captured event is in the ledger exactly once and in the graph exactly once, and `verify` passes.
 *
 * Load: AGENTS real LangChain demo agents (createAgent + scripted model + two real tools) in this
 * process, each audited by its own AuditCallbackHandler on its own QueueTransport, running back to
 * back for the whole kill phase (held back only while more than MAX_BACKLOG_JOBS jobs wait, so the
 * backlog stays drainable on a busy machine). A recording transport in front of each
 * QueueTransport notes every event the handler captured. Killer: at least KILLS times, a CLI
 * worker process (`auditgraph worker --lock-ms 2000`) is started, given a seeded random
 * 200-1500 ms once it is ready (then, if it is between jobs, until it holds one, up to 5 s), and SIGKILLed. Then the agents stop, the transports are flushed
 * and closed, and one in-process worker (as the CLI's: same key store) drains the queue and
 * catches the projection up. Checked: no job failed for good; the ledger holds exactly the
 * captured event ids and verifies; every trace is in Neo4j once with the nodes its events make
 * (Prompt/Output nodes at their events' ledger positions), no node twice; the cursors stand on
 * the ledger's ends.
 *
 * Reproduce a failure with KILL_UNDER_LOAD_SEED=<the seed printed>.
 */

const AGENTS = 6;
const TENANTS = 3;
const KILLS = 10;
/** The kill phase lasts at least this long (and until KILLS kills are done). */
const MIN_LOAD_MS = 15_000;
/** Between two runs of one agent. */
const AGENT_PAUSE_MS = 50;
/**
 * Backpressure: agents wait while more jobs than this wait in the queue, so the workers always
 * have work (the kills hit jobs in hand) and the backlog the last worker drains stays small
 * however loaded the machine is (a job is one transport batch, up to 100 events).
 */
const MAX_BACKLOG_JOBS = 40;
const RUNS_PER_SESSION = 10;
/** After its random delay, a kill waits at most this long for the worker to hold a job of its own. */
const OWN_JOB_WAIT_MS = 5_000;
const EXPECTED_ANSWER = "268.5 EUR";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** mulberry32: a small seeded PRNG, so the kill points of a failing run can be replayed. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Captured {
  eventId: string;
  traceId: string;
  type: string;
  runId: string;
  parentRunId: string | null;
  tenantId: string;
  /** llm.end: its reasoning steps (each a ReasoningStep node). */
  steps: number;
  /** tool.start: the model's tool-call id (the ToolCall node's callId). */
  callId?: string;
}

/** What a fault test needs to know of a captured event to find it again in the ledger and the graph. */
function noteOf(event: AuditEvent): Captured {
  const e = event as unknown as Captured & { identity?: { user: { tenantId: string } }; payload?: Record<string, unknown> };
  const payload = e.payload ?? {};
  return {
    eventId: e.eventId,
    traceId: e.traceId,
    type: e.type,
    runId: e.runId,
    parentRunId: e.parentRunId,
    tenantId: e.identity!.user.tenantId,
    steps: e.type === "llm.end" && Array.isArray(payload.reasoning) ? payload.reasoning.length : 0,
    ...(e.type === "tool.start" && typeof payload.toolCallId === "string" ? { callId: payload.toolCallId } : {}),
  };
}

/** One agent's real transport, with every event it was given noted on the way in. */
function recordingTransport(inner: QueueTransport) {
  const captured: Captured[] = [];
  return { inner, captured, transport: tapTransport(inner, (event) => captured.push(noteOf(event))), close: () => inner.close() };
}
type Recorder = ReturnType<typeof recordingTransport>;

/** Bytes in the ledger's segment files (all streams): grows with every append. */
async function ledgerBytes(ledger: SegmentLedger): Promise<number> {
  let total = 0;
  for (const stream of await ledger.streams())
    for (const path of await ledger.segments(stream))
      total += await stat(path).then(
        (s) => s.size,
        () => 0,
      );
  return total;
}

interface Kill {
  /** From spawn to the worker's ready line. */
  readyMs: number;
  delayMs: number;
  /** Jobs active in the queue just before the kill (the killed worker's, or a dead one's not yet taken back). */
  activeCount: number;
  /** Whether one of them was taken by the worker killed (processedOn after it was started). */
  ownJob: boolean;
  /** Ledger bytes appended while this worker lived. */
  appended: number;
}

describe("workers SIGKILLed again and again under a sustained load of real agents", () => {
  it("leave every captured event in the ledger once and in the graph once, and the ledger verifies", async () => {
    const seed = Number(process.env.KILL_UNDER_LOAD_SEED) || Math.floor(Math.random() * 2 ** 31);
    const random = seeded(seed);
    console.log(`kill-under-load: seed ${seed} (KILL_UNDER_LOAD_SEED=${seed} replays the kill points)`);
    const t0 = performance.now();
    const elapsed = () => `${((performance.now() - t0) / 1000).toFixed(1)} s`;

    const config = await isolatedConfig();
    const root = dirname(config.ledgerDir);
    // The ledger and key store are kept for a look when the test failed (soft assertions included).
    onTestFinished(async ({ task }) => {
      if (task.result?.state === "pass") await rm(root, { recursive: true, force: true });
      else console.log(`kill-under-load: ledger and key store kept in ${root}`);
    });
    const run = `kill-${randomUUID().slice(0, 8)}`;
    const tenants = Array.from({ length: TENANTS }, (_, i) => `${run}-t${i}`);
    const pipeline = await startPipeline(config, { start: false });
    // Jobs taken back from a killed worker, as BullMQ announces them (completed jobs leave Redis at once).
    const stalled = new Map<string, number>();
    const eventsConnection = bullConnection(config.redis);
    const queueEvents = new QueueEvents(config.queueName, { connection: eventsConnection.connection as ConnectionOptions });
    queueEvents.on("stalled", ({ jobId }) => stalled.set(jobId, (stalled.get(jobId) ?? 0) + 1));
    await queueEvents.waitUntilReady();
    onTestFinished(async () => {
      await queueEvents.close();
      await eventsConnection.release();
    });
    const recorders: Recorder[] = [];
    let child: ChildProcess | undefined;
    let stopAgents = false;
    let agentLoops: Promise<void> = Promise.resolve();
    try {
      // --- the load: real agents, back to back, for the whole kill phase
      let runs = 0;
      let backlog = 0;
      let pausedMs = 0;
      const agentErrors: string[] = [];
      const backlogPoller = (async () => {
        while (!stopAgents) {
          const counts = await pipeline.queue.getJobCounts("waiting", "prioritized");
          backlog = counts.waiting! + counts.prioritized!;
          await sleep(100);
        }
      })();
      const agentLoop = async (i: number, recorder: Recorder) => {
        const handler = new AuditCallbackHandler({ agent: DEMO_IDENTITY.agent }, recorder.transport);
        for (let n = 0; !stopAgents; n++) {
          if (backlog > MAX_BACKLOG_JOBS) {
            const from = performance.now();
            while (backlog > MAX_BACKLOG_JOBS && !stopAgents) await sleep(50);
            if (i === 0) pausedMs += performance.now() - from;
            if (stopAgents) break;
          }
          try {
            const state = await demoAgent().invoke(
              { messages: [new HumanMessage(DEMO_QUESTION)] },
              {
                callbacks: [handler],
                metadata: {
                  [METADATA_KEYS.userId]: `user-${i}`,
                  [METADATA_KEYS.tenantId]: tenants[i % TENANTS]!,
                  [METADATA_KEYS.sessionId]: `${run}-a${i}-s${Math.floor(n / RUNS_PER_SESSION)}`,
                },
              },
            );
            const answer = state.messages.at(-1)?.text ?? "";
            if (!answer.includes(EXPECTED_ANSWER)) agentErrors.push(`agent ${i} run ${n}: unexpected answer ${JSON.stringify(answer)}`);
            runs += 1;
          } catch (error) {
            agentErrors.push(`agent ${i} run ${n}: ${(error as Error).message}`);
          }
          await sleep(AGENT_PAUSE_MS);
        }
      };
      for (let i = 0; i < AGENTS; i++) {
        const inner = new QueueTransport({ connection: config.redis, queueName: config.queueName, spoolDir: join(config.spoolDir, `agent-${i}`) });
        recorders.push(recordingTransport(inner));
      }
      agentLoops = Promise.all([...recorders.map((r, i) => agentLoop(i, r)), backlogPoller]).then(() => undefined);

      // --- the killer: start a CLI worker, let it work a random while, SIGKILL it; again and again
      const kills: Kill[] = [];
      const loadStart = performance.now();
      const bytesBefore = await ledgerBytes(pipeline.ledger);
      while (kills.length < KILLS || performance.now() - loadStart < MIN_LOAD_MS) {
        const spawnedAt = Date.now();
        const bytesAtSpawn = await ledgerBytes(pipeline.ledger);
        const worker = spawn(process.execPath, [CLI_BIN, "worker", "--lock-ms", "2000"], { env: cliEnvOf(config), stdio: ["ignore", "pipe", "pipe"] });
        child = worker;
        const exited = new Promise<void>((resolve) => worker.once("exit", () => resolve()));
        let stderr = "";
        worker.stderr!.on("data", (c: Buffer) => (stderr = (stderr + c.toString()).slice(-4000)));
        await new Promise<void>((resolve, reject) => {
          let out = "";
          const timer = setTimeout(() => reject(new Error(`worker not ready within 30 s: ${stderr}`)), 30_000);
          worker.stdout!.on("data", (c: Buffer) => {
            out += c.toString();
            if (out.includes("auditgraph worker: queue")) {
              clearTimeout(timer);
              resolve();
            }
          });
          worker.once("exit", (code, signal) => {
            clearTimeout(timer);
            reject(new Error(`worker exited (${code ?? signal}) before it was ready: ${stderr}`));
          });
        });
        const readyMs = Date.now() - spawnedAt;
        const delayMs = Math.round(200 + random() * 1300);
        await sleep(delayMs);
        // On a loaded machine the worker may be between jobs when the delay ends: the kill then waits
        // (up to OWN_JOB_WAIT_MS) for the next moment it holds one, so kills land on jobs in hand.
        let active = await pipeline.queue.getJobs(["active"]);
        const ownDeadline = performance.now() + OWN_JOB_WAIT_MS;
        while (!active.some((j) => (j.processedOn ?? 0) >= spawnedAt) && performance.now() < ownDeadline) {
          await sleep(10);
          active = await pipeline.queue.getJobs(["active"]);
        }
        const activeCount = active.length;
        const ownJob = active.some((j) => (j.processedOn ?? 0) >= spawnedAt);
        worker.kill("SIGKILL");
        await exited;
        child = undefined;
        kills.push({ readyMs, delayMs, activeCount, ownJob, appended: (await ledgerBytes(pipeline.ledger)) - bytesAtSpawn });
      }
      const grown = (await ledgerBytes(pipeline.ledger)) - bytesBefore;
      const loadMs = performance.now() - loadStart;

      // --- stop the load; everything captured goes to Redis
      stopAgents = true;
      await agentLoops;
      await awaitAllCallbacks();
      for (const r of recorders) await r.close();
      const captured = recorders.flatMap((r) => r.captured);
      const queueAtLoadEnd = await pipeline.queue.getJobCounts("waiting", "prioritized", "active", "delayed", "failed", "completed");
      console.log(
        `kill-under-load: ${kills.length} kills in ${(loadMs / 1000).toFixed(1)} s (${elapsed()}), ${runs} agent runs, ${captured.length} events captured, ` +
          `agent 0 held back ${(pausedMs / 1000).toFixed(1)} s by the backlog, ledger +${grown} bytes; kills with a job of the killed worker active: ${kills.filter((k) => k.ownJob).length}, ` +
          `with any active job: ${kills.filter((k) => k.activeCount > 0).length}, while it appended: ${kills.filter((k) => k.appended > 0).length}; ` +
          `queue at load end ${JSON.stringify(queueAtLoadEnd)}`,
      );
      console.log(`kill-under-load: kills ${JSON.stringify(kills)}`);

      expect(agentErrors, `seed ${seed}`).toEqual([]);
      for (const r of recorders) {
        const m = r.inner.metrics;
        // Everything captured reached Redis (directly or through the spool): none is left behind on the agent side.
        expect({ accepted: m.accepted, inRedis: m.queued + m.forwarded, dropped: m.dropped }).toEqual({
          accepted: r.captured.length,
          inRedis: r.captured.length,
          dropped: 0,
        });
      }
      expect(kills.length).toBeGreaterThanOrEqual(KILLS);
      // The kills happened while work was being done, and mostly with a job in the killed worker's hands.
      expect(grown, `seed ${seed}`).toBeGreaterThan(0);
      expect(kills.filter((k) => k.appended > 0).length, `seed ${seed}: kills of a worker that appended`).toBeGreaterThanOrEqual(Math.ceil(kills.length / 2));
      expect(kills.filter((k) => k.ownJob).length, `seed ${seed}: kills with the worker's job active`).toBeGreaterThan(kills.length / 2);

      // --- one last worker, in process, as the CLI's (same key store): drains the queue, catches the graph up
      await pipeline.start({ lockDurationMs: 2000, keyStore: keyStoreOf(config) });
      await waitUntilIdle(pipeline.queue, 120_000);
      console.log(`kill-under-load: drained at ${elapsed()}`);

      // How often jobs were taken back from a killed worker (BullMQ's `stalled` events).
      const stalls = [...stalled.values()];
      console.log(
        `kill-under-load: ${stalled.size} jobs taken back; taken back from a killed worker once: ${stalls.filter((n) => n === 1).length}, ` +
          `twice or more: ${stalls.filter((n) => n >= 2).length} (at most ${Math.max(0, ...stalls)} times)`,
      );
      expect(
        stalls.some((n) => n > 0),
        `seed ${seed}: no job was ever taken back from a killed worker`,
      ).toBe(true);
      const failed = await pipeline.queue.getJobs(["failed"]);
      const inFailedJobs = new Set(failed.flatMap((j) => ((j.data as { events?: { eventId: string }[] }).events ?? []).map((e) => e.eventId)));
      expect
        .soft(
          failed.map(
            (j) =>
              `job ${j.id} (${(j.data as { events?: unknown[] }).events?.length} events, ${j.attemptsMade} attempts, stalled ${j.stalledCounter}): ${j.failedReason}`,
          ),
          `seed ${seed}: jobs failed for good (BullMQ never runs them again: their events are lost unless a killed worker appended them first)`,
        )
        .toEqual([]);

      // --- the ledger: exactly the captured events, each once; the chain verifies
      const capturedIds = captured.map((c) => c.eventId).sort();
      expect(new Set(capturedIds).size).toBe(capturedIds.length);
      const records = await readAll(pipeline.ledger);
      const ledgerIds = records.map((r) => r.event.eventId).sort();
      const inLedger = new Set(ledgerIds);
      const missing = capturedIds.filter((id) => !inLedger.has(id));
      const capturedSet = new Set(capturedIds);
      const extra = ledgerIds.filter((id, i) => ledgerIds[i - 1] === id || !capturedSet.has(id));
      if (missing.length > 0 || inFailedJobs.size > 0)
        console.log(
          `kill-under-load: ${missing.length} captured events not in the ledger, ${missing.filter((id) => inFailedJobs.has(id)).length} of them in failed jobs; ` +
            `${inFailedJobs.size} events in failed jobs, ${[...inFailedJobs].filter((id) => inLedger.has(id)).length} of those in the ledger anyway (appended before a kill)`,
        );
      expect
        .soft({ missing: missing.length, extraOrRepeated: extra.length }, `seed ${seed}: missing ${missing.slice(0, 5)}; extra ${extra.slice(0, 5)}`)
        .toEqual({
          missing: 0,
          extraOrRepeated: 0,
        });
      expect
        .soft(ledgerIds.length === capturedIds.length && ledgerIds.every((id, i) => id === capturedIds[i]), `seed ${seed}: ledger ids = captured ids`)
        .toBe(true);
      expect.soft(await pipeline.ledger.verify(), `seed ${seed}`).toMatchObject({ ok: true, count: ledgerIds.length });
      const position = new Map(records.map((r) => [r.event.eventId, { streamId: r.streamId, position: r.position }]));

      // --- the graph: every trace once, each with the nodes its events make, none twice
      interface Expected {
        traceId: string;
        tenantId: string;
        llmCalls: Set<string>;
        prompts: string[];
        outputs: string[];
        toolCalls: Set<string>;
        steps: number;
        rooted: boolean;
        ended: boolean;
      }
      const traces = new Map<string, Expected>();
      for (const c of captured) {
        let t = traces.get(c.traceId);
        if (!t)
          traces.set(
            c.traceId,
            (t = {
              traceId: c.traceId,
              tenantId: c.tenantId,
              llmCalls: new Set(),
              prompts: [],
              outputs: [],
              toolCalls: new Set(),
              steps: 0,
              rooted: false,
              ended: false,
            }),
          );
        if (c.type.startsWith("llm.")) t.llmCalls.add(c.runId);
        if (c.type === "llm.start") t.prompts.push(c.eventId);
        if (c.type === "llm.end") {
          t.outputs.push(c.eventId);
          t.steps += c.steps;
        }
        if (c.type === "tool.start") t.toolCalls.add(c.callId ?? c.runId);
        if (c.type === "chain.start" && c.parentRunId === null && c.runId === c.traceId) t.rooted = true;
        if (c.type === "chain.end" && c.parentRunId === null && c.runId === c.traceId) t.ended = true;
      }
      const expected = [...traces.values()];
      // Every trace is a whole run of the demo agent (3 model calls, 2 tool calls): a sanity check of the expectations.
      expect(expected.filter((t) => !t.rooted || !t.ended || t.prompts.length !== 3 || t.outputs.length !== 3 || t.toolCalls.size !== 2)).toEqual([]);

      const rows = await pipeline.graph.read(
        `UNWIND $traces AS x
         MATCH (t:Trace {tenantId: x.tenantId, id: x.traceId})
         CALL (t) {
           OPTIONAL MATCH (t)<-[r:PART_OF]-(c:LLMCall)
           RETURN count(r) AS llmRels, count(DISTINCT c) AS llmCalls, count(DISTINCT c.id) AS llmIds, collect(DISTINCT c.status) AS llmStatus
         }
         CALL (t) {
           OPTIONAL MATCH (t)<-[:PART_OF]-(:LLMCall)<-[r:INPUT_TO]-(p:Prompt)
           RETURN count(r) AS promptRels, collect(DISTINCT [p.id, p.streamId, p.position]) AS prompts
         }
         CALL (t) {
           OPTIONAL MATCH (t)<-[:PART_OF]-(:LLMCall)-[r:GENERATED]->(o:Output)
           RETURN count(r) AS outputRels, collect(DISTINCT [o.id, o.streamId, o.position]) AS outputs
         }
         CALL (t) {
           OPTIONAL MATCH (t)<-[r:PART_OF]-(x:ToolCall)
           RETURN count(r) AS toolRels, count(DISTINCT x) AS toolCalls, collect(DISTINCT x.callId) AS callIds, collect(DISTINCT x.status) AS toolStatus
         }
         CALL (t) {
           OPTIONAL MATCH (t)<-[:PART_OF]-(:LLMCall)<-[r:STEP_OF]-(s:ReasoningStep)
           RETURN count(r) AS stepRels, count(DISTINCT s) AS steps
         }
         RETURN t.id AS traceId, t.tenantId AS tenantId, t.status AS status, llmRels, llmCalls, llmIds, llmStatus,
                promptRels, prompts, outputRels, outputs, toolRels, toolCalls, callIds, toolStatus, stepRels, steps`,
        { traces: expected.map((t) => ({ tenantId: t.tenantId, traceId: t.traceId })) },
      );
      const seen = new Map<string, number>();
      for (const row of rows) seen.set(row.traceId as string, (seen.get(row.traceId as string) ?? 0) + 1);
      expect.soft({ traces: rows.length, distinct: seen.size, twice: [...seen.values()].filter((n) => n > 1).length }, `seed ${seed}`).toEqual({
        traces: expected.length,
        distinct: expected.length,
        twice: 0,
      });
      const byTrace = new Map(rows.map((r) => [r.traceId as string, r]));
      const wrong: string[] = [];
      const at = (id: string) => {
        const p = position.get(id);
        return p ? [id, p.streamId, p.position] : [id, "not in the ledger", -1];
      };
      const sortRows = (xs: unknown[][]) => [...xs].map((x) => JSON.stringify(x)).sort();
      for (const t of expected) {
        const row = byTrace.get(t.traceId);
        if (!row) {
          wrong.push(`${t.traceId}: no Trace node`);
          continue;
        }
        const got = {
          status: row.status,
          llmCalls: [row.llmRels, row.llmCalls, row.llmIds],
          llmStatus: row.llmStatus,
          promptRels: row.promptRels,
          prompts: sortRows(row.prompts as unknown[][]),
          outputRels: row.outputRels,
          outputs: sortRows(row.outputs as unknown[][]),
          toolCalls: [row.toolRels, row.toolCalls],
          callIds: [...(row.callIds as string[])].sort(),
          toolStatus: row.toolStatus,
          steps: [row.stepRels, row.steps],
        };
        const want = {
          status: "ok",
          llmCalls: [t.llmCalls.size, t.llmCalls.size, t.llmCalls.size],
          llmStatus: ["ok"],
          promptRels: t.prompts.length,
          // Each Prompt / Output node carries the ledger place of its event: projected from this ledger, once.
          prompts: sortRows(t.prompts.map(at)),
          outputRels: t.outputs.length,
          outputs: sortRows(t.outputs.map(at)),
          toolCalls: [t.toolCalls.size, t.toolCalls.size],
          callIds: [...t.toolCalls].sort(),
          toolStatus: ["ok"],
          steps: [t.steps, t.steps],
        };
        if (JSON.stringify(got) !== JSON.stringify(want)) wrong.push(`${t.traceId}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
      }
      expect.soft(wrong.slice(0, 5), `seed ${seed}: ${wrong.length} traces wrong in the graph`).toEqual([]);

      // No node of the tenants twice, and none beyond what the captured events make.
      const totals = await pipeline.graph.read(
        `UNWIND $tenants AS tenantId
         CALL (tenantId) { MATCH (n:Trace {tenantId: tenantId}) RETURN count(n) AS traces, count(DISTINCT n.id) AS traceIds }
         CALL (tenantId) { MATCH (n:LLMCall {tenantId: tenantId}) RETURN count(n) AS llmCalls, count(DISTINCT n.id) AS llmIds }
         CALL (tenantId) { MATCH (n:Prompt {tenantId: tenantId}) RETURN count(n) AS prompts, count(DISTINCT n.id) AS promptIds }
         CALL (tenantId) { MATCH (n:Output {tenantId: tenantId}) RETURN count(n) AS outputs, count(DISTINCT n.id) AS outputIds }
         CALL (tenantId) { MATCH (n:ToolCall {tenantId: tenantId}) RETURN count(n) AS toolCalls, count(DISTINCT [n.traceId, n.callId]) AS toolKeys }
         CALL (tenantId) { MATCH (n:ReasoningStep {tenantId: tenantId}) RETURN count(n) AS steps, count(DISTINCT n.id) AS stepIds }
         RETURN tenantId, traces, traceIds, llmCalls, llmIds, prompts, promptIds, outputs, outputIds, toolCalls, toolKeys, steps, stepIds`,
        { tenants },
      );
      for (const tenantId of tenants) {
        const mine = expected.filter((t) => t.tenantId === tenantId);
        const sum = (f: (t: Expected) => number) => mine.reduce((n, t) => n + f(t), 0);
        const row = totals.find((r) => r.tenantId === tenantId);
        const n = mine.length;
        const [llm, prompts, outputs, tools, steps] = [
          sum((t) => t.llmCalls.size),
          sum((t) => t.prompts.length),
          sum((t) => t.outputs.length),
          sum((t) => t.toolCalls.size),
          sum((t) => t.steps),
        ];
        expect.soft(row, `seed ${seed}: tenant ${tenantId}`).toEqual({
          tenantId,
          traces: n,
          traceIds: n,
          llmCalls: llm,
          llmIds: llm,
          prompts,
          promptIds: prompts,
          outputs,
          outputIds: outputs,
          toolCalls: tools,
          toolKeys: tools,
          steps,
          stepIds: steps,
        });
      }

      // Each stream's projection cursor stands on the ledger's last record.
      for (const streamId of await pipeline.ledger.streams()) {
        const last = records.filter((r) => r.streamId === streamId).reduce((a, b) => (b.position > a.position ? b : a));
        expect
          .soft(await pipeline.graph.cursors(streamId), `seed ${seed}`)
          .toEqual([{ ledgerId: await pipeline.ledger.id(), streamId, position: last.position, hash: last.hash }]);
      }
      console.log(`kill-under-load: ${expected.length} traces, ${captured.length} events checked in ledger and graph; done at ${elapsed()}`);
    } finally {
      if (child && child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      stopAgents = true;
      await agentLoops.catch(() => undefined);
      for (const r of recorders) await r.close().catch(() => undefined);
      for (const tenantId of tenants) await pipeline.graph.deleteProjection({ tenantId }).catch(() => undefined);
      await pipeline.stop();
    }
  }, 200_000);
});
