// The graph model on real LangChain runs: a createAgent agent (fake chat model, real tools, a
// real BaseRetriever inside a tool) audited by AuditCallbackHandler, its events appended and
// projected by processBatch, then read back: retrieved documents and the model calls that used
// them, sessions' traces in order, tenantId on every node, the trace-output investigation, and
// deployments saying which agent and model version was live when each output was produced.
import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { awaitAllCallbacks } from "@langchain/core/callbacks/promises";
import { Document } from "@langchain/core/documents";
import { AIMessage, type AIMessageFields } from "@langchain/core/messages";
import { BaseRetriever } from "@langchain/core/retrievers";
import { fakeModel } from "@langchain/core/testing";
import { tool } from "@langchain/core/tools";
import { createAgent } from "langchain";
import { z } from "zod";
import {
  BATCH_JOB_NAME,
  SCHEMA_VERSION,
  ValidationError,
  hashCanonical,
  isSealed,
  newEventId,
  streamIdFor,
  type AuditEvent,
  type EventOf,
} from "@auditgraph/core";
import { Graph, investigate, type TraceOutputRow } from "@auditgraph/graph";
import { SegmentLedger } from "@auditgraph/ledger";
import { AuditCallbackHandler, METADATA_KEYS } from "@auditgraph/langchain";
import { processBatch, waitUntilIdle } from "@auditgraph/worker";
import { keyStoreOf, recordDeployment, type Config } from "@auditgraph/cli";
import { isolatedConfig, readAll, startPipeline } from "./helpers.js";

const tag = randomUUID().slice(0, 8);
const AGENT = { id: "docs-agent", name: "Docs agent" };
const USER = "dana";
const SERVED = "fake-served-2026-03";
const TEMPLATE_HASH = `tmpl-${tag}`;

const DOCS = [
  new Document({ id: "doc-returns", pageContent: "Returns are accepted within 30 days.", metadata: { source: "policies.md", page: 2 } }),
  new Document({ pageContent: "Shipping takes 2 days.", metadata: { source: "shipping.md" } }),
];
/** The key a document without an id gets: the hash of its content and metadata. */
const hashedId = (d: Document) => `sha256:${hashCanonical({ pageContent: d.pageContent, metadata: d.metadata })}`;

class PolicyRetriever extends BaseRetriever {
  override lc_namespace = ["test", "graph-model"];
  override async _getRelevantDocuments(): Promise<Document[]> {
    return DOCS;
  }
}

const searchPolicies = tool(
  async ({ query }, config) => {
    const docs = await new PolicyRetriever().invoke(query, config);
    return docs.map((d) => d.pageContent).join("\n");
  },
  { name: "search_policies", description: "search the policy documents", schema: z.object({ query: z.string() }) },
);
const calculator = tool(({ a, b }) => String(a * b), {
  name: "multiply",
  description: "multiply two numbers",
  schema: z.object({ a: z.number(), b: z.number() }),
});

const reply = (fields: AIMessageFields) => new AIMessage({ ...fields, response_metadata: { model_name: SERVED } });

/** Three model calls: search (the retriever runs in the tool), multiply, answer. */
const ragModel = () =>
  fakeModel()
    .respond(
      reply({
        content: [{ type: "reasoning", reasoning: "Returns are a policy question: search the policies." }],
        tool_calls: [{ id: "call_search", name: "search_policies", args: { query: "return policy" }, type: "tool_call" }],
      }),
    )
    .respond(reply({ content: "", tool_calls: [{ id: "call_multiply", name: "multiply", args: { a: 30, b: 24 }, type: "tool_call" }] }))
    .respond(reply({ content: "You can return it within 30 days (720 hours)." }));

const plainModel = (answer: string) => fakeModel().respond(reply({ content: answer }));

let config: Config;
let graph: Graph;

