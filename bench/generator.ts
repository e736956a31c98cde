/**
 * Synthetic audited traces for the graph bench (and anything else that needs many of them):
 * whole traces of three LangChain agents (a classic tool-calling AgentExecutor's shape), many
 * users and sessions, a few agent versions and model versions rolled out (and one rolled back)
 * over a month, deterministic from a seed.
 *
 * A trace, as `AuditCallbackHandler` records an AgentExecutor run:
 *   chain.start (root, name AgentExecutor)
 *   [retriever.start, retriever.end]                  the research agent: RAG before the model
 *   per tool round (0..3):
 *     llm.start (system prompt, session history, the question, earlier rounds; tools offered)
 *     llm.end   (served model version, usage, cost, tool calls, reasoning steps sometimes)
 *     agent.action (the action log)
 *     tool.start, [retriever.start, retriever.end (documents)], tool.end | tool.error
 *   llm.start, llm.end (the answer), agent.finish, chain.end
 * Traces are interleaved (several in flight, as the traces of concurrent requests are in one
 * tenant's ledger stream); the traces of one session follow each other. `deployment` events
 * are emitted when an agent or model version rolls out. Event ids are UUIDv7 from a synthetic
 * clock that walks through the month, so they sort in emission order; run ids are UUIDv4.
 *
 * This is the full-size sibling of test/helpers.ts `sampleTrace` (one chain, one model call,
 * one tool call) and of bench/ledger.ts `benchEvent` (one tool.end), whose catalog answer the
 * order agent's catalog_lookup returns here.
 */
import { createHash } from "node:crypto";
import {
  SCHEMA_VERSION,
  GENESIS_HASH,
  hashCanonical,
  sealRecord,
  type AuditEvent,
  type EventOf,
  type Message,
  type PlainRecord,
  type ToolCallRequest,
  type ToolDefinition,
} from "@auditgraph/core";
import { benchEvent } from "./ledger.js";

// ---------------------------------------------------------------------------------------------
// deterministic randomness

