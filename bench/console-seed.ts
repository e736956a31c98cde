/**
 * What bench/console.ts loads before it times the console's pages: an inbox full of open
 * escalations, one long trace, and policy flags on the 1M-event search graph. Every event is one
 * the worker could have appended (flags and escalations are built by the worker's own
 * `raisedEvents` / `heldEscalation`), checked against EventSchema, appended to the real ledger
 * and projected through `Graph.project`, as the worker and the console's access events are.
 */
import { createHash } from "node:crypto";
import {
  SCHEMA_VERSION,
  newEventId,
  parseEvent,
  streamIdFor,
  type AuditEvent,
  type ConcernKind,
  type EventOf,
  type Message,
  type PlainRecord,
  type Severity,
  type UserEvent,
} from "@auditgraph/core";
import type { Graph } from "@auditgraph/graph";
import type { Ledger } from "@auditgraph/ledger";
import { heldEscalation, raisedEvents } from "@auditgraph/worker";
import { Rng, TraceGenerator } from "./generator.js";

const POLICY_SET_HASH = createHash("sha256").update("auditgraph bench/console policy set").digest("hex");
// Reasons as policies build them: from settings and counts, never from the event.
const POLICIES = [
  { id: "prompt-injection", reason: "tool output carries an instruction to the model (1 marker)" },
  { id: "pii-output", reason: "output holds 2 personal data values (email 1, phone 1)" },
  { id: "cost-ceiling", reason: "trace cost over the 0.50 USD ceiling" },
  { id: "tool-guard", reason: "a high-impact tool was called without a prior lookup" },
] as const;
/** The events an escalation is raised on, and what it is then about. */
const KINDS: Partial<Record<AuditEvent["type"], ConcernKind>> = {
  "llm.end": "output",
  "llm.start": "prompt",
  "tool.start": "tool_call",
  "retriever.end": "document",
};

const hasIdentity = (e: AuditEvent): e is UserEvent => "identity" in e;

function finding(event: UserEvent, kind: ConcernKind, policy: (typeof POLICIES)[number], severity: Severity, action: "flag" | "escalate") {
  return {
    policyId: policy.id,
    policyVersion: "1",
    policySetHash: POLICY_SET_HASH,
    severity,
    action,
    concerns: { eventId: event.eventId, runId: event.runId, kind, traceId: event.traceId },
    reason: policy.reason,
    evidence: { fields: kind === "output" ? ["payload.output.text"] : [], measures: { matches: 1 } },
  };
}

/** A call held for a reviewer (its `held` flag, as the agent records it) and the escalation the worker opens for it. */
function heldCall(event: EventOf<"tool.start">, deadline: string): AuditEvent[] {
  const policyId = "tool-guard";
  const flag = {
    eventId: newEventId(),
    schemaVersion: SCHEMA_VERSION,
    type: "policy.flag",
    occurredAt: event.occurredAt,
    traceId: event.traceId,
    runId: event.runId,
    parentRunId: event.parentRunId,
    sessionId: event.sessionId,
    identity: event.identity,
    name: policyId,
    payload: {
      policyId,
      policyVersion: "1",
      policySetHash: POLICY_SET_HASH,
      // A call that blocks an agent until someone decides: the most urgent kind of row.
      severity: "critical",
      action: "hold",
      concerns: { eventId: event.eventId, runId: event.runId, kind: "tool_call" },
      reason: "a high-impact tool waits for a reviewer",
      evidence: { fields: ["payload.input"], measures: {} },
      outcome: "held",
      hold: { holdId: `${event.runId}:${policyId}`, deadline, defaultDecision: "deny" },
    },
  };
  const parsed = parseEvent(flag);
  if (!parsed.success) throw new Error(`held flag does not pass EventSchema: ${parsed.error.message}`);
  const held = parsed.data as EventOf<"policy.flag">;
  return [held, heldEscalation(held)];
}

/** Appends a batch to the tenant's stream and projects what the ledger returned (the records a worker would project). */
async function appendAndProject(ledger: Ledger, graph: Graph, tenantId: string, events: AuditEvent[]): Promise<PlainRecord[]> {
  const { records } = await ledger.append(streamIdFor(tenantId), events);
  // No key store: every record is plain.
  await graph.project(records as PlainRecord[]);
  return records as PlainRecord[];
}