/** One agent invocation, audited: the events the handler sent, not yet recorded. */
async function capture(
  model: ReturnType<typeof fakeModel>,
  o: { tenantId: string; version: string; sessionId?: string; question: string; metadata?: Record<string, string> },
) {
  const events: AuditEvent[] = [];
  const transport = { send: (e: AuditEvent) => void events.push(e), flush: async () => {}, close: async () => {} };
  const handler = new AuditCallbackHandler({ agent: { ...AGENT, version: o.version } }, transport);
  const traceId = randomUUID();
  await createAgent({ model, tools: [searchPolicies, calculator] }).invoke(
    { messages: [{ role: "user", content: o.question }] },
    {
      runId: traceId,
      callbacks: [handler],
      metadata: {
        [METADATA_KEYS.userId]: USER,
        [METADATA_KEYS.tenantId]: o.tenantId,
        ...(o.sessionId ? { [METADATA_KEYS.sessionId]: o.sessionId } : {}),
        ...o.metadata,
      },
    },
  );
  await awaitAllCallbacks();
  const ends = events.filter((e): e is EventOf<"llm.end"> => e.type === "llm.end");
  return { traceId, events, outputIds: ends.map((e) => e.eventId), llmRunIds: ends.map((e) => e.runId), model: ends[0]!.model };
}

/** Appends and projects events as the worker does, one job each. */
async function record(...jobs: AuditEvent[][]) {
  const ledger = new SegmentLedger(config.ledgerDir);
  try {
    for (const events of jobs) {
      const outcome = await processBatch(ledger, graph, `job-${randomUUID()}`, { events });
      expect(outcome).toMatchObject({ deadLettered: 0, projected: events.length });
    }
  } finally {
    await ledger.close();
  }
}

async function runAgent(...args: Parameters<typeof capture>) {
  const run = await capture(...args);
  await record(run.events);
  return run;
}

/** Per model call of a trace, in the order they started: the ids of the documents it used. */
const documentsUsed = (tenantId: string, traceId: string) =>
  graph.read(
    `MATCH (t:Trace {tenantId: $tenantId, id: $traceId})<-[:PART_OF]-(c:LLMCall)<-[:INPUT_TO]-(p:Prompt)
     OPTIONAL MATCH (d:RetrievedDocument)-[:USED_BY]->(c)
     WITH c, p, d ORDER BY d.id
     WITH c, p.id AS started, collect(d.id) AS documents
     RETURN c.id AS call, documents ORDER BY started`,
    { tenantId, traceId },
  );

/** A session's traces, walked from FIRST_TRACE along NEXT_TRACE. */
const sessionOrder = (tenantId: string, sessionId: string) =>
  graph.read(
    `MATCH (s:Session {tenantId: $tenantId, id: $sessionId})-[:FIRST_TRACE]->(first:Trace)
     MATCH path = (first)-[:NEXT_TRACE*0..]->(last:Trace) WHERE NOT (last)-[:NEXT_TRACE]->()
     RETURN [t IN nodes(path) | t.id] AS order, count { (s)-[:FIRST_TRACE]->() } AS firsts,
            count { (s)<-[:IN_SESSION]-() } AS traces`,
    { tenantId, sessionId },
  );

const traceOutput = async (tenantId: string, outputId: string): Promise<TraceOutputRow> => {
  const rows = await investigate(graph, "trace-output", { tenantId, outputId });
  expect(rows).toHaveLength(1);
  return rows[0]!;
};

beforeAll(async () => {
  config = await isolatedConfig();
  graph = new Graph(config.neo4j);
  await graph.migrate();
});
afterAll(async () => {
  await graph?.close();
});

