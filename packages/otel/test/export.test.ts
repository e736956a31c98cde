// The export's pure parts: events -> spans (the table, ids, times, tree, statuses, content modes),
// the bounded run map and queue and their counts, and the options. The OTLP wire and the worker
// are tested end to end in test/otlp-export.e2e.test.ts.
import { describe, expect, it } from "vitest";
import { SpanStatusCode } from "@opentelemetry/api";
import { ExportResultCode, hrTimeToMilliseconds } from "@opentelemetry/core";
import { InMemorySpanExporter, type ReadableSpan, type SpanExporter } from "@opentelemetry/sdk-trace-base";
import { EventSchema, SCHEMA_VERSION, newEventId, type AuditEvent } from "@auditgraph/core";
import {
  AUDITGRAPH_EXPORT,
  EVENT_SPANS,
  GEN_AI,
  OtlpSpanExport,
  SpanAssembler,
  SpanBatcher,
  eventSpanIdOf,
  spanIdOf,
  traceIdOf,
  type RecordedEvent,
} from "../src/index.js";

const tenantId = "acme";
const traceId = "0199a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";
const llmRun = "llm-run-1";
const toolRun = "tool-run-1";
const identity = { user: { id: "u1", tenantId }, agent: { id: "agent-1", name: "Helper", version: "1.2.0" } };
const base = { schemaVersion: SCHEMA_VERSION, traceId, sessionId: "s1", identity } as const;
const t = (ms: number) => new Date(Date.UTC(2026, 0, 1, 12, 0, 0, ms)).toISOString();
const model = { provider: "openai", name: "gpt-x", params: { temperature: 0.2, max_tokens: 50 } };

function trace(): AuditEvent[] {
  const events = [
    {
      ...base,
      eventId: newEventId(),
      occurredAt: t(0),
      type: "chain.start",
      runId: traceId,
      parentRunId: null,
      name: "agent",
      payload: { inputs: { q: "hi" } },
    },
    {
      ...base,
      eventId: newEventId(),
      occurredAt: t(10),
      type: "llm.start",
      runId: llmRun,
      parentRunId: traceId,
      model,
      payload: {
        messages: [
          { role: "system", content: "Be brief." },
          { role: "user", content: "add 1 and 2" },
        ],
      },
    },
    { ...base, eventId: newEventId(), occurredAt: t(20), type: "llm.token", runId: llmRun, parentRunId: traceId, payload: { index: 0, token: "ok" } },
    {
      ...base,
      eventId: newEventId(),
      occurredAt: t(30),
      type: "llm.end",
      runId: llmRun,
      parentRunId: traceId,
      model: { ...model, version: "gpt-x-2026-01-01" },
      usage: { inputTokens: 7, outputTokens: 3, totalTokens: 10 },
      redactions: { email: 2 },
      payload: { output: { text: "", toolCalls: [{ id: "c1", name: "add", args: { a: 1, b: 2 } }] } },
    },
    {
      ...base,
      eventId: newEventId(),
      occurredAt: t(40),
      type: "tool.start",
      runId: toolRun,
      parentRunId: traceId,
      name: "add",
      payload: { toolCallId: "c1", input: '{"a":1,"b":2}' },
    },
    {
      ...base,
      eventId: newEventId(),
      occurredAt: t(45),
      type: "tool.error",
      runId: toolRun,
      parentRunId: traceId,
      name: "add",
      payload: { toolCallId: "c1", error: { name: "RangeError", message: "too big" } },
    },
    { ...base, eventId: newEventId(), occurredAt: t(50), type: "chain.end", runId: traceId, parentRunId: null, payload: { outputs: { answer: "3" } } },
  ];
  return events.map((e) => EventSchema.parse(e));
}

const recorded = (events: AuditEvent[]): RecordedEvent[] =>
  events.map((event, position) => ({ event, streamId: `tenant-${tenantId}`, position, hash: position.toString(16).padStart(64, "0") }));

function assemble(events: AuditEvent[], options: Partial<ConstructorParameters<typeof SpanAssembler>[0]> = {}) {
  const spans: ReadableSpan[] = [];
  let dropped = 0;
  const assembler = new SpanAssembler({
    content: "full",
    maxOpenRuns: 100,
    maxEventsPerSpan: 10,
    emit: (s) => spans.push(s),
    dropped: (n) => (dropped += n),
    ...options,
  });
  for (const r of recorded(events)) assembler.add(r);
  return { spans, assembler, dropped: () => dropped, byName: (name: string) => spans.find((s) => s.name === name)! };
}

