/**
 * Issue 17, export: the worker forwards every event it records, once in the ledger, as GenAI spans
 * to an OTLP/HTTP endpoint. A real agent (LangChain, fake chat model) through the handler, Redis,
 * a worker with a key store and the default policies, a ledger in a temp dir, and an OTLP receiver
 * started here that decodes what it gets on its own (protobufjs and a descriptor of its own, and
 * JSON.parse), and with the ingest side's decoder for a second opinion.
 */
import { randomUUID } from "node:crypto";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { awaitAllCallbacks } from "@langchain/core/callbacks/promises";
import { AIMessage } from "@langchain/core/messages";
import { fakeModel } from "@langchain/core/testing";
import { tool } from "@langchain/core/tools";
import { createAgent } from "langchain";
import { z } from "zod";
import { FileKeyStore, isSealed } from "@auditgraph/core";
import { AuditCallbackHandler, QueueTransport, Redactor } from "@auditgraph/langchain";
import { decodeProtobufRequest } from "@auditgraph/otel";
import { waitUntilIdle, type AuditWorkerOptions } from "@auditgraph/worker";
import { eventually, isolatedConfig, readAll, startPolicyPipeline } from "./helpers.js";
import { counterValue, startOtlpReceiver, type ReceivedSpan } from "./otlp-export-receiver.js";

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!().catch(() => undefined);
});

const EMAIL = "jane.doe@example.com";
const AGENT = { id: "crm-agent", name: "CRM agent", version: "3.1.0" };

/** A worker (key store, default policies) exporting to `otlpExport`, and a real agent run through it (its tool failing, if asked). */
async function exportedRun(otlpExport: AuditWorkerOptions["otlpExport"], { toolFails = false } = {}) {
  const config = await isolatedConfig();
  const tenantId = `otlp-${randomUUID().slice(0, 8)}`;
  const keyStore = new FileKeyStore(join(config.ledgerDir, "..", "keystore"));
  const pipeline = await startPolicyPipeline(config, tenantId, { keyStore, otlpExport });
  cleanups.push(() => pipeline.stop());
  const transport = new QueueTransport({ connection: config.redis, queueName: config.queueName, spoolDir: config.spoolDir });
  cleanups.push(() => transport.close());
  const handler = new AuditCallbackHandler(
    { agent: AGENT, user: { id: "jane", tenantId }, sessionId: "conv-1", redactor: new Redactor({ pii: true }) },
    transport,
  );
  const crm = tool(
    () => {
      if (toolFails) throw new Error("CRM unavailable");
      return `Customer record: ${EMAIL}, tier gold`;
    },
    { name: "crm_lookup", description: "customer record", schema: z.object({ customer: z.string() }) },
  );
  const model = fakeModel()
    .respondWithTools([{ id: "call-42", name: "crm_lookup", args: { customer: "42" } }])
    .respond(new AIMessage("Customer 42 is gold tier."));
  const result = await createAgent({ model, tools: [crm] }).invoke({ messages: [{ role: "user", content: "Look up customer 42" }] }, { callbacks: [handler] });
  expect(result.messages.at(-1)!.text).toBe("Customer 42 is gold tier.");
  await awaitAllCallbacks();
  await handler.flush();
  await waitUntilIdle(pipeline.queue);
  return { config, tenantId, pipeline, keyStore };
}

/** The spans of a tenant's trace by name, once the root span (the agent's invocation) has arrived. */
async function receivedTrace(receiver: Awaited<ReturnType<typeof startOtlpReceiver>>, tenantId: string, expected: number) {
  return eventually(async () => {
    const spans = receiver.spans().filter((s) => s.attributes["auditgraph.tenant.id"] === tenantId);
    return spans.length >= expected ? spans : undefined;
  });
}

const named = (spans: ReceivedSpan[], name: string) => spans.filter((s) => s.name === name);