describe("graph model: documents, sessions, tenant scope, trace-output", () => {
  const tenantId = `gm-${tag}`;
  const sessionId = `session-${tag}`;
  let rag: Awaited<ReturnType<typeof runAgent>>;
  let plain: Awaited<ReturnType<typeof runAgent>>;

  beforeAll(async () => {
    rag = await runAgent(ragModel(), {
      tenantId,
      version: "1.0.0",
      sessionId,
      question: "How long do I have to return a keyboard, in hours?",
      metadata: { [METADATA_KEYS.promptTemplateHash]: TEMPLATE_HASH },
    });
    plain = await runAgent(plainModel("Anything else?"), { tenantId, version: "1.0.0", sessionId, question: "Thanks!" });
    // Another tenant with the same agent, user and session ids: nothing of it may show in this one's.
    await runAgent(ragModel(), { tenantId: `${tenantId}-other`, version: "1.0.0", sessionId, question: "Returns?" });
  });

  it("projects the retriever's documents, keyed by their id or their content hash, returned by the retrieval inside the tool call", async () => {
    const rows = await graph.read(
      `MATCH (t:Trace {tenantId: $tenantId, id: $traceId})<-[:PART_OF]-(r:Retrieval)-[rel:RETURNED]->(d:RetrievedDocument)
       OPTIONAL MATCH (x:ToolCall)-[:CALLED]->(r)
       RETURN d.id AS id, d.sourceId AS sourceId, d.content AS content, d.tenantId AS tenantId, rel.rank AS rank,
              r.query AS query, r.status AS status, x.callId AS toolCall
       ORDER BY rank`,
      { tenantId, traceId: rag.traceId },
    );
    expect(rows).toEqual([
      {
        id: "doc-returns",
        sourceId: "doc-returns",
        content: DOCS[0]!.pageContent,
        tenantId,
        rank: 0,
        query: "return policy",
        status: "ok",
        toolCall: "call_search",
      },
      {
        id: hashedId(DOCS[1]!),
        sourceId: null,
        content: DOCS[1]!.pageContent,
        tenantId,
        rank: 1,
        query: "return policy",
        status: "ok",
        toolCall: "call_search",
      },
    ]);
  });

  it("links the documents to the model calls that started after the retrieval ended (USED_BY), not to the one that asked for it", async () => {
    const both = [hashedId(DOCS[1]!), "doc-returns"].sort();
    expect(await documentsUsed(tenantId, rag.traceId)).toEqual([
      { call: rag.llmRunIds[0], documents: [] },
      { call: rag.llmRunIds[1], documents: both },
      { call: rag.llmRunIds[2], documents: both },
    ]);
    // The second trace of the session retrieved nothing: its call used no document.
    const [other] = await graph.read(
      `MATCH (:Trace {tenantId: $tenantId, id: $traceId})<-[:PART_OF]-(c:LLMCall) RETURN count { (:RetrievedDocument)-[:USED_BY]->(c) } AS n`,
      { tenantId, traceId: plain.traceId },
    );
    expect(other).toEqual({ n: 0 });
  });

  it("orders a session's traces: FIRST_TRACE, then NEXT_TRACE by start", async () => {
    expect(await sessionOrder(tenantId, sessionId)).toEqual([{ order: [rag.traceId, plain.traceId], firsts: 1, traces: 2 }]);
  });

  it("puts tenantId on every node of the tenant's traces, and reaches no other tenant's", async () => {
    const [row] = await graph.read(
      `MATCH (t:Trace {tenantId: $tenantId})-[*0..3]-(n)
       WITH DISTINCT n
       RETURN sum(CASE WHEN n.tenantId IS NULL THEN 1 ELSE 0 END) AS lacking,
              sum(CASE WHEN n.tenantId <> $tenantId THEN 1 ELSE 0 END) AS foreign,
              collect(DISTINCT labels(n)[0]) AS labels`,
      { tenantId },
    );
    expect(row!.lacking).toBe(0);
    expect(row!.foreign).toBe(0);
    // Every kind of node the traces make was reached, so the two zeros above say something.
    expect([...(row!.labels as string[])].sort()).toEqual(
      [
        "Agent",
        "AgentVersion",
        "LLMCall",
        "ModelVersion",
        "Output",
        "Prompt",
        "ReasoningStep",
        "RetrievedDocument",
        "Retrieval",
        "Session",
        "Tenant",
        "Tool",
        "ToolCall",
        "Trace",
        "User",
      ].sort(),
    );
  });

  it("trace-output: the final answer back to prompt, model version, reasoning, tool calls, documents, trace, session, user and agent", async () => {
    const row = await traceOutput(tenantId, rag.outputIds[2]!);
    expect(row.output).toMatchObject({ id: rag.outputIds[2], text: "You can return it within 30 days (720 hours)." });
    expect(row.llmCall.id).toBe(rag.llmRunIds[2]);
    const llmStart = rag.events.filter((e): e is EventOf<"llm.start"> => e.type === "llm.start")[2]!;
    expect(row.prompt).toMatchObject({ id: llmStart.eventId, hash: hashCanonical(llmStart.payload.messages), templateHash: TEMPLATE_HASH });
    expect(row.model).toEqual({ provider: rag.model.provider, name: rag.model.name, version: SERVED });
    expect(row.reasoningSteps.map((s) => [s.llmCallId, s.index, s.kind])).toEqual([
      [rag.llmRunIds[0], 0, "reasoning"],
      [rag.llmRunIds[0], 1, "tool_call"],
      [rag.llmRunIds[1], 0, "tool_call"],
    ]);
    expect(row.reasoningSteps[0]!.text).toBe("Returns are a policy question: search the policies.");
    expect(row.toolCalls).toMatchObject([
      { callId: "call_search", name: "search_policies", status: "ok", requestedBy: rag.llmRunIds[0], requestedArgs: { query: "return policy" } },
      { callId: "call_multiply", name: "multiply", status: "ok", requestedBy: rag.llmRunIds[1], output: expect.anything() },
    ]);
    expect(JSON.stringify(row.toolCalls[0]!.output)).toContain("Returns are accepted within 30 days.");
    expect(JSON.stringify(row.toolCalls[1]!.output)).toContain("720");
    expect(row.documents.map((d) => d.id)).toEqual(["doc-returns", hashedId(DOCS[1]!)]);
    expect(row.documents[0]).toMatchObject({
      content: DOCS[0]!.pageContent,
      metadata: { source: "policies.md", page: 2 },
      retrievedBy: [{ query: "return policy", rank: 0, toolCallId: "call_search" }],
    });
    expect(row.trace).toMatchObject({ id: rag.traceId, status: "ok" });
    expect(row.session).toEqual({ id: sessionId });
    expect(row.user).toEqual({ id: USER, erased: null });
    expect(row.agent).toEqual({ id: AGENT.id, name: AGENT.name, version: "1.0.0" });
    // No deployment recorded for this tenant: nothing is known to have been live.
    expect(row.liveAgentVersion).toBeNull();
    expect(row.liveModelVersion).toBeNull();
    expect(row.flags).toEqual([]);
    expect(row.escalations).toEqual([]);
  });

  it("trace-output of an earlier output holds only what came before it: its own reasoning and tool call, no documents yet", async () => {
    const row = await traceOutput(tenantId, rag.outputIds[0]!);
    expect(row.reasoningSteps.map((s) => s.kind)).toEqual(["reasoning", "tool_call"]);
    expect(row.toolCalls.map((t) => t.callId)).toEqual(["call_search"]);
    expect(row.documents).toEqual([]);
    // The second output's call ran after the retrieval: it used both documents.
    expect((await traceOutput(tenantId, rag.outputIds[1]!)).documents).toHaveLength(2);
  });

  it("trace-output is tenant-scoped: another tenant's output id answers nothing here", async () => {
    expect(await investigate(graph, "trace-output", { tenantId: `${tenantId}-other`, outputId: rag.outputIds[2]! })).toEqual([]);
  });

  it("auditgraph trace (the lineage by id) still reads the trace's final output", async () => {
    const lineage = await graph.lineage(rag.traceId);
    expect(lineage).toMatchObject({
      output: { id: rag.outputIds[2] },
      agent: { id: AGENT.id, version: "1.0.0" },
      user: { id: USER, tenantId },
      trace: { id: rag.traceId, sessionId },
    });
    expect(lineage!.toolCalls.map((t) => t.callId).sort()).toEqual(["call_multiply", "call_search"]);
  });

  it("refuses bad parameters, naming the field", async () => {
    await expect(investigate(graph, "trace-output", { tenantId } as never)).rejects.toThrow(/trace-output: outputId: /);
    await expect(investigate(graph, "trace-output", { tenantId, outputId: "x", outputID: "y" } as never)).rejects.toThrow(/"outputID"/);
    await expect(investigate(graph, "trace-output", { tenantId, outputId: "x", environment: "" })).rejects.toThrow(/trace-output: environment: /);
    await expect(investigate(graph, "trace-output", { outputId: "x" } as never)).rejects.toThrow(ValidationError);
    await expect(investigate(graph, "trace-output", { outputId: "x" } as never)).rejects.toThrow(/tenantId: /);
    await expect(investigate(graph, "live-versions", { tenantId, at: "yesterday" })).rejects.toThrow(/live-versions: at: /);
  });
});