/** sfc32, seeded from the SHA-256 of the seed text: a fast, well-mixed 32-bit generator. */
export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: string | number) {
    const h = createHash("sha256").update(String(seed)).digest();
    this.a = h.readUInt32LE(0);
    this.b = h.readUInt32LE(4);
    this.c = h.readUInt32LE(8);
    this.d = h.readUInt32LE(12) | 1;
    for (let i = 0; i < 12; i += 1) this.u32();
  }

  u32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** [0, 1) */
  next(): number {
    return this.u32() / 4294967296;
  }

  /** An integer in [min, max]. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(list: readonly T[]): T {
    return list[Math.floor(this.next() * list.length)]!;
  }

  hex(chars: number): string {
    let s = "";
    while (s.length < chars) s += this.u32().toString(16).padStart(8, "0");
    return s.slice(0, chars);
  }

  /** A UUIDv4 (LangChain's run ids). */
  uuid4(): string {
    const h = this.hex(32);
    const variant = ((parseInt(h[16]!, 16) & 0x3) | 0x8).toString(16);
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-${variant}${h.slice(17, 20)}-${h.slice(20, 32)}`;
  }

  /** An OpenAI-style tool-call id. */
  callId(): string {
    const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let s = "call_";
    for (let i = 0; i < 24; i += 1) s += alphabet[this.u32() % alphabet.length];
    return s;
  }
}

/** UUIDv7 ids from a synthetic millisecond clock: the counter in rand_a keeps them monotonic within a millisecond. */
class EventIds {
  private lastMs = -1;
  private seq = 0;

  constructor(private readonly rng: Rng) {}

  next(ms: number): string {
    if (ms <= this.lastMs) {
      ms = this.lastMs;
      this.seq += 1;
      if (this.seq > 0xfff) {
        ms += 1;
        this.seq = 0;
      }
    } else this.seq = 0;
    this.lastMs = ms;
    const t = ms.toString(16).padStart(12, "0");
    const r = this.rng.hex(16);
    const variant = ((parseInt(r[0]!, 16) & 0x3) | 0x8).toString(16);
    return `${t.slice(0, 8)}-${t.slice(8, 12)}-7${this.seq.toString(16).padStart(3, "0")}-${variant}${r.slice(1, 4)}-${r.slice(4, 16)}`;
  }

  /** The clock as the ids have it (it can run ahead of the caller's by a millisecond per 4096 ids). */
  get now(): number {
    return this.lastMs;
  }
}

// ---------------------------------------------------------------------------------------------
// the world: agents, models, rollouts, users, corpora

type AgentKind = "order" | "support" | "research";

interface ModelSpec {
  provider: string;
  name: string;
  /** The class LangChain names the model run after. */
  runName: string;
  params: Record<string, number | string>;
  /** Served versions in rollout order: [version, day it goes live, rollback?]. */
  versions: { version: string; day: number; action: "rollout" | "rollback"; reason?: string }[];
  priceIn: number;
  priceOut: number;
}

const MODELS: Record<string, ModelSpec> = {
  "gpt-4o": {
    provider: "openai",
    name: "gpt-4o",
    runName: "ChatOpenAI",
    params: { temperature: 0.2, max_tokens: 1024, top_p: 1 },
    versions: [
      { version: "gpt-4o-2024-08-06", day: 0, action: "rollout" },
      { version: "gpt-4o-2024-11-20", day: 11.5, action: "rollout", reason: "newer snapshot, better tool use in evals" },
      { version: "gpt-4o-2024-08-06", day: 13.25, action: "rollback", reason: "price answers off by the quantity in 3% of sampled traces" },
      { version: "gpt-4o-2024-11-20", day: 22, action: "rollout", reason: "prompt fixed for quantities; re-rolled" },
    ],
    priceIn: 2.5e-6,
    priceOut: 10e-6,
  },
  "claude-sonnet-4-5": {
    provider: "anthropic",
    name: "claude-sonnet-4-5",
    runName: "ChatAnthropic",
    params: { temperature: 0, max_tokens: 2048 },
    versions: [{ version: "claude-sonnet-4-5-20250929", day: 0, action: "rollout" }],
    priceIn: 3e-6,
    priceOut: 15e-6,
  },
  "gpt-4o-mini": {
    provider: "openai",
    name: "gpt-4o-mini",
    runName: "ChatOpenAI",
    params: { temperature: 0.3, max_tokens: 800 },
    versions: [{ version: "gpt-4o-mini-2024-07-18", day: 0, action: "rollout" }],
    priceIn: 0.15e-6,
    priceOut: 0.6e-6,
  },
};

interface AgentSpec {
  kind: AgentKind;
  id: string;
  name: string;
  model: keyof typeof MODELS;
  /** Share of traces. */
  weight: number;
  versions: { version: string; day: number }[];
  tools: ToolDefinition[];
  system: (version: string) => string;
}

const tool = (name: string, description: string, properties: Record<string, unknown>, required: string[]): ToolDefinition => ({
  name,
  description,
  parameters: { type: "object", properties, required } as ToolDefinition["parameters"],
});

const AGENTS: AgentSpec[] = [
  {
    kind: "order",
    id: "order-assistant",
    name: "Order assistant",
    model: "gpt-4o",
    weight: 0.45,
    versions: [
      { version: "1.4.0", day: 0 },
      { version: "1.5.0", day: 8 },
      { version: "1.5.1", day: 20.5 },
    ],
    tools: [
      tool(
        "catalog_lookup",
        "Look up a product by SKU: title, unit price, stock per warehouse.",
        { sku: { type: "string", description: "product SKU, e.g. SKU-100042" } },
        ["sku"],
      ),
      tool(
        "calculator",
        "Exact arithmetic on two numbers.",
        { operation: { type: "string", enum: ["add", "subtract", "multiply", "divide"] }, a: { type: "number" }, b: { type: "number" } },
        ["operation", "a", "b"],
      ),
      tool("order_status", "The status and delivery estimate of one of the user's orders.", { orderId: { type: "string" } }, ["orderId"]),
    ],
    system: (v) =>
      `You are the order assistant of ACME Retail (release ${v}). Answer questions about products, prices, stock and orders. ` +
      "Use catalog_lookup for every product you mention and calculator for every sum; never guess a price or a stock figure. " +
      "Quote prices in EUR with two decimals. If the user asks about an order, use order_status with the order id they give.",
  },
  {
    kind: "support",
    id: "support-agent",
    name: "Support assistant",
    model: "claude-sonnet-4-5",
    weight: 0.35,
    versions: [
      { version: "2.0.0", day: 0 },
      { version: "2.1.0", day: 14 },
    ],
    tools: [
      tool("search_kb", "Search the support knowledge base; returns the most relevant articles.", { query: { type: "string" } }, ["query"]),
      tool(
        "create_ticket",
        "Open a support ticket for a human agent when the knowledge base does not solve the problem.",
        { summary: { type: "string" }, priority: { type: "string", enum: ["low", "normal", "high"] } },
        ["summary", "priority"],
      ),
    ],
    system: (v) =>
      `You are ACME's customer support assistant (release ${v}). Search the knowledge base before answering; cite the article ids you used. ` +
      "If the articles do not solve the problem, open a ticket with a one-line summary and tell the user its number. Be brief and friendly.",
  },
  {
    kind: "research",
    id: "research-assistant",
    name: "Research assistant",
    model: "gpt-4o-mini",
    weight: 0.2,
    versions: [
      { version: "0.9.0", day: 0 },
      { version: "1.0.0", day: 17 },
    ],
    tools: [tool("web_search", "Search the public web; returns titles, URLs and snippets.", { query: { type: "string" } }, ["query"])],
    system: (v) =>
      `You are a research assistant for ACME's product team (release ${v}). Answer from the internal documents given below; ` +
      "use web_search only for facts the documents do not hold, and say which sources you used.",
  },
];