export interface SeededInbox {
  tenantId: string;
  /** Trace events, flags and escalations appended and projected. */
  events: number;
  traces: number;
  escalations: number;
  held: number;
  bySeverity: Record<string, number>;
  seconds: number;
}

/**
 * `escalations` open escalations in `tenantId`: generated traces (bench/generator.ts), and on
 * their model outputs, prompts, tool calls and retrievals, one after another until the count is
 * reached, a policy finding that escalates (its flag and `escalation.opened`). `held` of them are
 * held tool calls (critical) whose hold is still waiting (a deadline hours ahead), which the inbox
 * shows with their arguments (read from the ledger, an access event each) and buttons.
 */
export async function seedInbox(
  ledger: Ledger,
  graph: Graph,
  o: { tenantId: string; escalations: number; held: number; seed: string; batch: number; log: (line: string) => void },
): Promise<SeededInbox> {
  const t0 = performance.now();
  const rng = new Rng(`${o.seed}/inbox`);
  // Most events of a trace are eligible (about 60%): twice the count is enough, whole traces are finished after it.
  const generator = new TraceGenerator({ seed: `${o.seed}/inbox`, tenantId: o.tenantId, events: Math.max(200, o.escalations * 2) });
  const deadline = new Date(Date.now() + 6 * 3_600_000).toISOString();
  const bySeverity: Record<string, number> = {};
  let escalations = 0;
  let held = 0;
  let events = 0;
  let nextReport = 0.1;
  for (;;) {
    const generated = generator.take(o.batch);
    if (generated.length === 0) break;
    const out: AuditEvent[] = [];
    for (const e of generated) {
      out.push(e);
      const kind = KINDS[e.type];
      if (escalations >= o.escalations || !kind || !hasIdentity(e)) continue;
      // Spread over the seeding, so they are not all the oldest.
      if (e.type === "tool.start" && held < Math.ceil(((escalations + 1) * o.held) / o.escalations)) {
        out.push(...heldCall(e, deadline));
        held += 1;
        bySeverity.critical = (bySeverity.critical ?? 0) + 1;
      } else {
        const r = rng.next();
        const severity: Severity = r < 0.05 ? "critical" : r < 0.6 ? "high" : "medium";
        out.push(...raisedEvents(e, finding(e, kind, rng.pick(POLICIES), severity, "escalate"), "high"));
        bySeverity[severity] = (bySeverity[severity] ?? 0) + 1;
      }
      escalations += 1;
    }
    await appendAndProject(ledger, graph, o.tenantId, out);
    events += out.length;
    if (escalations / o.escalations >= nextReport) {
      o.log(
        `  inbox seed: ${escalations.toLocaleString("en-US")} escalations, ${events.toLocaleString("en-US")} events appended and projected, ${((performance.now() - t0) / 1000).toFixed(0)} s`,
      );
      while (nextReport <= escalations / o.escalations) nextReport += 0.1;
    }
  }
  const [row] = await graph.read(`MATCH (e:Escalation {tenantId: $tenantId}) WHERE e.state IN ['open', 'acknowledged'] RETURN count(e) AS n`, {
    tenantId: o.tenantId,
  });
  if (Number(row?.n) !== escalations) throw new Error(`inbox seed: ${escalations} escalations appended, the graph has ${String(row?.n)} open`);
  return { tenantId: o.tenantId, events, traces: generator.summary().traces, escalations, held, bySeverity, seconds: (performance.now() - t0) / 1000 };
}

const TOOLS = [
  {
    name: "catalog_lookup",
    description: "Look up a product by SKU: title, unit price, stock per warehouse.",
    parameters: { type: "object", properties: { sku: { type: "string" } }, required: ["sku"] },
  },
  {
    name: "search_kb",
    description: "Search the support knowledge base.",
    parameters: { type: "object", properties: { query: { type: "string" } }, required: ["query"] },
  },
];

/**
 * One trace of exactly `runs` runs, as AuditCallbackHandler records a long AgentExecutor run:
 * the root chain; model calls (each sent the whole conversation so far, as an agent does), each
 * asking for a tool; tool runs, every fourth a knowledge-base search with a retriever run inside
 * it; a final model call; agent.action / agent.finish on the root. Run times walk a synthetic clock.
 */
