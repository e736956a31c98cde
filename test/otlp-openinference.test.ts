import { AsyncLocalStorage } from "node:async_hooks";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomUUID } from "node:crypto";
import { afterAll, describe, expect, it } from "vitest";
import { Queue } from "bullmq";
import { ROOT_CONTEXT, context, type Context, type ContextManager } from "@opentelemetry/api";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-proto";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { BasicTracerProvider, BatchSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { LangChainInstrumentation } from "@arizeai/openinference-instrumentation-langchain";
import { setUser } from "@arizeai/openinference-core";
import * as CallbackManagerModule from "@langchain/core/callbacks/manager";
import { awaitAllCallbacks } from "@langchain/core/callbacks/promises";
import { AIMessage } from "@langchain/core/messages";
import { fakeModel } from "@langchain/core/testing";
import { tool } from "@langchain/core/tools";
import { createAgent } from "langchain";
import { z } from "zod";
import type { AuditEvent, EventOf } from "@auditgraph/core";
import { Graph } from "@auditgraph/graph";
import { SegmentLedger } from "@auditgraph/ledger";
import { newOtlpToken } from "@auditgraph/otel";
import { AuditWorker, loadWorkerPolicies, startWorkerHttp, waitUntilIdle } from "@auditgraph/worker";
import { loadConfig } from "@auditgraph/cli";
import { inClear, readAll } from "./helpers.js";

/**
 * A real GenAI instrumentation driving a real agent: OpenInference's LangChain instrumentation
 * traces a LangChain agent (on a fake chat model, with a real tool) and the SDK's OTLP protobuf
 * exporter sends its spans to the worker's receiver; the events are read back from the ledger,
 * and the LLM calls and tool call from Neo4j after projection.
 */

/** The SDK's context manager for Node (AsyncLocalStorage), so that OpenInference's `setUser` reaches the spans. */
class AlsContextManager implements ContextManager {
  private readonly storage = new AsyncLocalStorage<Context>();
  active(): Context {
    return this.storage.getStore() ?? ROOT_CONTEXT;
  }
  with<A extends unknown[], F extends (...args: A) => ReturnType<F>>(ctx: Context, fn: F, thisArg?: ThisParameterType<F>, ...args: A): ReturnType<F> {
    return this.storage.run(ctx, () => fn.call(thisArg, ...args));
  }
  bind<T>(ctx: Context, target: T): T {
    if (typeof target !== "function") return target;
    return ((...args: unknown[]) => this.with(ctx, () => (target as (...a: unknown[]) => unknown)(...args))) as T;
  }
  enable(): this {
    return this;
  }
  disable(): this {
    this.storage.disable();
    return this;
  }
}

const cleanup: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  for (const step of cleanup.reverse()) await step().catch(() => undefined);
});

const weather = tool(({ city }) => `18°C and sunny in ${city}`, {
  name: "get_weather",
  description: "The weather in a city.",
  schema: z.object({ city: z.string() }),
});

const weatherModel = () =>
  fakeModel()
    .respond(() => new AIMessage({ content: "", tool_calls: [{ id: "call_oi_1", name: "get_weather", args: { city: "Paris" }, type: "tool_call" }] }))
    .respond(() => new AIMessage("It is 18°C and sunny in Paris."));