const TOPICS = [
  "return a damaged item",
  "change my delivery address",
  "reset my account password",
  "apply a discount code at checkout",
  "track a parcel that has not arrived",
  "get an invoice with my company VAT number",
  "cancel a subscription",
  "exchange a product for another size",
  "pay in instalments",
  "register a warranty claim",
  "unsubscribe from the newsletter",
  "delete my customer account",
];
const RESEARCH = [
  "insulated bottles market share in Germany",
  "recycled stainless steel suppliers",
  "return rates by product category",
  "customer complaints about lids",
  "competitor pricing for 750 ml bottles",
  "dishwasher-safe certification requirements",
  "shipping cost per parcel by carrier",
  "seasonality of outdoor products",
];

/** A knowledge-base article (the support agent's retriever gives its id). */
function kbArticle(i: number) {
  const topic = TOPICS[i % TOPICS.length]!;
  return {
    id: `kb-${String(i).padStart(4, "0")}`,
    pageContent:
      `How to ${topic} (article ${i}). Sign in, open "My orders" and choose the order concerned. ` +
      `Follow the steps shown; most requests are handled within ${1 + (i % 4)} working days. ` +
      `If the option is greyed out, the order is older than ${30 + (i % 3) * 30} days: contact support with your order number.`,
    metadata: {
      source: `https://help.acme.example/articles/${i}`,
      section: topic,
      updatedAt: `2025-${String(1 + (i % 12)).padStart(2, "0")}-15`,
      chunk: i % 3,
    },
  };
}

/** An internal document chunk (the research retriever gives no id: the graph keys it by content hash). */
function researchChunk(i: number) {
  const topic = RESEARCH[i % RESEARCH.length]!;
  return {
    pageContent:
      `Internal note ${i} on ${topic}. Figures for Q${1 + (i % 4)}: ${(5 + (i % 37) * 0.7).toFixed(1)}% change against the previous quarter, ` +
      `sample of ${200 + (i % 50) * 13} orders. See the attached sheet for the breakdown by country and channel.`,
    metadata: { source: `drive://product-team/notes/${i}.md`, author: `analyst-${i % 9}`, chunk: i % 5 },
  };
}

const SKUS = 2000;
const sku = (i: number) => `SKU-${String(100_000 + i).padStart(6, "0")}`;
const price = (i: number) => Math.round((9.9 + ((i * 37) % 400) + (i % 7) * 0.45) * 100) / 100;

// ---------------------------------------------------------------------------------------------
// the generator

export interface GeneratorOptions {
  seed: string | number;
  tenantId: string;
  /** Events to emit: whole traces are emitted until at least this many (the last traces in flight are finished). */
  events: number;
  /** Distinct users (default: one per 250 events, at least 10). */
  users?: number;
  /** Traces in flight at once, interleaved in the stream (default 8). */
  concurrency?: number;
  /** The synthetic clock's start (ISO). */
  start?: string;
  /** Days the events span. */
  days?: number;
  /** A uniform random sample of this many output ids (llm.end event ids) is kept (reservoir). */
  sampleOutputs?: number;
}