export function longTrace(tenantId: string, runs: number, seed: string): UserEvent[] {
  if (runs < 2) throw new Error("a trace of at least 2 runs (the root and its answer)");
  const rng = new Rng(`${seed}/trace`);
  const traceId = rng.uuid4();
  const identity = { user: { id: "user-bench-long", tenantId }, agent: { id: "order-assistant", name: "Order assistant", version: "1.5.1" } };
  const common = { schemaVersion: SCHEMA_VERSION, traceId, sessionId: `sess-${rng.hex(16)}`, identity, tags: ["agent:order-assistant"] };
  let clock = Date.now() - 3_600_000;
  const events: Record<string, unknown>[] = [];
  const push = (gapMs: number, e: Record<string, unknown>) => {
    clock += gapMs;
    events.push({ eventId: newEventId(), occurredAt: new Date(clock).toISOString(), ...common, ...e });
  };
  const model = { provider: "openai", name: "gpt-4o", params: { temperature: 0.2 } };
  const served = { ...model, version: "gpt-4o-2024-11-20" };
  const question = "Check stock and price for every SKU on my quote and tell me which ones ship this week.";
  const messages: Message[] = [
    { role: "system", content: "You are the order assistant of ACME Retail. Use catalog_lookup for every product and search_kb for policies." },
    { role: "user", content: question },
  ];
  const llm = (toolCalls: { id: string; name: string; args: Record<string, string> }[], text: string) => {
    const runId = rng.uuid4();
    push(rng.int(5, 30), {
      type: "llm.start",
      runId,
      parentRunId: traceId,
      name: "ChatOpenAI",
      model,
      payload: { messages: messages.map((m) => ({ ...m })), tools: TOOLS },
    });
    const inputTokens = Math.ceil(JSON.stringify(messages).length / 4);
    const outputTokens = 20 + text.length / 4;
    const latencyMs = rng.int(400, 2500);
    push(latencyMs, {
      type: "llm.end",
      runId,
      parentRunId: traceId,
      name: "ChatOpenAI",
      model: served,
      usage: { inputTokens, outputTokens: Math.ceil(outputTokens), totalTokens: inputTokens + Math.ceil(outputTokens) },
      cost: { currency: "USD", input: inputTokens * 2.5e-6, output: outputTokens * 10e-6, total: inputTokens * 2.5e-6 + outputTokens * 10e-6 },
      payload: {
        output: { text, toolCalls, finishReason: toolCalls.length ? "tool_calls" : "stop" },
        ...(toolCalls.length
          ? { reasoning: [{ index: 0, kind: "reasoning", text: `Next I need ${toolCalls[0]!.name} for ${JSON.stringify(toolCalls[0]!.args)}.` }] }
          : {}),
        timing: { latencyMs },
      },
    });
    messages.push({ role: "assistant", content: text, ...(toolCalls.length ? { toolCalls } : {}) });
    return runId;
  };
  const retriever = (parentRunId: string, query: string) => {
    const runId = rng.uuid4();
    push(rng.int(5, 20), { type: "retriever.start", runId, parentRunId, name: "KnowledgeBaseRetriever", payload: { query } });
    const documents = Array.from({ length: 3 }, (_, k) => ({
      id: `kb-${rng.int(0, 399)}`,
      pageContent: `Article ${k}: shipping cut-off is 14:00 on working days; bulk orders ship from FRA-1.`,
      metadata: { chunk: k },
    }));
    push(rng.int(30, 200), { type: "retriever.end", runId, parentRunId, name: "KnowledgeBaseRetriever", payload: { documents } });
    return documents;
  };

  push(0, { type: "chain.start", runId: traceId, parentRunId: null, name: "AgentExecutor", payload: { inputs: { input: question } } });
  // The root and the final model call are two runs; a round is a model call and a tool (+ a retriever every fourth).
  let left = runs - 2;
  for (let round = 0; left >= 2; round += 1) {
    const search = round % 4 === 3 && left >= 3;
    const sku = `SKU-${100_000 + rng.int(0, 1999)}`;
    const call: { id: string; name: string; args: Record<string, string> } = search
      ? { id: rng.callId(), name: "search_kb", args: { query: `shipping time for ${sku}` } }
      : { id: rng.callId(), name: "catalog_lookup", args: { sku } };
    const llmRunId = llm([call], "");
    push(rng.int(1, 5), {
      type: "agent.action",
      runId: traceId,
      parentRunId: null,
      payload: { tool: call.name, toolInput: call.args, log: `Invoking: \`${call.name}\``, llmRunId },
    });
    const toolRun = rng.uuid4();
    push(rng.int(1, 5), {
      type: "tool.start",
      runId: toolRun,
      parentRunId: traceId,
      name: call.name,
      payload: { toolCallId: call.id, input: JSON.stringify(call.args) },
    });
    const output = search
      ? retriever(toolRun, call.args.query!)
          .map((d) => `[${d.id}] ${d.pageContent}`)
          .join("\n")
      : JSON.stringify({
          sku,
          title: `Insulated bottle ${sku}`,
          unitPrice: 9.9 + rng.int(0, 400),
          currency: "EUR",
          stock: { "FRA-1": rng.int(0, 500), "AMS-2": rng.int(0, 500) },
        });
    push(rng.int(15, 300), { type: "tool.end", runId: toolRun, parentRunId: traceId, name: call.name, payload: { toolCallId: call.id, output } });
    messages.push({ role: "tool", content: output, toolCallId: call.id, name: call.name });
    left -= search ? 3 : 2;
  }
  // An odd run left: a retrieval on the root before the answer (RAG).
  if (left === 1) retriever(traceId, question);
  const answer = "All SKUs on your quote are in stock; the ones in FRA-1 ship this week.";
  llm([], answer);
  push(2, { type: "agent.finish", runId: traceId, parentRunId: null, payload: { returnValues: { output: answer }, log: answer } });
  push(2, { type: "chain.end", runId: traceId, parentRunId: null, payload: { outputs: { output: answer } } });
  return events.map((e) => {
    const parsed = parseEvent(e);
    if (!parsed.success) throw new Error(`long trace: ${String(e.type)} does not pass EventSchema: ${parsed.error.message}`);
    return parsed.data as UserEvent;
  });
}

