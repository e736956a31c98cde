import { randomUUID } from "node:crypto";
import { appendFile, mkdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { z } from "zod";
import { AuditgraphError, type AuditEvent, type SubjectKeyStore } from "@auditgraph/core";
import { AuditCallbackHandler, METADATA_KEYS, type HandlerOptions, type Transport } from "@auditgraph/langchain";
import type { BaseChatModel } from "@langchain/core/language_models/chat_models";
import type { StructuredToolInterface } from "@langchain/core/tools";
import type { Snapshot } from "./snapshot.js";
import { DivergenceSchema, recordedModel, recordedTools, type Divergence } from "./tools.js";
import { TraceSummarySchema, openTrace, originalContext, originalInput, summarise, type RecordedTrace } from "./trace.js";

/** Metadata key naming the trace a replay run replays; also put on the run's tags as `REPLAY_TAG_PREFIX + traceId`. */
export const REPLAY_OF_KEY = "auditgraph_replay_of";
/** Tags reach every event of the run through the handler unchanged, so the projection can link the two traces. */
export const REPLAY_TAG_PREFIX = "auditgraph:replay-of:";

/** What the candidate factory is given for one trace. */
export interface CandidateContext {
  trace: RecordedTrace;
  /** Route the agent's tools through this: recorded results by default, the tools themselves with live tools. */
  tools(live: readonly StructuredToolInterface[]): StructuredToolInterface[];
  /** In a control run: the recorded model, which the original agent must use instead of its own. */
  model?: BaseChatModel;
}

/** Anything with LangChain's `invoke(input, config)`: a runnable, an agent, a compiled graph. */
export interface Invokable {
  invoke(input: never, config?: Record<string, unknown>): Promise<unknown>;
}

export type CandidateFactory = (context: CandidateContext) => Invokable | Promise<Invokable>;

export const TraceResultSchema = z.object({
  originalTraceId: z.string(),
  replayTraceId: z.string(),
  original: TraceSummarySchema,
  candidate: TraceSummarySchema,
  divergences: z.array(DivergenceSchema),
  /** The candidate's run failed (a divergence with onMismatch `fail` among the reasons). */
  error: z.string().optional(),
  /** Control runs: whether the trace was reproduced exactly (tool trajectory and final output). */
  reproduced: z.boolean().optional(),
});
export type TraceResult = z.infer<typeof TraceResultSchema>;

export interface ReplayOptions {
  snapshot: Snapshot;
  keyStore?: Pick<SubjectKeyStore, "byId">;
  agent: CandidateFactory;
  /** The candidate's handler options: its agent identity (version) above all. */
  handlerOptions: HandlerOptions;
  /** Where the replay runs' events go (a QueueTransport to the worker); a copy is kept for the review. */
  transport: Transport;
  concurrency?: number;
  tools?: "recorded" | "live";
  onMismatch?: "fail" | "live";
  /** Replay the original agent with the recorded model outputs: it must reproduce every trace. */
  control?: boolean;
  /** Results are appended here one per line as each trace finishes; traces already in it are skipped. */
  outDir?: string;
  onProgress?: (done: number, total: number, result?: TraceResult) => void;
}

export interface ReplayResult {
  results: TraceResult[];
  /** Traces found done in `outDir` and not run again. */
  skipped: number;
}

/** Keeps each event of the replay runs, by trace, on its way to the real transport. */
class TeeTransport implements Transport {
  readonly byTrace = new Map<string, AuditEvent[]>();
  constructor(private readonly inner: Transport) {}
  send(event: AuditEvent): void {
    let list = this.byTrace.get(event.traceId);
    if (!list) this.byTrace.set(event.traceId, (list = []));
    list.push(event);
    this.inner.send(event);
  }
  expedite(event: AuditEvent): void {
    this.inner.expedite?.(event);
  }
  flush(): Promise<void> {
    return this.inner.flush();
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

export const RESULTS_FILE = "results.jsonl";

export async function readResults(outDir: string): Promise<TraceResult[]> {
  const text = await readFile(join(outDir, RESULTS_FILE), "utf8").catch(() => "");
  const out: TraceResult[] = [];
  for (const line of text.split("\n")) {
    // A torn last line (the run was killed mid-write) is that trace not done: it runs again.
    if (!line.trim()) continue;
    const parsed = TraceResultSchema.safeParse(
      (() => {
        try {
          return JSON.parse(line);
        } catch {
          return undefined;
        }
      })(),
    );
    if (parsed.success) out.push(parsed.data);
  }
  return out;
}

const reproduces = (a: TraceResult["original"], b: TraceResult["candidate"]) =>
  a.finalOutput === b.finalOutput && JSON.stringify(a.tools) === JSON.stringify(b.tools);

/**
 * Runs the candidate over every trace of the snapshot, captured by the audit handler as a new
 * trace linked to the original (metadata `auditgraph_replay_of` and the tag), for the same user
 * and session. Resumable: with `outDir`, traces already done there are skipped.
 */
export async function replaySnapshot(options: ReplayOptions): Promise<ReplayResult> {
  const concurrency = options.concurrency ?? 4;
  if (!Number.isInteger(concurrency) || concurrency < 1)
    throw new AuditgraphError("AUDITGRAPH_E_REPLAY_CONCURRENCY", `concurrency must be a positive integer, got ${concurrency}`);
  const tee = new TeeTransport(options.transport);
  const handler = new AuditCallbackHandler(options.handlerOptions, tee);
  const done = options.outDir ? await readResults(options.outDir) : [];
  const doneIds = new Set(done.map((r) => r.originalTraceId));
  if (options.outDir) await mkdir(options.outDir, { recursive: true });
  const todo = options.snapshot.traces.filter((t) => !doneIds.has(t.traceId));
  const total = options.snapshot.traces.length;
  const results: TraceResult[] = [...done];
  let finished = done.length;
  options.onProgress?.(finished, total);

  const runOne = async (snapshotTrace: Snapshot["traces"][number]): Promise<TraceResult> => {
    const trace = await openTrace(snapshotTrace, options.keyStore);
    const divergences: Divergence[] = [];
    const recorded = options.tools !== "live";
    const context: CandidateContext = {
      trace,
      tools: (live) => (recorded ? recordedTools(trace, live, { onMismatch: options.onMismatch ?? "fail", divergences }) : [...live]),
      ...(options.control ? { model: recordedModel(trace) } : {}),
    };
    const agent = await options.agent(context);
    const replayTraceId = randomUUID();
    const who = originalContext(trace);
    let error: string | undefined;
    try {
      await agent.invoke(originalInput(trace) as never, {
        runId: replayTraceId,
        callbacks: [handler],
        tags: [`${REPLAY_TAG_PREFIX}${trace.traceId}`],
        metadata: {
          [REPLAY_OF_KEY]: trace.traceId,
          ...(who.userId ? { [METADATA_KEYS.userId]: who.userId } : {}),
          ...(who.tenantId ? { [METADATA_KEYS.tenantId]: who.tenantId } : {}),
          ...(who.sessionId ? { [METADATA_KEYS.sessionId]: who.sessionId } : {}),
        },
      });
    } catch (e) {
      error = (e as Error).message;
    }
    // Agents often turn a tool's error into a message to the model (createAgent's ToolNode does):
    // the trace still failed, whatever the agent made of it.
    const refused = divergences.find((d) => d.resolution === "failed");
    if (error === undefined && refused) error = `divergence: tool ${refused.tool} called with ${refused.args}, no recorded result`;
    const original = summarise(trace.traceId, trace.events);
    const candidate = summarise(replayTraceId, tee.byTrace.get(replayTraceId) ?? []);
    tee.byTrace.delete(replayTraceId);
    return {
      originalTraceId: trace.traceId,
      replayTraceId,
      original,
      candidate,
      divergences,
      ...(error !== undefined ? { error } : {}),
      ...(options.control ? { reproduced: error === undefined && reproduces(original, candidate) } : {}),
    };
  };

  let next = 0;
  const worker = async () => {
    while (next < todo.length) {
      const trace = todo[next++]!;
      const result = await runOne(trace);
      if (options.outDir) await appendFile(join(options.outDir, RESULTS_FILE), `${JSON.stringify(result)}\n`);
      results.push(result);
      options.onProgress?.(++finished, total, result);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, Math.max(todo.length, 1)) }, worker));
  await tee.flush();
  const order = new Map(options.snapshot.traces.map((t, i) => [t.traceId, i]));
  results.sort((a, b) => (order.get(a.originalTraceId) ?? 0) - (order.get(b.originalTraceId) ?? 0));
  return { results, skipped: done.length };
}
