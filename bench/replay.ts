/**
 * Replay harness overhead: replaying N recorded traces through a candidate (`replaySnapshot`:
 * opening each trace, rebuilding its input, serving the recorded tool results, capturing the run
 * with the audit handler, summarising it) against running the same candidate over the same
 * inputs directly, with the same audit handler and its real tools. Both sides send their events
 * to one in-process sink (no Redis): the transport is measured by bench/capture-overhead.ts, and
 * here it would only add noise common to both.
 *
 * The candidate is a real LangChain agent (createAgent) with a scripted fake model: look up,
 * multiply, answer. Rounds alternate which side goes first, so drift hits both alike.
 * Goal: replay / direct < 1.10.
 *
 * Run: npm run bench:replay. Options: BENCH_REPLAY_TRACES (default 200), BENCH_REPLAY_ROUNDS (5).
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AIMessage, ToolMessage, type BaseMessage } from "@langchain/core/messages";
import { fakeModel } from "@langchain/core/testing";
import { tool, type StructuredToolInterface } from "@langchain/core/tools";
import type { BaseChatModel } from "@langchain/core/language_models/chat_models";
import { createAgent } from "langchain";
import { z } from "zod";
import { streamIdFor, type AuditEvent } from "@auditgraph/core";
import { AuditCallbackHandler, type Transport } from "@auditgraph/langchain";
import { CheckpointSigner, SegmentLedger, generateSigningKey } from "@auditgraph/ledger";
import { createSnapshot, openTrace, originalContext, originalInput, replaySnapshot, type CandidateContext } from "@auditgraph/replay";
import { runIfMain, stats, table, type Stats } from "./common.js";

class Sink implements Transport {
  count = 0;
  events: AuditEvent[] = [];
  constructor(private readonly keep = false) {}
  send(event: AuditEvent) {
    this.count++;
    if (this.keep) this.events.push(event);
  }
  async flush() {}
  async close() {}
}

const PRICES: Record<string, number> = { A: 1.5, B: 20, C: 349.99, D: 7 };
const lookup = tool(({ sku }) => JSON.stringify({ sku, priceEur: PRICES[sku] ?? 1 }), {
  name: "catalog_lookup",
  description: "price by SKU",
  schema: z.object({ sku: z.string() }),
});
const calculator = tool(({ a, b }) => String(Math.round(a * b * 100) / 100), {
  name: "calculator",
  description: "multiplies",
  schema: z.object({ a: z.number(), b: z.number() }),
});

const lastTool = (m: BaseMessage[]) => [...m].reverse().find((x) => ToolMessage.isInstance(x))!.text;
const ask = (m: BaseMessage[]) => {
  const [, n, sku] = /(\d+) x (\S+)/.exec(m.find((x) => x.type === "human")!.text)!;
  return { n: Number(n), sku: sku! };
};
const usage = { input_tokens: 10, output_tokens: 5, total_tokens: 15 };
function model() {
  return fakeModel()
    .respond(
      (m) =>
        new AIMessage({ content: "", usage_metadata: usage, tool_calls: [{ id: "c1", name: "catalog_lookup", args: { sku: ask(m).sku }, type: "tool_call" }] }),
    )
    .respond((m) => {
      const { priceEur } = JSON.parse(lastTool(m)) as { priceEur: number };
      return new AIMessage({
        content: "",
        usage_metadata: usage,
        tool_calls: [{ id: "c2", name: "calculator", args: { a: ask(m).n, b: priceEur }, type: "tool_call" }],
      });
    })
    .respond((m) => new AIMessage({ content: `Total for ${ask(m).sku}: ${lastTool(m)} EUR.`, usage_metadata: usage }));
}
const agentOf = (ctx?: CandidateContext) =>
  createAgent({
    model: (ctx?.model ?? model()) as BaseChatModel,
    tools: ctx ? ctx.tools([lookup, calculator]) : ([lookup, calculator] as StructuredToolInterface[]),
    systemPrompt: "Order assistant.",
  });

const AGENT = { id: "bench-orders", name: "Bench orders", version: "1.0.0" };
const CANDIDATE = { ...AGENT, version: "2.0.0" };

export interface ReplayBenchResult {
  traces: number;
  rounds: number;
  directMs: Stats;
  replayMs: Stats;
  /** Median replay time over median direct time. */
  ratio: number;
}

