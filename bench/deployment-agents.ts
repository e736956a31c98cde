/**
 * Child process of bench/deployment.ts: one agent process of the deployment, `loops` concurrent
 * agent loops, each running the demo agent (`createAgent`, the scripted `fakeModel`, the two real
 * tools) again and again with the real `AuditCallbackHandler` and a `QueueTransport` configured
 * from the environment alone (AUDITGRAPH_REDIS_URL, AUDITGRAPH_QUEUE, AUDITGRAPH_SPOOL_DIR,
 * AUDITGRAPH_SHARDS: the same variables the workers read), as an application would configure it.
 *
 * The fake model answers in BENCH_DEPLOY_MODEL_MS (`200-800`: a uniform random delay per call,
 * between the llm.start and llm.end callbacks, as a provider's round trip would be), so a loop
 * offers about 30 events per 3 model calls and the process's rate is set by its loop count.
 *
 * Protocol, one JSON line each way: it prints `{"ready":true}` once loaded; reads
 * `{"until":<epoch ms>}` on stdin and runs until then; prints `{"captured":n,"runs":n}` every
 * second; at the end flushes the transport, waits until what it spooled is forwarded to Redis, and
 * prints `{"done":true,...}` with its counts, when its runs ended, its CPU over the load and the
 * sampled events (`[eventId, capture epoch ms]`, one in `sampleEvery`).
 */
import { createInterface } from "node:readline";
import { FakeBuiltModel } from "@langchain/core/testing";
import { AuditCallbackHandler, QueueTransport, tapTransport } from "@auditgraph/langchain";
import { DEMO_IDENTITY } from "@auditgraph/cli";
import { benchAgent, benchInput } from "./agent.js";

interface ChildConfig {
  tenants: string[];
  loops: number;
  modelMinMs: number;
  modelMaxMs: number;
  sampleEvery: number;
  index: number;
}

const config = JSON.parse(process.env.BENCH_DEPLOY_CHILD ?? "null") as ChildConfig | null;
if (!config) throw new Error("BENCH_DEPLOY_CHILD is not set: this file is started by bench/deployment.ts");

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
// Resolves once written: the last line is large, and a pipe write may still be pending at exit.
const out = (message: unknown) => new Promise<void>((resolve) => process.stdout.write(`${JSON.stringify(message)}\n`, () => resolve()));

// The model's latency. Every agent builds its own fake model (its response queue lasts one run), and
// `bindTools` makes another instance, so the delay goes on the class: this process runs nothing else.
const generate = FakeBuiltModel.prototype._generate;
FakeBuiltModel.prototype._generate = async function paced(this: FakeBuiltModel, ...args: Parameters<FakeBuiltModel["_generate"]>) {
  await sleep(config.modelMinMs + Math.random() * (config.modelMaxMs - config.modelMinMs));
  return generate.apply(this, args);
};

const inner = new QueueTransport({ maxBuffered: 100_000 });
let captured = 0;
const sampled: [string, number][] = [];
const transport = tapTransport(inner, (event) => {
  if (++captured % config.sampleEvery === 0) sampled.push([event.eventId, Date.now()]);
});
const handler = new AuditCallbackHandler({ agent: DEMO_IDENTITY.agent, user: DEMO_IDENTITY.user }, transport);

let runs = 0;
let failures = 0;
let firstFailure: string | undefined;

async function loop(i: number, until: number): Promise<void> {
  const tenantId = config!.tenants[i % config!.tenants.length]!;
  const user = `user-${config!.index}-${i}`;
  while (Date.now() < until) {
    try {
      await benchAgent().invoke(benchInput(), {
        callbacks: [handler],
        metadata: { auditgraph_user_id: user, auditgraph_tenant_id: tenantId, auditgraph_session_id: `s-${config!.index}-${i}` },
      });
      runs += 1;
    } catch (error) {
      failures += 1;
      firstFailure ??= error instanceof Error ? error.message : String(error);
    }
  }
}

const lines = createInterface({ input: process.stdin });
await out({ ready: true });
for await (const line of lines) {
  const { until } = JSON.parse(line) as { until: number };
  const cpu0 = process.cpuUsage();
  const ticker = setInterval(() => void out({ captured, runs }), 1000);
  // Loops start spread over one model delay, as requests arriving at a service would.
  await Promise.all(
    Array.from({ length: config.loops }, async (_, i) => {
      await sleep(Math.random() * config.modelMaxMs);
      await loop(i, until);
    }),
  );
  const runsEndedAt = Date.now();
  await transport.flush();
  // Batches a slow Redis send put in the spool go to Redis once a probe finds it again: wait for
  // that here, as a long-lived application would, instead of leaving them for a next process.
  const forwardBy = Date.now() + 120_000;
  while (inner.metrics.forwarded < inner.metrics.spooled && Date.now() < forwardBy) await sleep(100);
  clearInterval(ticker);
  const cpu = process.cpuUsage(cpu0);
  await out({
    done: true,
    captured,
    runs,
    failures,
    firstFailure,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    runsEndedAt,
    transport: {
      spooled: inner.metrics.spooled,
      forwarded: inner.metrics.forwarded,
      dropped: inner.metrics.dropped,
      sendFailures: inner.metrics.sendFailures,
    },
    sampled,
  });
  break;
}
lines.close();
await transport.close();
process.exit(0);