describe("OTLP export: recorded events out as GenAI spans", () => {
  it("http/protobuf: the agent's run is one tree of GenAI spans, linked to the ledger, redaction as recorded, with the configured headers", async () => {
    const receiver = await startOtlpReceiver();
    cleanups.push(() => receiver.close());
    const { tenantId, pipeline } = await exportedRun({
      url: receiver.url,
      headers: { Authorization: "Basic cGs6c2s=", "x-team": "audit" },
      scheduledDelayMs: 20,
    });
    // 1 agent invocation, 2 model calls, 1 tool call, LangGraph's node chains, and the PII flag(s).
    const flagCount = (await readAll(pipeline.ledger)).filter((r) => r.event.type === "policy.flag").length;
    expect(flagCount).toBeGreaterThan(0);
    const spans = await receivedTrace(receiver, tenantId, 4 + flagCount);
    const root = named(spans, `invoke_agent ${AGENT.name}`);
    expect(root).toHaveLength(1);
    const chats = named(spans, "chat fake-model").length ? named(spans, "chat fake-model") : spans.filter((s) => s.name.startsWith("chat "));
    expect(chats).toHaveLength(2);
    const [toolSpan] = named(spans, "execute_tool crm_lookup");
    expect(toolSpan).toBeDefined();

    // The tree: one trace; the model calls and the tool under the agent's span (through LangGraph's node chains).
    const byId = new Map(spans.map((s) => [s.spanId, s]));
    const ancestors = (s: ReceivedSpan) => {
      const out: string[] = [];
      for (let p = s.parentSpanId; p; p = byId.get(p)?.parentSpanId) out.push(byId.get(p)?.name ?? "?");
      return out;
    };
    expect(new Set(spans.map((s) => s.traceId)).size).toBe(1);
    expect(root[0]!.parentSpanId).toBeUndefined();
    for (const s of [...chats, toolSpan!]) expect(ancestors(s).at(-1)).toBe(`invoke_agent ${AGENT.name}`);
    // Every span but the root has its parent among the spans sent.
    for (const s of spans) if (s.parentSpanId) expect(byId.has(s.parentSpanId)).toBe(true);

    // GenAI attributes, current names.
    expect(root[0]!.attributes).toMatchObject({
      "gen_ai.operation.name": "invoke_agent",
      "gen_ai.agent.id": AGENT.id,
      "gen_ai.agent.name": AGENT.name,
      "gen_ai.agent.version": AGENT.version,
      "gen_ai.conversation.id": "conv-1",
      "session.id": "conv-1",
      "user.id": "jane",
    });
    expect(root[0]!.service).toBe(AGENT.name);
    const [ask, answer] = [...chats].sort((a, b) => a.startMs - b.startMs);
    expect(ask!.attributes).toMatchObject({
      "gen_ai.operation.name": "chat",
      "gen_ai.provider.name": expect.any(String),
      "gen_ai.request.model": expect.any(String),
    });
    expect(ask!.kind).toBe(3); // CLIENT
    const input = JSON.parse(ask!.attributes["gen_ai.input.messages"] as string);
    expect(input).toContainEqual({ role: "user", parts: [{ type: "text", content: "Look up customer 42" }] });
    const output = JSON.parse(ask!.attributes["gen_ai.output.messages"] as string);
    expect(output[0]).toMatchObject({ role: "assistant", finish_reason: expect.any(String) });
    expect(output[0].parts).toContainEqual({ type: "tool_call", id: "call-42", name: "crm_lookup", arguments: { customer: "42" } });
    expect(JSON.parse(answer!.attributes["gen_ai.output.messages"] as string)[0].parts).toContainEqual({ type: "text", content: "Customer 42 is gold tier." });
    expect(toolSpan!.attributes).toMatchObject({
      "gen_ai.operation.name": "execute_tool",
      "gen_ai.tool.name": "crm_lookup",
      "gen_ai.tool.call.id": "call-42",
    });
    expect(JSON.parse(toolSpan!.attributes["gen_ai.tool.call.arguments"] as string)).toEqual({ customer: "42" });
    expect(toolSpan!.status.code).toBe(0);

    // Redaction as recorded: the e-mail never left the agent, so it is in no span; its count is.
    expect(receiver.requests.map((r) => r.body.toString("latin1")).join("")).not.toContain(EMAIL);
    expect(JSON.parse(toolSpan!.attributes["auditgraph.redactions"] as string)).toMatchObject({ email: 1 });
    expect(String(toolSpan!.attributes["gen_ai.tool.call.result"])).toContain("tier gold");

    // Each span names its ledger records: the same ids, positions and hashes as the ledger (sealed there, opened for the export).
    const ledger = new Map((await readAll(pipeline.ledger)).map((r) => [r.event.eventId, r]));
    for (const s of spans) {
      const ids = s.attributes["auditgraph.event.ids"] as string[];
      const positions = s.attributes["auditgraph.ledger.positions"] as number[];
      const hashes = s.attributes["auditgraph.ledger.hashes"] as string[];
      ids.forEach((id, i) => {
        const record = ledger.get(id)!;
        expect([record.position, record.hash]).toEqual([positions[i], hashes[i]]);
        expect(isSealed(record.event) || record.event.type.startsWith("escalation")).toBe(true);
      });
    }
    // The flag: a span of its own, under the run it concerns.
    const flags = spans.filter((s) => s.name.startsWith("policy.flag "));
    expect(flags).toHaveLength(flagCount);
    for (const f of flags) expect(byId.has(f.parentSpanId!)).toBe(true);

    // The headers, on every request; the protobuf content type; our decoder reads the same spans.
    for (const r of receiver.requests) {
      expect(r.headers.authorization).toBe("Basic cGs6c2s=");
      expect(r.headers["x-team"]).toBe("audit");
      expect(r.headers["content-type"]).toBe("application/x-protobuf");
    }
    const ours = receiver.requests.flatMap((r) => decodeProtobufRequest(r.body)).filter((s) => s.attributes["auditgraph.tenant.id"] === tenantId);
    expect(ours.map((s) => [s.spanId, s.parentSpanId, s.name]).sort()).toEqual(spans.map((s) => [s.spanId, s.parentSpanId, s.name]).sort());

    // Counted: every span the receiver took, none dropped or failed.
    await eventually(async () =>
      (await counterValue(pipeline.worker.metrics, "auditgraph_otlp_spans_exported_total")) === receiver.spans().length ? true : undefined,
    );
    expect(await counterValue(pipeline.worker.metrics, "auditgraph_otlp_spans_dropped_total")).toBe(0);
    expect(await counterValue(pipeline.worker.metrics, "auditgraph_otlp_spans_failed_total")).toBe(0);
  });

  it("http/json: the same spans, in OTLP/JSON, read with JSON.parse; a failed tool run is an ERROR span", async () => {
    const receiver = await startOtlpReceiver();
    cleanups.push(() => receiver.close());
    const { tenantId } = await exportedRun({ url: receiver.url, protocol: "http/json", scheduledDelayMs: 20 }, { toolFails: true });
    const spans = await receivedTrace(receiver, tenantId, 4);
    for (const r of receiver.requests) expect(r.headers["content-type"]).toBe("application/json");
    const root = named(spans, `invoke_agent ${AGENT.name}`)[0]!;
    const tool = named(spans, "execute_tool crm_lookup")[0]!;
    expect(root.traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(tool.traceId).toBe(root.traceId);
    expect(tool.attributes["gen_ai.tool.call.id"]).toBe("call-42");
    expect(spans.filter((s) => s.name.startsWith("chat "))).toHaveLength(2);
    expect(tool.endMs).toBeGreaterThanOrEqual(tool.startMs);
    expect(tool.attributes["auditgraph.ledger.positions"]).toHaveLength(2);
    expect(tool.status).toEqual({ code: 2, message: expect.stringContaining("CRM unavailable") });
    expect(tool.attributes["error.type"]).toBe("Error");
    expect(tool.events.map((e) => e.name)).toContain("exception");
    expect(root.status.code).toBe(0);
    expect(root.startMs).toBeLessThanOrEqual(tool.startMs);
    expect(root.endMs).toBeGreaterThanOrEqual(tool.endMs);
  });
});