export async function runReplayBenchmark({
  traces = 200,
  rounds = 5,
  log = console.log,
}: {
  traces?: number;
  rounds?: number;
  log?: (s: string) => void;
} = {}): Promise<ReplayBenchResult> {
  const dir = await mkdtemp(join(tmpdir(), "auditgraph-bench-replay-"));
  try {
    const keys = generateSigningKey();
    const ledger = new SegmentLedger(join(dir, "ledger"), { signer: new CheckpointSigner(keys.privateKeyPem) });
    const tenantId = "bench-replay";
    const recording = new Sink(true);
    const recorder = new AuditCallbackHandler({ agent: AGENT }, recording);
    const skus = Object.keys(PRICES);
    for (let i = 0; i < traces; i++) {
      await agentOf().invoke(
        { messages: [{ role: "user", content: `What do ${1 + (i % 9)} x ${skus[i % skus.length]} cost?` }] },
        { callbacks: [recorder], metadata: { auditgraph_user_id: `u${i % 17}`, auditgraph_tenant_id: tenantId } },
      );
    }
    await ledger.append(streamIdFor(tenantId), recording.events as never);
    const snapshot = await createSnapshot(ledger, { tenantId });
    await ledger.close();
    log(`replay bench: ${snapshot.manifest.traceCount} traces, ${snapshot.manifest.recordCount} records recorded`);
    // The direct side gets its inputs ready-made: rebuilding them is part of what replay costs.
    const inputs = await Promise.all(
      snapshot.traces.map(async (t) => {
        const trace = await openTrace(t);
        return { input: originalInput(trace), who: originalContext(trace) };
      }),
    );

    const direct = async () => {
      const handler = new AuditCallbackHandler({ agent: CANDIDATE }, new Sink());
      const started = performance.now();
      for (const { input, who } of inputs) {
        await agentOf().invoke(input as never, { callbacks: [handler], metadata: { auditgraph_user_id: who.userId, auditgraph_tenant_id: who.tenantId } });
      }
      return performance.now() - started;
    };
    const replay = async () => {
      const started = performance.now();
      const { results } = await replaySnapshot({
        snapshot,
        agent: (ctx) => agentOf(ctx),
        handlerOptions: { agent: CANDIDATE },
        transport: new Sink(),
        concurrency: 1,
      });
      const elapsed = performance.now() - started;
      if (results.some((r) => r.error || r.divergences.length))
        throw new Error("replay bench: the candidate diverged from the recording; the comparison would be meaningless");
      return elapsed;
    };
    await direct();
    await replay();
    const directMs: number[] = [];
    const replayMs: number[] = [];
    for (let round = 0; round < rounds; round++) {
      if (round % 2 === 0) directMs.push(await direct()), replayMs.push(await replay());
      else replayMs.push(await replay()), directMs.push(await direct());
      log(`round ${round + 1}/${rounds}: direct ${directMs.at(-1)!.toFixed(0)} ms, replay ${replayMs.at(-1)!.toFixed(0)} ms`);
    }
    const d = stats(directMs);
    const r = stats(replayMs);
    return { traces: snapshot.manifest.traceCount, rounds, directMs: d, replayMs: r, ratio: r.p50 / d.p50 };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export function formatReport(result: ReplayBenchResult): string {
  const row = (name: string, s: Stats) => [name, s.p50.toFixed(1), s.min.toFixed(1), s.max.toFixed(1), (s.p50 / result.traces).toFixed(2)];
  return [
    table(["side", "p50 ms", "min ms", "max ms", "ms/trace"], [row("direct", result.directMs), row("replay", result.replayMs)]),
    `goals: replay / direct = ${result.ratio.toFixed(3)} (goal < 1.10: ${result.ratio < 1.1 ? "met" : "NOT met"})`,
  ].join("\n");
}

async function main() {
  const result = await runReplayBenchmark({ traces: Number(process.env.BENCH_REPLAY_TRACES ?? 200), rounds: Number(process.env.BENCH_REPLAY_ROUNDS ?? 5) });
  console.log(formatReport(result));
}

runIfMain(import.meta.url, main);