describe("the projection does not depend on the order batches arrive in", () => {
  const tenantId = `order-${tag}`;
  const sessionId = `session-${tag}`;

  it("USED_BY and the session's order come out the same, and projecting it all again changes nothing", async () => {
    const rag = await capture(ragModel(), { tenantId, version: "1.0.0", sessionId, question: "Returns?" });
    const plain = await capture(plainModel("Bye."), { tenantId, version: "1.0.0", sessionId, question: "Thanks" });
    const split = rag.events.findIndex((e) => e.type === "retriever.end") + 1;
    // The later trace first; then the model calls after the retrieval before the retrieval itself.
    await record(plain.events, rag.events.slice(split), rag.events.slice(0, split));
    const both = [hashedId(DOCS[1]!), "doc-returns"].sort();
    const expected = [
      { call: rag.llmRunIds[0], documents: [] },
      { call: rag.llmRunIds[1], documents: both },
      { call: rag.llmRunIds[2], documents: both },
    ];
    expect(await documentsUsed(tenantId, rag.traceId)).toEqual(expected);
    expect(await sessionOrder(tenantId, sessionId)).toEqual([{ order: [rag.traceId, plain.traceId], firsts: 1, traces: 2 }]);

    const shape = () =>
      graph.read(`MATCH (n {tenantId: $tenantId}) OPTIONAL MATCH (n)-[r]->() RETURN count(DISTINCT n) AS nodes, count(r) AS relationships`, { tenantId });
    const before = await shape();
    // In order this time, as one job: the retrieval's USED_BY now comes from the model calls' side too.
    await record([...rag.events, ...plain.events]);
    expect(await shape()).toEqual(before);
    expect(await documentsUsed(tenantId, rag.traceId)).toEqual(expected);
  });

  it("a model call projected after its retrieval links the documents itself", async () => {
    const rag = await capture(ragModel(), { tenantId: `${tenantId}-fwd`, version: "1.0.0", question: "Returns?" });
    const split = rag.events.findIndex((e) => e.type === "retriever.end") + 1;
    await record(rag.events.slice(0, split), rag.events.slice(split));
    const both = [hashedId(DOCS[1]!), "doc-returns"].sort();
    expect(await documentsUsed(`${tenantId}-fwd`, rag.traceId)).toEqual([
      { call: rag.llmRunIds[0], documents: [] },
      { call: rag.llmRunIds[1], documents: both },
      { call: rag.llmRunIds[2], documents: both },
    ]);
  });
});