describe("OpenInference's LangChain instrumentation -> OTLP -> the worker's receiver", () => {
  it("records the agent's LLM calls, tool call and chains with the user, session, run tree and messages; projects them", async () => {
    const tenant = `oi-${randomUUID().slice(0, 8)}`;
    const { token, entry } = newOtlpToken(tenant);
    const connection = loadConfig().redis;
    const queueName = `otlp-oi-${randomUUID().slice(0, 8)}`;
    const ledger = new SegmentLedger(join(await mkdtemp(join(tmpdir(), "auditgraph-otlp-oi-")), "ledger"));
    const graph = new Graph(loadConfig().neo4j);
    cleanup.push(() => graph.close());
    await graph.migrate();
    const worker = new AuditWorker({ connection, queueName, ledger, graph, policies: await loadWorkerPolicies(undefined) });
    cleanup.push(() => worker.close());
    const http = await startWorkerHttp(worker, { port: 0, host: "127.0.0.1", processMetrics: false, otlpTokens: entry });
    cleanup.push(() => http.close());
    const queue = new Queue(queueName, { connection });
    queue.on("error", () => undefined);
    cleanup.push(async () => {
      await queue.obliterate({ force: true });
      await queue.close();
    });
    await worker.waitUntilReady();

    context.setGlobalContextManager(new AlsContextManager());
    cleanup.push(async () => context.disable());
    const provider = new BasicTracerProvider({
      resource: resourceFromAttributes({ "service.name": "oi-weather-agent", "service.version": "1.4.0" }),
      spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter({ url: `${http.url}/v1/traces`, headers: { Authorization: `Bearer ${token}` } }))],
    });
    const instrumentation = new LangChainInstrumentation({ tracerProvider: provider });
    instrumentation.manuallyInstrument(CallbackManagerModule);
    cleanup.push(async () => instrumentation.disable());

    const agent = createAgent({ model: weatherModel(), tools: [weather] });
    const result = await context.with(setUser(context.active(), { userId: "user-oi" }), () =>
      agent.invoke({ messages: [{ role: "user", content: "Weather in Paris?" }] }, { metadata: { session_id: "sess-oi-1" } }),
    );
    expect(result.messages.at(-1)?.text).toBe("It is 18°C and sunny in Paris.");
    await awaitAllCallbacks();
    await provider.forceFlush();
    await provider.shutdown();

    await waitUntilIdle(queue, 60_000);
    const events = inClear(await readAll(ledger))
      .map((r) => r.event as AuditEvent)
      .filter((e) => "identity" in e && e.identity.user.tenantId === tenant);
    const byType = (type: AuditEvent["type"]) => events.filter((e) => e.type === type);
    // One trace, the agent's: every run in it, each with the user, session and agent (the resource's service).
    expect(new Set(events.map((e) => e.traceId)).size).toBe(1);
    for (const e of events)
      expect(e).toMatchObject({
        sessionId: "sess-oi-1",
        identity: { user: { id: "user-oi", tenantId: tenant }, agent: { id: "oi-weather-agent", version: "1.4.0" } },
      });
    const llmStarts = byType("llm.start") as EventOf<"llm.start">[];
    const llmEnds = byType("llm.end") as EventOf<"llm.end">[];
    expect(llmStarts).toHaveLength(2);
    expect(llmEnds).toHaveLength(2);
    expect(llmStarts[0]!.payload.messages).toContainEqual(expect.objectContaining({ role: "user", content: "Weather in Paris?" }));
    const asked = llmEnds.find((e) => e.payload.output.toolCalls.length > 0)!;
    expect(asked.payload.output.toolCalls).toEqual([{ id: "call_oi_1", name: "get_weather", args: { city: "Paris" } }]);
    expect(llmEnds.map((e) => e.payload.output.text)).toContain("It is 18°C and sunny in Paris.");
    const toolStart = byType("tool.start") as EventOf<"tool.start">[];
    const toolEnd = byType("tool.end") as EventOf<"tool.end">[];
    expect(toolStart).toHaveLength(1);
    expect(toolStart[0]!.name).toBe("get_weather");
    expect(JSON.stringify(toolEnd[0]!.payload.output)).toContain("18°C and sunny in Paris");
    // The run tree: one root chain (the agent's graph), every other run's parent a run of the trace.
    const runs = new Set(events.map((e) => e.runId));
    const roots = events.filter((e) => e.type === "chain.start" && e.parentRunId === null);
    expect(roots).toHaveLength(1);
    for (const e of events) if (e.parentRunId !== null) expect(runs.has(e.parentRunId)).toBe(true);
    expect(runs.has(asked.parentRunId!)).toBe(true);

    // Projected like any other events.
    await worker.projected();
    const projected = await graph.read(
      `MATCH (c:LLMCall {tenantId: $tenantId}) WITH count(c) AS calls
       OPTIONAL MATCH (x:ToolCall {tenantId: $tenantId}) WITH calls, x ORDER BY x.status RETURN calls, collect(x.status) AS tools`,
      { tenantId: tenant },
    );
    // The tool's run ("ok"), and the call the model asked for ("requested"): OpenInference's TOOL
    // span carries no tool-call id, so the projection cannot tell they are one call.
    expect(projected[0]).toMatchObject({ calls: 2, tools: ["ok", "requested"] });
  });
});