describe("events -> GenAI spans", () => {
  it("makes one span per run, named and linked as the GenAI conventions say, with ids derived from ours", () => {
    const events = trace();
    const { spans, byName } = assemble(events);
    expect(spans.map((s) => s.name)).toEqual(["chat gpt-x", "execute_tool add", "invoke_agent Helper"]);
    const root = byName("invoke_agent Helper");
    const chat = byName("chat gpt-x");
    const tool = byName("execute_tool add");
    // A UUID trace id is the OTel trace id as it is; span ids are derived, the same every time.
    expect(root.spanContext().traceId).toBe("0199a1b2c3d47e5f8a9b0c1d2e3f4a5b");
    expect(traceIdOf(tenantId, traceId)).toBe(root.spanContext().traceId);
    expect(traceIdOf(tenantId, "not-a-uuid")).toMatch(/^[0-9a-f]{32}$/);
    expect(traceIdOf(tenantId, "not-a-uuid")).not.toBe(traceIdOf("other", "not-a-uuid"));
    expect(root.spanContext().spanId).toBe(spanIdOf(tenantId, traceId, traceId));
    expect(root.parentSpanContext).toBeUndefined();
    expect(chat.parentSpanContext?.spanId).toBe(root.spanContext().spanId);
    expect(tool.parentSpanContext?.spanId).toBe(root.spanContext().spanId);
    expect(assemble(events).spans.map((s) => s.spanContext().spanId)).toEqual(spans.map((s) => s.spanContext().spanId));
    // Times are the events' own.
    expect(hrTimeToMilliseconds(chat.startTime)).toBe(Date.parse(t(10)));
    expect(hrTimeToMilliseconds(chat.endTime)).toBe(Date.parse(t(30)));

    expect(chat.attributes).toMatchObject({
      [GEN_AI.operationName]: "chat",
      [GEN_AI.providerName]: "openai",
      [GEN_AI.requestModel]: "gpt-x",
      [GEN_AI.responseModel]: "gpt-x-2026-01-01",
      [GEN_AI.requestTemperature]: 0.2,
      [GEN_AI.requestMaxTokens]: 50,
      [GEN_AI.usageInputTokens]: 7,
      [GEN_AI.usageOutputTokens]: 3,
      [GEN_AI.agentId]: "agent-1",
      [GEN_AI.agentName]: "Helper",
      [GEN_AI.agentVersion]: "1.2.0",
      [GEN_AI.conversationId]: "s1",
      "user.id": "u1",
      [AUDITGRAPH_EXPORT.tenantId]: tenantId,
      [AUDITGRAPH_EXPORT.eventIds]: [events[1]!.eventId, events[3]!.eventId],
      [AUDITGRAPH_EXPORT.ledgerPositions]: [1, 3],
      [AUDITGRAPH_EXPORT.redactions]: JSON.stringify({ email: 2 }),
    });
    expect(JSON.parse(chat.attributes[GEN_AI.inputMessages] as string)).toEqual([
      { role: "system", parts: [{ type: "text", content: "Be brief." }] },
      { role: "user", parts: [{ type: "text", content: "add 1 and 2" }] },
    ]);
    expect(JSON.parse(chat.attributes[GEN_AI.outputMessages] as string)).toEqual([
      { role: "assistant", parts: [{ type: "tool_call", id: "c1", name: "add", arguments: { a: 1, b: 2 } }], finish_reason: "tool_call" },
    ]);
    // The streamed token is a span event of its run.
    expect(chat.events.map((e) => [e.name, e.attributes?.token])).toEqual([["auditgraph.llm.token", "ok"]]);

    expect(tool.status).toEqual({ code: SpanStatusCode.ERROR, message: "too big" });
    expect(tool.attributes).toMatchObject({
      [GEN_AI.operationName]: "execute_tool",
      [GEN_AI.toolName]: "add",
      [GEN_AI.toolCallId]: "c1",
      [GEN_AI.toolCallArguments]: '{"a":1,"b":2}',
      "error.type": "RangeError",
    });
    expect(root.attributes).toMatchObject({ [GEN_AI.operationName]: "invoke_agent", "input.value": '{"q":"hi"}', "output.value": '{"answer":"3"}' });
  });

  it("exports no content in metadata mode: names, models, tokens, ids and statuses only", () => {
    const { byName } = assemble(trace(), { content: "metadata" });
    const chat = byName("chat gpt-x");
    expect(chat.attributes[GEN_AI.inputMessages]).toBeUndefined();
    expect(chat.attributes[GEN_AI.outputMessages]).toBeUndefined();
    expect(chat.attributes[GEN_AI.usageInputTokens]).toBe(7);
    expect(chat.events[0]!.attributes?.token).toBeUndefined();
    const tool = byName("execute_tool add");
    expect(tool.attributes[GEN_AI.toolCallArguments]).toBeUndefined();
    expect(tool.status).toEqual({ code: SpanStatusCode.ERROR });
    expect(byName("invoke_agent Helper").attributes["input.value"]).toBeUndefined();
  });

  it("exports a flag as a span of its own under the run it concerns, linked to its ledger record", () => {
    const events = trace();
    const flag = EventSchema.parse({
      ...base,
      eventId: newEventId(),
      occurredAt: t(60),
      type: "policy.flag",
      runId: llmRun,
      parentRunId: traceId,
      payload: {
        policyId: "pii",
        policyVersion: "1",
        policySetHash: "a".repeat(64),
        severity: "high",
        action: "flag",
        concerns: { runId: llmRun, kind: "output" },
        reason: "2 emails",
        evidence: { fields: ["payload.output.text"], measures: { email: 2 } },
        outcome: "flagged",
      },
    });
    const { byName } = assemble([...events, flag]);
    const span = byName("policy.flag pii");
    expect(span.spanContext().spanId).toBe(eventSpanIdOf(flag.eventId));
    expect(span.parentSpanContext?.spanId).toBe(spanIdOf(tenantId, traceId, llmRun));
    expect(span.attributes).toMatchObject({
      "auditgraph.event.id": flag.eventId,
      [AUDITGRAPH_EXPORT.ledgerPosition]: 7,
      [AUDITGRAPH_EXPORT.policyOutcome]: "flagged",
    });
  });

  it("keeps open runs bounded, exports an end whose start it let go, and marks what is open at close incomplete", () => {
    const events = trace();
    // Room for one open run: the root chain's start is let go when the model call starts.
    const { spans, assembler, dropped, byName } = assemble(events.slice(0, 2), { maxOpenRuns: 1 });
    expect(dropped()).toBe(1);
    expect(assembler.openRuns).toBe(1);
    for (const r of recorded(events).slice(2)) assembler.add(r);
    expect(byName("chat gpt-x").attributes[AUDITGRAPH_EXPORT.incomplete]).toBeUndefined();
    const root = byName("invoke_agent Helper");
    expect(root.attributes[AUDITGRAPH_EXPORT.incomplete]).toBe(true);
    expect(root.attributes[AUDITGRAPH_EXPORT.eventIds]).toEqual([events[6]!.eventId]);

    const open = assemble(events.slice(0, 2));
    expect(open.spans).toHaveLength(0);
    open.assembler.closeAll();
    expect(open.spans.map((s) => [s.name, s.attributes[AUDITGRAPH_EXPORT.incomplete]])).toEqual([
      ["invoke_agent Helper", true],
      ["chat gpt-x", true],
    ]);
    expect(spans.length).toBeGreaterThan(0);
  });

  it("writes messages and retrievals in the GenAI schemas", () => {
    const run = { ...base, runId: "r1", parentRunId: traceId } as const;
    const events = [
      {
        ...run,
        eventId: newEventId(),
        occurredAt: t(0),
        type: "llm.start",
        model,
        payload: {
          messages: [
            {
              role: "human",
              content: [
                { type: "text", text: "look" },
                { type: "image_url", image_url: { url: "https://x/y.png" } },
              ],
            },
            { role: "assistant", content: "", toolCalls: [{ id: "c9", name: "find", args: { q: 1 } }] },
            { role: "tool", content: "found", toolCallId: "c9" },
          ],
          tools: [{ name: "find", description: "finds", parameters: { type: "object" } }],
        },
      },
      {
        ...run,
        eventId: newEventId(),
        occurredAt: t(5),
        type: "llm.end",
        model,
        payload: { output: { text: "done", toolCalls: [], finishReason: "length" }, reasoning: [{ index: 0, kind: "reasoning", text: "thinking" }] },
      },
      {
        ...base,
        runId: "r2",
        parentRunId: traceId,
        name: "docs",
        eventId: newEventId(),
        occurredAt: t(6),
        type: "retriever.start",
        payload: { query: "refund policy" },
      },
      {
        ...base,
        runId: "r2",
        parentRunId: traceId,
        eventId: newEventId(),
        occurredAt: t(9),
        type: "retriever.end",
        payload: { documents: [{ id: "d1", pageContent: "30 days", metadata: { src: "kb" } }] },
      },
    ].map((e) => EventSchema.parse(e));
    const { byName } = assemble(events);
    const chat = byName("chat gpt-x");
    expect(JSON.parse(chat.attributes[GEN_AI.inputMessages] as string)).toEqual([
      {
        role: "user",
        parts: [
          { type: "text", content: "look" },
          { type: "image_url", image_url: { url: "https://x/y.png" } },
        ],
      },
      { role: "assistant", parts: [{ type: "tool_call", id: "c9", name: "find", arguments: { q: 1 } }] },
      { role: "tool", parts: [{ type: "tool_call_response", id: "c9", response: "found" }] },
    ]);
    expect(JSON.parse(chat.attributes[GEN_AI.toolDefinitions] as string)).toEqual([
      { type: "function", name: "find", description: "finds", parameters: { type: "object" } },
    ]);
    expect(JSON.parse(chat.attributes[GEN_AI.outputMessages] as string)).toEqual([
      {
        role: "assistant",
        parts: [
          { type: "reasoning", content: "thinking" },
          { type: "text", content: "done" },
        ],
        finish_reason: "length",
      },
    ]);
    expect(chat.attributes[GEN_AI.responseFinishReasons]).toEqual(["length"]);
    const retrieval = byName("retrieval docs");
    expect(retrieval.attributes).toMatchObject({ [GEN_AI.operationName]: "retrieval", [GEN_AI.retrievalQueryText]: "refund policy" });
    expect(JSON.parse(retrieval.attributes[GEN_AI.retrievalDocuments] as string)).toEqual([{ id: "d1", content: "30 days", metadata: { src: "kb" } }]);
  });

  it("covers every event type in one table", () => {
    const types = EventSchema.options.map((o) => o.shape.type.value).sort();
    expect(Object.keys(EVENT_SPANS).sort()).toEqual(types);
  });
});