/** What the generator made, so far. */
export interface GeneratorSummary {
  events: number;
  traces: number;
  sessions: number;
  users: number;
  byType: Record<string, number>;
  outputs: number;
  agentVersions: string[];
  modelVersions: string[];
  /** Model versions that served at least one output. */
  servedModelVersions: string[];
  startedAt: string;
  /** The synthetic clock at the last event. */
  endedAt: string;
}

interface PlannedEvent {
  /** The event without eventId / occurredAt: the clock assigns them when it is emitted. */
  event: Record<string, unknown>;
  /** Milliseconds the clock moves before this event (the run's latency, roughly). */
  gapMs: number;
}

interface Slot {
  /** The session this slot is running: its traces follow each other. */
  sessionId: string;
  userId: string;
  tracesLeft: number;
  /** The last turn of the session (its question and answer), for the next trace's history. */
  history: Message[];
  queue: PlannedEvent[];
}

type Doc = { id?: string; pageContent: string; metadata: Record<string, string | number> };

/** What the user asks, what the agent does about it, and what it answers. */
interface Scenario {
  question: string;
  /** Documents retrieved before the first model call (RAG). */
  context?: Doc[];
  /** The tool rounds: the tool the model asks for, why, and what it answers (a retriever tool's documents). */
  rounds: { tool: string; args: Record<string, string | number>; thought: string; output: string; documents?: Doc[] }[];
  answer: string;
}

/**
 * Emits events in batches (`take(n)`), never holding more than the traces in flight: a million
 * events are generated as they are projected, not built up front.
 */
export class TraceGenerator {
  readonly options: Required<GeneratorOptions>;
  private readonly rng: Rng;
  private readonly sampleRng: Rng;
  private readonly ids: EventIds;
  private readonly startMs: number;
  private readonly msPerEvent: number;
  private readonly slots: Slot[] = [];
  private readonly rollouts: { day: number; event: Record<string, unknown> }[] = [];
  private planned = 0;
  private emitted = 0;
  private clock: number;
  private readonly counts = { traces: 0, sessions: 0, outputs: 0 };
  private readonly byType: Record<string, number> = {};
  private readonly usersSeen = new Set<string>();
  private readonly served = new Set<string>();
  private readonly sample: string[] = [];
  private catalogN = 0;

  constructor(options: GeneratorOptions) {
    this.options = {
      users: Math.max(10, Math.round(options.events / 250)),
      concurrency: 8,
      start: "2026-01-05T00:00:00.000Z",
      days: 30,
      sampleOutputs: 0,
      ...options,
    };
    this.rng = new Rng(`${options.seed}`);
    this.sampleRng = new Rng(`${options.seed}/sample`);
    this.ids = new EventIds(new Rng(`${options.seed}/ids`));
    this.startMs = Date.parse(this.options.start);
    this.clock = this.startMs;
    this.msPerEvent = (this.options.days * 86_400_000) / Math.max(1, this.options.events);
    this.planRollouts();
  }

  /** Whether every event has been emitted. */
  get done(): boolean {
    return this.planned >= this.options.events && this.slots.every((s) => s.queue.length === 0) && this.rollouts.length === 0;
  }

  /** The next up to `n` events of the stream, in order. */
  take(n: number): AuditEvent[] {
    const out: AuditEvent[] = [];
    while (out.length < n) {
      const event = this.nextEvent();
      if (!event) break;
      out.push(event);
    }
    return out;
  }

  /** The sampled output ids (a uniform sample of all llm.end event ids emitted so far). */
  sampledOutputs(): string[] {
    return [...this.sample];
  }

  summary(): GeneratorSummary {
    return {
      events: this.emitted,
      traces: this.counts.traces,
      sessions: this.counts.sessions,
      users: this.usersSeen.size,
      byType: { ...this.byType },
      outputs: this.counts.outputs,
      agentVersions: AGENTS.flatMap((a) => a.versions.map((v) => `${a.id}@${v.version}`)),
      modelVersions: [...new Set(Object.values(MODELS).flatMap((m) => m.versions.map((v) => v.version)))],
      servedModelVersions: [...this.served].sort(),
      startedAt: new Date(this.startMs).toISOString(),
      endedAt: new Date(this.clock).toISOString(),
    };
  }

  // -- emission ----------------------------------------------------------------------------

