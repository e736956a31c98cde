import { execFile } from "node:child_process";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { randomUUID } from "node:crypto";
import { Writable } from "node:stream";
import { pino } from "pino";
import { Queue } from "bullmq";
import { Graph } from "@auditgraph/graph";
import { SegmentLedger } from "@auditgraph/ledger";
import { AuditWorker, RedisPolicyState, loadWorkerPolicies, type AuditWorkerOptions } from "@auditgraph/worker";
import { loadConfig, type Config } from "@auditgraph/cli";

/**
 * A config of its own for one test: the real Redis and Neo4j of the environment, with a queue
 * and a ledger directory nobody else uses, so test files can run side by side.
 */
export async function isolatedConfig(): Promise<Config> {
  const base = loadConfig();
  const root = await mkdtemp(join(tmpdir(), "auditgraph-test-"));
  return {
    ...base,
    queueName: `test-${randomUUID().slice(0, 8)}`,
    ledgerDir: join(root, "ledger"),
    spoolDir: join(root, "spool"),
  };
}

/**
 * The stores and queue of one config, with an in-process worker on its queue (started now, or
 * later with `start`); everything it opened is closed by `stop`.
 */
export async function startPipeline(config: Config, { start = true } = {}) {
  const graph = new Graph(config.neo4j);
  await graph.migrate();
  const ledger = new SegmentLedger(config.ledgerDir);
  const queue = new Queue(config.queueName, { connection: config.redis });
  let worker: AuditWorker | undefined;
  const pipeline = {
    graph,
    ledger,
    queue,
    get worker() {
      return worker;
    },
    async start(options: Omit<AuditWorkerOptions, "connection" | "queueName" | "ledger" | "graph"> = {}) {
      worker = new AuditWorker({ connection: config.redis, queueName: config.queueName, ledger, graph, ...options });
      await worker.waitUntilReady();
    },
    async stop() {
      await worker?.close();
      await queue.obliterate({ force: true }).catch(() => undefined);
      await queue.close();
      await graph.close();
    },
  };
  if (start) await pipeline.start();
  return pipeline;
}

/**
 * `startPipeline` with a worker that evaluates the default policies, its policy state under the
 * test's own Redis prefix, and any other worker options (a notifier, high-impact tools).
 */
export async function startPolicyPipeline(
  config: Config,
  tag: string,
  options: Omit<AuditWorkerOptions, "connection" | "queueName" | "ledger" | "graph"> = {},
) {
  const pipeline = await startPipeline(config, { start: false });
  await pipeline.start({
    policies: await loadWorkerPolicies(undefined),
    policyState: new RedisPolicyState({ redis: config.redis, prefix: `test:${tag}:` }),
    ...options,
  });
  return { ...pipeline, worker: pipeline.worker! };
}

export async function readAll(ledger: SegmentLedger) {
  const out = [];
  for (const stream of await ledger.streams()) for await (const r of ledger.readStream(stream)) out.push(r);
  return out;
}

import { SCHEMA_VERSION, isSealed, lockDir, newEventId, type LedgerRecord, type PlainRecord, type UserEvent } from "@auditgraph/core";

/** Records of a ledger written without a key store, with their events in the clear; throws on a sealed one. */
export function inClear(records: LedgerRecord[]): PlainRecord[] {
  return records.map((r) => {
    if (isSealed(r.event)) throw new Error(`record ${r.position} of stream ${r.streamId} is sealed`);
    return { ...r, event: r.event };
  });
}

/** A small valid trace (root chain, one model call, one tool call) for a fresh tenant. */
export function sampleTrace(tenantId = `t-${randomUUID().slice(0, 8)}`): UserEvent[] {
  const traceId = randomUUID();
  const llmRun = randomUUID();
  const toolRun = randomUUID();
  const identity = { user: { id: "u1", tenantId }, agent: { id: "agent-t", name: "Test agent", version: "0.1.0" } };
  const common = { schemaVersion: SCHEMA_VERSION, traceId, sessionId: "s1", identity } as const;
  const at = () => ({ eventId: newEventId(), occurredAt: new Date().toISOString() });
  const messages = [{ role: "user", content: "add 1 and 2" }];
  const model = { provider: "fake", name: "fake-model", params: {} };
  return [
    { ...common, ...at(), type: "chain.start", runId: traceId, parentRunId: null, name: "agent", payload: { inputs: { q: "add" } } },
    { ...common, ...at(), type: "llm.start", runId: llmRun, parentRunId: traceId, model, payload: { messages } },
    {
      ...common,
      ...at(),
      type: "llm.end",
      runId: llmRun,
      parentRunId: traceId,
      model: { ...model, version: "fake-2026" },
      usage: { inputTokens: 5, outputTokens: 2, totalTokens: 7 },
      payload: {
        output: { text: "", toolCalls: [{ id: "c1", name: "add", args: { a: 1, b: 2 } }] },
        reasoning: [
          { index: 0, kind: "reasoning", text: "The user wants a sum; the add tool is exact." },
          { index: 1, kind: "tool_call", toolCall: { id: "c1", name: "add", args: { a: 1, b: 2 } } },
        ],
      },
    },
    { ...common, ...at(), type: "tool.start", runId: toolRun, parentRunId: traceId, name: "add", payload: { toolCallId: "c1", input: '{"a":1,"b":2}' } },
    { ...common, ...at(), type: "tool.end", runId: toolRun, parentRunId: traceId, name: "add", payload: { toolCallId: "c1", output: "3" } },
    { ...common, ...at(), type: "chain.end", runId: traceId, parentRunId: null, payload: { outputs: { answer: "3" } } },
  ] as UserEvent[];
}

/** Polls `check` until it returns a value other than undefined, or fails after `timeoutMs`. */
export async function eventually<T>(check: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The built `auditgraph` command. */
export const CLI_BIN = fileURLToPath(new URL("../packages/cli/bin/auditgraph.js", import.meta.url));

/** The environment that points the CLI at an isolated config's queue, ledger and spool. */
export const cliEnvOf = (config: Config): NodeJS.ProcessEnv => ({
  ...process.env,
  AUDITGRAPH_QUEUE: config.queueName,
  AUDITGRAPH_LEDGER_DIR: config.ledgerDir,
  AUDITGRAPH_SPOOL_DIR: config.spoolDir,
});

const execFileAsync = promisify(execFile);

/** Runs `auditgraph args...` with `env`: its exit code and what it printed (a failing command is an outcome, not a throw). */
export async function runCli(env: NodeJS.ProcessEnv, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await execFileAsync(process.execPath, [CLI_BIN, ...args], { env });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/** A pino logger that keeps its lines, for tests of what a component says (and what it must never say). */
export function capturedLogger() {
  const lines: string[] = [];
  const logger = pino({ level: "info" }, new Writable({ write: (chunk, _enc, done) => (lines.push(String(chunk)), done()) }));
  return { logger, lines, text: () => lines.join("") };
}

/**
 * Another writer holding `streamId`'s writer lock and never letting go (as one stuck mid-batch
 * would), after writing a first record there: appends to the stream wait, then time out. A
 * segment ledger's own idle lease would be handed over to a waiting writer at once. Returns the
 * release (once; later calls wait for that one).
 */
export async function holdStream(ledgerDir: string, streamId: string, first: UserEvent): Promise<() => Promise<void>> {
  const ledger = new SegmentLedger(ledgerDir);
  await ledger.append(streamId, [first]);
  await ledger.close();
  const release = await lockDir(join(ledgerDir, "streams", streamId), { name: "writer" });
  let released: Promise<void> | undefined;
  return () => (released ??= release());
}