describe("the bounded queue and its counts", () => {
  const counter = () => {
    const c = { exported: 0, dropped: 0, failed: 0 };
    return { c, counts: { exported: (n: number) => (c.exported += n), dropped: (n: number) => (c.dropped += n), failed: (n: number) => (c.failed += n) } };
  };
  const spansOf = () => assemble(trace()).spans;

  it("drops past maxQueueSize on arrival, exports the rest on close, and counts a failing exporter's spans as failed", async () => {
    const memory = new InMemorySpanExporter();
    const { c, counts } = counter();
    const batcher = new SpanBatcher(memory, { maxQueueSize: 2, maxBatchSize: 10, scheduledDelayMs: 60_000 }, counts);
    for (const s of spansOf()) batcher.add(s);
    expect(c.dropped).toBe(1);
    await batcher.close(5_000);
    expect(c).toEqual({ exported: 2, dropped: 1, failed: 0 });

    const failing: SpanExporter = { export: (_s, done) => done({ code: ExportResultCode.FAILED, error: new Error("503") }), shutdown: async () => {} };
    const f = counter();
    const b2 = new SpanBatcher(failing, { maxQueueSize: 10, maxBatchSize: 2, scheduledDelayMs: 60_000 }, f.counts);
    for (const s of spansOf()) b2.add(s);
    await b2.close(5_000);
    expect(f.c).toEqual({ exported: 0, dropped: 0, failed: 3 });
  });

  it("gives up at the close deadline: what is still queued is dropped, not waited for", async () => {
    let release: () => void = () => {};
    const stuck: SpanExporter = {
      export: (_s, done) => void new Promise<void>((r) => (release = r)).then(() => done({ code: ExportResultCode.SUCCESS })),
      shutdown: async () => {},
    };
    const { c, counts } = counter();
    const batcher = new SpanBatcher(stuck, { maxQueueSize: 10, maxBatchSize: 1, scheduledDelayMs: 60_000 }, counts);
    for (const s of spansOf()) batcher.add(s);
    await batcher.close(0);
    expect(c.dropped).toBe(2);
    release();
  });

  it("refuses an unknown export option, naming it, and a bad protocol", () => {
    const counts = counter().counts;
    expect(() => new OtlpSpanExport({ url: "http://127.0.0.1:4318/v1/traces", batchSize: 5 } as never, counts)).toThrow(/batchSize/);
    expect(() => new OtlpSpanExport({ url: "http://127.0.0.1:4318/v1/traces", protocol: "grpc" } as never, counts)).toThrow(/protocol/);
    expect(() => new OtlpSpanExport({ url: "ftp://x/v1/traces" }, counts)).toThrow(/url/);
  });
});