describe("deployments: which agent and model version was live when an output was produced", () => {
  const tenantId = `deploy-${tag}`;
  const outputs: { id: string; recordedAt?: string }[] = [];
  const deployments: Awaited<ReturnType<typeof recordDeployment>>[] = [];
  const quiet = () => undefined;
  const answer = async (version: string) => {
    const run = await runAgent(plainModel(`answered by ${version}`), { tenantId, version, question: "Hello?" });
    outputs.push({ id: run.outputIds[0]! });
    return run;
  };

  beforeAll(async () => {
    const first = await answer("1.0.0");
    const model = `${first.model.provider}/${first.model.name}`;
    deployments.push(await recordDeployment(config, { tenant: tenantId, model, modelVersion: SERVED, by: "ci" }, quiet));
    deployments.push(await recordDeployment(config, { tenant: tenantId, agent: AGENT.id, agentVersion: "1.0.0", by: "ci" }, quiet));
    await answer("1.0.0");
    deployments.push(await recordDeployment(config, { tenant: tenantId, agent: AGENT.id, agentVersion: "2.0.0", reason: "new planner" }, quiet));
    await answer("2.0.0");
    deployments.push(
      await recordDeployment(config, { tenant: tenantId, agent: AGENT.id, agentVersion: "1.0.0", rollback: true, reason: "2.0.0 loops", by: "oncall" }, quiet),
    );
    await answer("1.0.0");
  });

  it("trace-output names the version each deployment had made live, a rollback's included", async () => {
    const live = [];
    for (const o of outputs) {
      const row = await traceOutput(tenantId, o.id);
      o.recordedAt = row.output.recordedAt;
      live.push({
        agent: row.liveAgentVersion && [row.liveAgentVersion.version, row.liveAgentVersion.action],
        model: row.liveModelVersion && [row.liveModelVersion.version, row.liveModelVersion.action],
        used: row.agent!.version,
      });
    }
    expect(live).toEqual([
      { agent: null, model: null, used: "1.0.0" },
      { agent: ["1.0.0", "rollout"], model: [SERVED, "rollout"], used: "1.0.0" },
      { agent: ["2.0.0", "rollout"], model: [SERVED, "rollout"], used: "2.0.0" },
      { agent: ["1.0.0", "rollback"], model: [SERVED, "rollout"], used: "1.0.0" },
    ]);
    const last = await traceOutput(tenantId, outputs[3]!.id);
    expect(last.liveAgentVersion).toMatchObject({ id: deployments[3]!.eventId, environment: "production", reason: "2.0.0 loops", by: "oncall" });
  });

  it("chains each target's deployments in time (PREVIOUS) and points them at the version they deployed", async () => {
    const rows = await graph.read(
      `MATCH (d:Deployment {tenantId: $tenantId})-[:DEPLOYED]->(v)
       OPTIONAL MATCH (d)-[:PREVIOUS]->(prev:Deployment)
       RETURN d.id AS id, labels(v)[0] AS label, v.version AS version, prev.id AS previous, elementId(v) AS node
       ORDER BY d.at, d.position`,
      { tenantId },
    );
    const [model, v1, v2, back] = deployments.map((d) => d.eventId);
    expect(rows.map(({ node: _node, ...r }) => r)).toEqual([
      { id: model, label: "ModelVersion", version: SERVED, previous: null },
      { id: v1, label: "AgentVersion", version: "1.0.0", previous: null },
      { id: v2, label: "AgentVersion", version: "2.0.0", previous: v1 },
      { id: back, label: "AgentVersion", version: "1.0.0", previous: v2 },
    ]);
    // The rollback deployed the very AgentVersion node the first rollout did.
    expect(rows[3]!.node).toBe(rows[1]!.node);
  });

  it("live-versions: what was live at a time, per target", async () => {
    const at = async (time: string) => (await investigate(graph, "live-versions", { tenantId, at: time })).map((r) => [r.target, r.version, r.action]);
    expect(await at(outputs[0]!.recordedAt!)).toEqual([]);
    expect(await at(outputs[2]!.recordedAt!)).toEqual([
      ["agent", "2.0.0", "rollout"],
      ["model", SERVED, "rollout"],
    ]);
    // The same instant given with another offset: times are compared as the graph stores them (UTC).
    const plusTwo = new Date(Date.parse(outputs[2]!.recordedAt!) + 2 * 3600_000).toISOString().replace("Z", "+02:00");
    expect(await at(plusTwo)).toEqual(await at(outputs[2]!.recordedAt!));
    // Now (the default time).
    expect(await investigate(graph, "live-versions", { tenantId, agentId: AGENT.id })).toMatchObject([{ version: "1.0.0", action: "rollback" }]);
    expect(await investigate(graph, "live-versions", { tenantId, environment: "staging" })).toEqual([]);
  });

  it("the worker takes deployment events from the queue: in the tenant's stream, never sealed, projected; a bad one is dead-lettered naming the field", async () => {
    const own = await isolatedConfig();
    const queueTenant = `${tenantId}-queue`;
    const deployment = (payload: Record<string, unknown>) => {
      const eventId = newEventId();
      return {
        eventId,
        schemaVersion: SCHEMA_VERSION,
        type: "deployment",
        occurredAt: new Date().toISOString(),
        traceId: eventId,
        runId: eventId,
        parentRunId: null,
        sessionId: null,
        tenantId: queueTenant,
        payload,
      };
    };
    const good = deployment({ target: "agent", agentId: "queue-agent", version: "9.9.9", action: "rollout", environment: "staging" });
    const bad = deployment({ target: "agent", agentId: "queue-agent", action: "rollout" });
    const pipeline = await startPipeline(own);
    try {
      await pipeline.queue.add(BATCH_JOB_NAME, { events: [good, bad] });
      await waitUntilIdle(pipeline.queue);
      const records = await readAll(pipeline.ledger);
      expect(records.map((r) => [r.streamId, r.event.eventId])).toEqual([[streamIdFor(queueTenant), good.eventId]]);
      const [dead] = await pipeline.ledger.readDeadLetters();
      expect(dead!.reason).toMatch(/event 1: payload\.version/);
    } finally {
      await pipeline.stop();
    }
    expect(await investigate(graph, "live-versions", { tenantId: queueTenant, environment: "staging" })).toMatchObject([
      { target: "agent", agentId: "queue-agent", version: "9.9.9", action: "rollout" },
    ]);

    // Where the worker seals payloads per data subject, a deployment (no subject) stays in the clear.
    const ledger = new SegmentLedger(own.ledgerDir);
    try {
      const again = deployment({ target: "model", provider: "acme", name: "m", version: "m-1", action: "rollout" });
      await processBatch(ledger, graph, "sealed-job", { events: [again] }, { keyStore: keyStoreOf(own) });
      const stored = (await readAll(ledger)).find((r) => r.event.eventId === again.eventId)!;
      expect(isSealed(stored.event)).toBe(false);
    } finally {
      await ledger.close();
    }
  });

  it("deploy refuses bad arguments, naming them, before anything is recorded", async () => {
    const refused = (given: Parameters<typeof recordDeployment>[1]) => recordDeployment(config, given, quiet);
    await expect(refused({ agent: AGENT.id, agentVersion: "1" })).rejects.toThrow(/--tenant/);
    await expect(refused({ tenant: tenantId })).rejects.toThrow(/--agent: give --agent/);
    await expect(refused({ tenant: tenantId, agent: AGENT.id })).rejects.toThrow(/--agent-version: is required/);
    await expect(refused({ tenant: tenantId, model: "gpt-4o", modelVersion: "x" })).rejects.toThrow(/--model: must be provider\/name/);
    await expect(refused({ tenant: tenantId, agent: AGENT.id, agentVersion: "1", model: "a/b", modelVersion: "x" })).rejects.toThrow(
      /--model: give --agent or --model/,
    );
    const [count] = await graph.read(`MATCH (d:Deployment {tenantId: $tenantId}) RETURN count(d) AS n`, { tenantId });
    expect(count).toEqual({ n: deployments.length });
  });

  it("the CLI: auditgraph deploy names a missing argument; auditgraph query trace-output prints the lineage as JSON", async () => {
    const bin = fileURLToPath(new URL("../packages/cli/bin/auditgraph.js", import.meta.url));
    const env = { ...process.env, AUDITGRAPH_QUEUE: config.queueName, AUDITGRAPH_LEDGER_DIR: config.ledgerDir, AUDITGRAPH_SPOOL_DIR: config.spoolDir };
    const cli = async (...args: string[]) =>
      promisify(execFile)(process.execPath, [bin, ...args], { env }).then(
        ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
        (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
      );
    const bad = await cli("deploy", "--tenant", tenantId, "--model", "fake/x");
    expect(bad.code).toBe(2); // a usage error
    expect(bad.stderr).toMatch(/--model-version: is required with --model/);

    const query = await cli("query", "trace-output", "--param", `tenantId=${tenantId}`, "--param", `outputId=${outputs[3]!.id}`);
    expect(query.code).toBe(0);
    const [row] = JSON.parse(query.stdout) as TraceOutputRow[];
    expect(row).toMatchObject({ output: { id: outputs[3]!.id }, liveAgentVersion: { version: "1.0.0", action: "rollback" } });
  });
});