  private nextEvent(): AuditEvent | undefined {
    // Deployments first, when the clock passes their day.
    const due = this.rollouts[0];
    if (due && this.dayOf(this.clock) >= due.day) {
      this.rollouts.shift();
      return this.stamp(due.event, 0);
    }
    // Fill the slots: a slot whose trace is over starts the session's next trace, or a new session.
    for (let i = 0; i < this.options.concurrency; i += 1) {
      const slot = this.slots[i];
      if (slot && slot.queue.length > 0) continue;
      if (this.planned >= this.options.events) continue;
      if (!slot || slot.tracesLeft === 0) this.slots[i] = this.newSession();
      this.planTrace(this.slots[i]!);
    }
    const busy = this.slots.filter((s) => s.queue.length > 0);
    if (busy.length === 0) {
      // The last deployments (if the clock never reached their day, they are emitted anyway).
      const rest = this.rollouts.shift();
      return rest ? this.stamp(rest.event, 0) : undefined;
    }
    const slot = this.rng.pick(busy);
    const planned = slot.queue.shift()!;
    return this.stamp(planned.event, planned.gapMs);
  }

  private stamp(body: Record<string, unknown>, gapMs: number): AuditEvent {
    // The clock walks at the rate that spreads the events over the span, with the run's own
    // latency (scaled down when the span is short) as jitter.
    this.clock = Math.max(this.clock + this.msPerEvent * (0.45 + this.rng.next() + Math.min(gapMs / 30_000, 0.1)), this.ids.now);
    const ms = Math.floor(this.clock);
    const eventId = this.ids.next(ms);
    const event = { eventId, schemaVersion: SCHEMA_VERSION, occurredAt: new Date(Math.max(ms, this.ids.now)).toISOString(), ...body } as AuditEvent;
    this.emitted += 1;
    this.byType[event.type] = (this.byType[event.type] ?? 0) + 1;
    if (event.type === "llm.end") {
      this.counts.outputs += 1;
      this.served.add(event.model.version ?? event.model.name);
      // Reservoir sampling (Algorithm R) with a generator of its own, so the sample's size does not change the events.
      const k = this.options.sampleOutputs;
      if (k > 0) {
        if (this.sample.length < k) this.sample.push(eventId);
        else {
          const j = Math.floor(this.sampleRng.next() * this.counts.outputs);
          if (j < k) this.sample[j] = eventId;
        }
      }
    }
    return event;
  }

  private dayOf(ms: number): number {
    return (ms - this.startMs) / 86_400_000;
  }

  /** The version of a rollout schedule live at the clock. */
  private liveVersion<T extends { day: number }>(versions: T[]): T {
    const day = this.dayOf(this.clock);
    let live = versions[0]!;
    for (const v of versions) if (v.day <= day) live = v;
    return live;
  }

  private planRollouts(): void {
    const { tenantId } = this.options;
    const common = (name: string) => ({ traceId: this.rng.uuid4(), runId: this.rng.uuid4(), parentRunId: null, sessionId: null, name, tenantId });
    const list: { day: number; event: Record<string, unknown> }[] = [];
    for (const a of AGENTS) {
      for (const [i, v] of a.versions.entries())
        list.push({
          day: v.day,
          event: {
            ...common("auditgraph deploy"),
            type: "deployment",
            payload: {
              target: "agent",
              agentId: a.id,
              agentName: a.name,
              version: v.version,
              action: "rollout",
              ...(i > 0 ? { previousVersion: a.versions[i - 1]!.version } : {}),
              by: "ci-pipeline",
            },
          },
        });
    }
    for (const m of Object.values(MODELS)) {
      for (const [i, v] of m.versions.entries())
        list.push({
          day: v.day,
          event: {
            ...common("auditgraph deploy"),
            type: "deployment",
            payload: {
              target: "model",
              provider: m.provider,
              name: m.name,
              version: v.version,
              action: v.action,
              ...(i > 0 ? { previousVersion: m.versions[i - 1]!.version } : {}),
              ...(v.reason ? { reason: v.reason } : {}),
              by: "platform-team",
            },
          },
        });
    }
    this.rollouts.push(...list.sort((x, y) => x.day - y.day));
  }

  private newSession(): Slot {
    // A few heavy users, a long tail (the square skews the pick towards low indices).
    const u = Math.floor(this.rng.next() ** 2 * this.options.users);
    this.counts.sessions += 1;
    return { sessionId: `sess-${this.rng.hex(16)}`, userId: `user-${String(u).padStart(5, "0")}`, tracesLeft: this.rng.int(1, 4), history: [], queue: [] };
  }