/** The long trace appended (one batch) and projected; its runs as the graph counts them are checked. */
export async function seedTrace(ledger: Ledger, graph: Graph, o: { tenantId: string; runs: number; seed: string }) {
  const events = longTrace(o.tenantId, o.runs, o.seed);
  const traceId = events[0]!.traceId;
  const records = await appendAndProject(ledger, graph, o.tenantId, events);
  const runs = new Set(events.map((e) => e.runId)).size;
  if (runs !== o.runs) throw new Error(`long trace: ${runs} runs, wanted ${o.runs}`);
  return { traceId, events: events.length, runs, bytes: records.reduce((n, r) => n + Buffer.byteLength(JSON.stringify(r)), 0) };
}

/**
 * For the search graph: adds a `flagged` finding (medium, no escalation) on a share of the model
 * outputs, so the explorer's flag filter has flagged traces to find, and keeps a uniform sample of
 * root runs (trace id, user) for the searches and the baseline lookups.
 */
export function searchDecorator(seed: string, flagShare: number, sampleSize: number) {
  const rng = new Rng(`${seed}/flags`);
  const sampleRng = new Rng(`${seed}/trace-sample`);
  const sample: { traceId: string; userId: string }[] = [];
  let roots = 0;
  let flags = 0;
  const decorate = (events: AuditEvent[]): AuditEvent[] => {
    const out: AuditEvent[] = [];
    for (const e of events) {
      out.push(e);
      if (!hasIdentity(e)) continue;
      if (e.type === "chain.start" && e.parentRunId === null) {
        roots += 1;
        const item = { traceId: e.traceId, userId: e.identity.user.id };
        if (sample.length < sampleSize) sample.push(item);
        else {
          const j = Math.floor(sampleRng.next() * roots);
          if (j < sampleSize) sample[j] = item;
        }
      } else if (e.type === "llm.end" && rng.chance(flagShare)) {
        out.push(...raisedEvents(e, finding(e, "output", rng.pick(POLICIES), "medium", "flag"), "high"));
        flags += 1;
      }
    }
    return out;
  };
  return { decorate, sample: () => [...sample], flags: () => flags };
}