  private pickAgent(): AgentSpec {
    let r = this.rng.next();
    for (const a of AGENTS) {
      r -= a.weight;
      if (r < 0) return a;
    }
    return AGENTS[0]!;
  }

  // -- one trace ---------------------------------------------------------------------------

  private planTrace(slot: Slot): void {
    const rng = this.rng;
    const agent = this.pickAgent();
    const agentVersion = this.liveVersion(agent.versions).version;
    const modelSpec = MODELS[agent.model]!;
    const served = this.liveVersion(modelSpec.versions).version;
    const traceId = rng.uuid4();
    const identity = {
      user: { id: slot.userId, tenantId: this.options.tenantId, roles: ["customer"] },
      agent: { id: agent.id, name: agent.name, version: agentVersion },
    };
    const tags = [`agent:${agent.id}`, `release:${agentVersion}`];
    const common = { traceId, sessionId: slot.sessionId, identity };
    const out: PlannedEvent[] = [];
    const push = (gapMs: number, event: Record<string, unknown>) => out.push({ event: { ...common, ...event }, gapMs });

    const system = agent.system(agentVersion);
    const templateHash = hashCanonical({ agent: agent.id, system });
    const scenario = this.scenario(agent);
    const messages: Message[] = [{ role: "system", content: system }, ...slot.history, { role: "user", content: scenario.question }];

    push(0, {
      type: "chain.start",
      runId: traceId,
      parentRunId: null,
      name: "AgentExecutor",
      tags,
      payload: { inputs: { input: scenario.question, chat_history: slot.history } },
    });

    // The research agent retrieves before its first model call (RAG): the documents go into the system message.
    if (scenario.context) {
      const runId = rng.uuid4();
      push(rng.int(20, 120), {
        type: "retriever.start",
        runId,
        parentRunId: traceId,
        name: "VectorStoreRetriever",
        tags,
        payload: { query: scenario.question },
      });
      push(rng.int(30, 200), {
        type: "retriever.end",
        runId,
        parentRunId: traceId,
        name: "VectorStoreRetriever",
        tags,
        payload: { documents: scenario.context, timing: { latencyMs: rng.int(30, 200) } },
      });
      messages[0] = { role: "system", content: `${system}\n\nDocuments:\n${scenario.context.map((d, i) => `[${i + 1}] ${d.pageContent}`).join("\n")}` };
    }

    const model = { provider: modelSpec.provider, name: modelSpec.name, params: modelSpec.params };
    const servedModel = {
      ...model,
      version: served,
      ...(modelSpec.provider === "openai" ? { fingerprint: `fp_${rng.hex(10)}` } : {}),
    };
    const llmCall = (toolCalls: ToolCallRequest[], text: string, reasoning: EventOf<"llm.end">["payload"]["reasoning"]) => {
      const runId = rng.uuid4();
      const history = messages.map((m) => ({ ...m }));
      push(rng.int(5, 40), {
        type: "llm.start",
        runId,
        parentRunId: traceId,
        name: modelSpec.runName,
        tags,
        model,
        payload: { messages: history, tools: agent.tools, templateHash },
      });
      const inputTokens = Math.ceil(JSON.stringify(history).length / 4) + 40 * agent.tools.length;
      const outputTokens = Math.max(
        1,
        Math.ceil((text.length + JSON.stringify(toolCalls).length + (reasoning?.reduce((n, s) => n + (s.text?.length ?? 0), 0) ?? 0)) / 4),
      );
      const latencyMs = rng.int(350, 2800);
      push(latencyMs, {
        type: "llm.end",
        runId,
        parentRunId: traceId,
        name: modelSpec.runName,
        tags,
        model: servedModel,
        usage: {
          inputTokens,
          outputTokens,
          totalTokens: inputTokens + outputTokens,
          ...(rng.chance(0.3) ? { cacheReadTokens: Math.floor(inputTokens * 0.6) } : {}),
        },
        cost: {
          currency: "USD",
          input: inputTokens * modelSpec.priceIn,
          output: outputTokens * modelSpec.priceOut,
          total: inputTokens * modelSpec.priceIn + outputTokens * modelSpec.priceOut,
        },
        payload: {
          output: { text, toolCalls, finishReason: toolCalls.length > 0 ? "tool_calls" : "stop" },
          ...(reasoning ? { reasoning } : {}),
          timing: { latencyMs, timeToFirstTokenMs: Math.min(latencyMs, rng.int(180, 900)) },
        },
      });
      messages.push({ role: "assistant", content: text, ...(toolCalls.length > 0 ? { toolCalls } : {}) });
      return runId;
    };

    for (const round of scenario.rounds) {
      const call: ToolCallRequest = { id: rng.callId(), name: round.tool, args: round.args };
      const thought = round.thought;
      const reasoning = rng.chance(0.6)
        ? [
            { index: 0, kind: "reasoning" as const, text: thought },
            { index: 1, kind: "tool_call" as const, toolCall: call },
          ]
        : undefined;
      const llmRunId = llmCall([call], "", reasoning);
      const input = JSON.stringify(round.args);
      push(rng.int(2, 20), {
        type: "agent.action",
        runId: traceId,
        parentRunId: null,
        tags,
        payload: { tool: round.tool, toolInput: round.args, log: `${thought}\nInvoking: \`${round.tool}\` with \`${input}\``, llmRunId },
      });
      const toolRun = rng.uuid4();
      push(rng.int(1, 10), { type: "tool.start", runId: toolRun, parentRunId: traceId, name: round.tool, tags, payload: { toolCallId: call.id, input } });
      let output = round.output;
      if (round.documents) {
        // A retriever tool: the retriever runs inside the tool run.
        const retrieverRun = rng.uuid4();
        const query = String((round.args as { query: string }).query);
        push(rng.int(5, 30), { type: "retriever.start", runId: retrieverRun, parentRunId: toolRun, name: "KnowledgeBaseRetriever", tags, payload: { query } });
        push(rng.int(30, 250), {
          type: "retriever.end",
          runId: retrieverRun,
          parentRunId: toolRun,
          name: "KnowledgeBaseRetriever",
          tags,
          payload: { documents: round.documents, timing: { latencyMs: rng.int(30, 250) } },
        });
        output = round.documents.map((d) => `[${d.id ?? "doc"}] ${d.pageContent}`).join("\n\n");
      }
      const toolMs = rng.int(15, 400);
      if (rng.chance(0.02)) {
        push(toolMs, {
          type: "tool.error",
          runId: toolRun,
          parentRunId: traceId,
          name: round.tool,
          tags,
          payload: { toolCallId: call.id, error: { name: "ToolTimeoutError", message: `${round.tool} did not answer within 5000 ms` } },
        });
        output = `Error: ${round.tool} did not answer within 5000 ms`;
      } else {
        push(toolMs, {
          type: "tool.end",
          runId: toolRun,
          parentRunId: traceId,
          name: round.tool,
          tags,
          payload: { toolCallId: call.id, output, timing: { latencyMs: toolMs } },
        });
      }
      messages.push({ role: "tool", content: output, toolCallId: call.id!, name: round.tool });
    }

    const finalReasoning = rng.chance(0.3)
      ? [{ index: 0, kind: "reasoning" as const, text: "I have what I need; answer briefly and cite what I used." }]
      : undefined;
    llmCall([], scenario.answer, finalReasoning);
    push(rng.int(1, 10), {
      type: "agent.finish",
      runId: traceId,
      parentRunId: null,
      tags,
      payload: { returnValues: { output: scenario.answer }, log: scenario.answer },
    });
    push(rng.int(1, 10), { type: "chain.end", runId: traceId, parentRunId: null, tags, payload: { outputs: { output: scenario.answer } } });

    slot.queue = out;
    slot.tracesLeft -= 1;
    slot.history = [
      { role: "user", content: scenario.question },
      { role: "assistant", content: scenario.answer },
    ];
    this.planned += out.length;
    this.counts.traces += 1;
    this.usersSeen.add(slot.userId);
  }

  private scenario(agent: AgentSpec): Scenario {
    const rng = this.rng;
    if (agent.kind === "order") {
      const i = rng.int(0, SKUS - 1);
      const qty = rng.int(1, 6);
      const catalog = (benchEvent(this.catalogN++) as EventOf<"tool.end">).payload.output as string;
      const unit = price(i);
      const rounds: Scenario["rounds"] = [
        {
          tool: "catalog_lookup",
          args: { sku: sku(i) },
          thought: `The user asks about ${sku(i)}; I need its price and stock.`,
          output: catalog.replace(/SKU-\d{6}/, sku(i)),
        },
      ];
      if (qty > 1) {
        rounds.push({
          tool: "calculator",
          args: { operation: "multiply", a: qty, b: unit },
          thought: `${qty} units at ${unit} EUR: I compute the total exactly.`,
          output: (Math.round(qty * unit * 100) / 100).toFixed(2),
        });
      }
      const order = rng.chance(0.25) ? `ORD-${rng.int(100_000, 999_999)}` : undefined;
      if (order) {
        rounds.push({
          tool: "order_status",
          args: { orderId: order },
          thought: `The user also asks about order ${order}.`,
          output: JSON.stringify({
            orderId: order,
            status: rng.pick(["packed", "shipped", "out for delivery", "delivered"]),
            eta: `2026-02-0${rng.int(1, 9)}`,
            carrier: "DHL",
          }),
        });
      }
      const total = (Math.round(qty * unit * 100) / 100).toFixed(2);
      return {
        question: `What do ${qty} × ${sku(i)} cost in total, and are they in stock?${order ? ` Also, where is my order ${order}?` : ""}`,
        rounds,
        answer: `${qty} × ${sku(i)} cost ${total} EUR in total; they are in stock in FRA-1 and AMS-2.${order ? ` Your order ${order} is on its way.` : ""}`,
      };
    }
    if (agent.kind === "support") {
      const topic = rng.pick(TOPICS);
      const docs = Array.from({ length: rng.int(3, 5) }, () => kbArticle(rng.int(0, 399)));
      const rounds: Scenario["rounds"] = [
        {
          tool: "search_kb",
          args: { query: `how to ${topic}` },
          thought: `The user wants to ${topic}; the knowledge base should have an article.`,
          output: "",
          documents: docs,
        },
      ];
      const ticket = rng.chance(0.3);
      if (ticket) {
        rounds.push({
          tool: "create_ticket",
          args: { summary: `Customer cannot ${topic}: option greyed out`, priority: rng.pick(["low", "normal", "high"]) },
          thought: "The articles do not cover this case; a human needs to look at it.",
          output: JSON.stringify({ ticketId: `T-${rng.int(10_000, 99_999)}`, queue: "tier-2" }),
        });
      }
      return {
        question: `Hi, how do I ${topic}? I tried from the app but it did not work.`,
        rounds,
        answer: ticket
          ? `I could not find a way to ${topic} from the app for your order, so I opened a ticket; a colleague will contact you within one working day.`
          : `To ${topic}: open "My orders", choose the order and follow the steps (see ${docs[0]!.id}). It is usually handled within a few working days.`,
      };
    }
    const topic = rng.pick(RESEARCH);
    const context = Array.from({ length: rng.int(2, 4) }, () => researchChunk(rng.int(0, 299)));
    const rounds: Scenario["rounds"] = [];
    if (rng.chance(0.5)) {
      rounds.push({
        tool: "web_search",
        args: { query: `${topic} 2025` },
        thought: "The internal notes do not give the market context; I search the web.",
        output: JSON.stringify(
          Array.from({ length: 3 }, (_, k) => ({
            title: `${topic} — report ${k + 1}`,
            url: `https://news.example.com/${rng.hex(8)}`,
            snippet: `A ${2023 + k} study of ${topic} finds steady growth.`,
          })),
        ),
      });
    }
    return {
      question: `Summarise what we know about ${topic}.`,
      context,
      rounds,
      answer: `From ${context.length} internal notes${rounds.length ? " and a web search" : ""}: ${topic} changed by about ${(3 + rng.next() * 9).toFixed(1)}% quarter on quarter; details in the sources cited.`,
    };
  }
}

// ---------------------------------------------------------------------------------------------
// records

/**
 * Ledger-like records of one stream, built the way the ledger seals them (position, chain hash),
 * without a ledger: `seal` stamps a batch with one worker time, as the worker does.
 */
export class RecordChain {
  position = 0;
  prevHash = GENESIS_HASH;

  constructor(readonly streamId: string) {}

  seal(events: AuditEvent[], recordedAt: string): PlainRecord[] {
    return events.map((event) => {
      const record = sealRecord({ position: this.position, streamId: this.streamId, recordedAt, prevHash: this.prevHash, event });
      this.position += 1;
      this.prevHash = record.hash;
      return record as PlainRecord;
    });
  }
}
