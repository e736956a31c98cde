import { mkdir, mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createHash, randomUUID } from "node:crypto";
import { beforeAll, describe, expect, it } from "vitest";
import { AIMessage, ToolMessage, type BaseMessage } from "@langchain/core/messages";
import { fakeModel } from "@langchain/core/testing";
import { tool, type StructuredToolInterface } from "@langchain/core/tools";
import type { BaseChatModel } from "@langchain/core/language_models/chat_models";
import { createAgent } from "langchain";
import { z } from "zod";
import { streamIdFor } from "@auditgraph/core";
import { AuditCallbackHandler } from "@auditgraph/langchain";
import { CheckpointSigner, SegmentLedger, generateSigningKey } from "@auditgraph/ledger";
import {
  ReviewSchema,
  baselineVersionsOf,
  createSnapshot,
  readReplaySubject,
  readResults,
  readSnapshotFile,
  readSnapshot,
  replaySnapshot,
  review,
  reviewHtml,
  reviewMarkdown,
  snapshotIdOf,
  subjectRows,
  verifySnapshot,
  wordDiff,
  writeNumberedReview,
  writeReplaySubject,
  writeSnapshot,
  type CandidateContext,
  type ReplaySubject,
  type Snapshot,
} from "@auditgraph/replay";
import { Collect } from "../../../test/fixtures/collect.js";

const PRICES: Record<string, number> = { "KB-ERGO-2": 89.5, "MS-VERT-1": 39.9, "DK-STAND-3": 349 };
const lookup = tool(({ sku }) => JSON.stringify({ sku, priceEur: PRICES[sku] }), {
  name: "catalog_lookup",
  description: "Price of a product by SKU",
  schema: z.object({ sku: z.string() }),
});
const calculator = tool(({ a, b }) => String(Math.round(a * b * 100) / 100), {
  name: "calculator",
  description: "Multiplies two numbers",
  schema: z.object({ a: z.number(), b: z.number() }),
});

const lastTool = (messages: BaseMessage[]) => [...messages].reverse().find((m) => ToolMessage.isInstance(m))!.text;
const question = (messages: BaseMessage[]) => {
  const text = messages.find((m) => m.type === "human")!.text;
  const [, count, sku] = /(\d+) x (\S+)/.exec(text)!;
  return { count: Number(count), sku: sku! };
};
const usage = { input_tokens: 10, output_tokens: 5, total_tokens: 15 };

/** The agent's model, scripted as a real one would act; `answer` is where versions differ. */
function scriptedModel(answer: (total: string, sku: string) => string, skipLookup = false) {
  const model = fakeModel();
  if (!skipLookup)
    model.respond(
      (m) =>
        new AIMessage({
          content: "",
          usage_metadata: usage,
          tool_calls: [{ id: "c1", name: "catalog_lookup", args: { sku: question(m).sku }, type: "tool_call" }],
        }),
    );
  model
    .respond((m) => {
      const price = skipLookup ? 100 : (JSON.parse(lastTool(m)) as { priceEur: number }).priceEur;
      return new AIMessage({
        content: "",
        usage_metadata: usage,
        tool_calls: [{ id: "c2", name: "calculator", args: { a: question(m).count, b: price }, type: "tool_call" }],
      });
    })
    .respond((m) => new AIMessage({ content: answer(lastTool(m), question(m).sku), usage_metadata: usage }));
  return model;
}

const v1Answer = (total: string, sku: string) => `The total for ${sku} is ${total} EUR.`;
const agentOf = (ctx: CandidateContext | undefined, model: BaseChatModel, systemPrompt = "You are the order assistant.") =>
  createAgent({ model: ctx?.model ?? model, tools: ctx ? ctx.tools([lookup, calculator]) : ([lookup, calculator] as StructuredToolInterface[]), systemPrompt });
const original = (ctx?: CandidateContext) => agentOf(ctx, scriptedModel(v1Answer));

const tenantId = `t-${randomUUID().slice(0, 8)}`;
const agentV1 = { id: "orders", name: "Order assistant", version: "1.0.0" };
const QUESTIONS = ["3 x KB-ERGO-2", "2 x MS-VERT-1", "1 x DK-STAND-3"];
let ledger: SegmentLedger;
let publicKeyPem: string;
let snapshot: Snapshot;
let dir: string;
/** What the reviews below compared: this snapshot, replayed as version 2.0.0. */
let subject: ReplaySubject;
const operator = "auditor-1";

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "auditgraph-replay-"));
  const keys = generateSigningKey();
  publicKeyPem = keys.publicKeyPem;
  ledger = new SegmentLedger(join(dir, "ledger"), { signer: new CheckpointSigner(keys.privateKeyPem) });
  const transport = new Collect();
  const handler = new AuditCallbackHandler({ agent: agentV1 }, transport);
  for (const [i, q] of QUESTIONS.entries()) {
    await original().invoke(
      { messages: [{ role: "user", content: `What do ${q} cost?` }] },
      { callbacks: [handler], metadata: { auditgraph_user_id: `u${i}`, auditgraph_tenant_id: tenantId, auditgraph_session_id: `s${i}` } },
    );
  }
  await ledger.append(streamIdFor(tenantId), transport.events as never);
  snapshot = await createSnapshot(ledger, { tenantId, agentVersion: "1.0.0" });
  const file = join(dir, "subject-snap.json");
  await writeSnapshot(file, snapshot);
  const { ref } = await readSnapshotFile(file);
  subject = {
    snapshot: ref,
    baselineVersions: await baselineVersionsOf(snapshot),
    candidateVersion: "2.0.0",
    traceOrder: snapshot.traces.map((t) => t.traceId),
  };
});

const replay = (agent: (ctx: CandidateContext) => ReturnType<typeof original>, extra: Partial<Parameters<typeof replaySnapshot>[0]> = {}) =>
  replaySnapshot({ snapshot, agent, handlerOptions: { agent: { ...agentV1, version: "2.0.0" } }, transport: new Collect(), concurrency: 2, ...extra });

describe("snapshots", () => {
  it("holds every recorded trace, provably, and verifies with the public key", async () => {
    expect(snapshot.manifest.traceCount).toBe(3);
    expect(snapshot.manifest.recordCount).toBe(snapshot.traces.reduce((n, t) => n + t.records.length, 0));
    const file = join(dir, "snap.json");
    await writeSnapshot(file, snapshot);
    expect(verifySnapshot(await readSnapshot(file), publicKeyPem)).toMatchObject({ ok: true, traces: 3 });
    // The one-pass proofs are the ledger's own.
    const first = snapshot.traces[0]!.records[2]!;
    expect((await ledger.prove(first.record.event.eventId)).proof).toEqual(first.proof);
  });

  it("fails verification when a record is altered, naming it", async () => {
    const altered = JSON.parse(JSON.stringify(snapshot)) as Snapshot;
    const entry = altered.traces[1]!.records[3]!;
    (entry.record.event as Record<string, unknown>).name = "edited";
    const report = verifySnapshot(altered, publicKeyPem);
    expect(report.ok).toBe(false);
    expect(report.failure).toMatchObject({ traceId: altered.traces[1]!.traceId, eventId: entry.record.event.eventId });
    const miscounted = { ...snapshot, manifest: { ...snapshot.manifest, recordCount: 1 } };
    expect(verifySnapshot(miscounted, publicKeyPem).failure?.reason).toMatch(/recordCount/);
    expect(verifySnapshot(snapshot, generateSigningKey().publicKeyPem).ok).toBe(false);
  });

  it("selects by filter: another agent version selects nothing", async () => {
    expect((await createSnapshot(ledger, { tenantId, agentVersion: "9.9.9" })).traces).toHaveLength(0);
    const one = snapshot.traces[1]!.traceId;
    expect((await createSnapshot(ledger, { traceIds: [one] })).traces.map((t) => t.traceId)).toEqual([one]);
  });
});

describe("replay and review", () => {
  it("control: the original agent with the recorded model reproduces every trace", async () => {
    const { results } = await replay(original, { control: true });
    expect(results.map((r) => r.reproduced)).toEqual([true, true, true]);
    const r = await review(results, { subject, operator, thresholds: { minOutputMatchRate: 1, minTrajectoryMatchRate: 1, maxDivergences: 0 } });
    expect(r.gate).toEqual({ passed: true, failures: [] });
    expect(r.aggregate.reproduced).toBe(3);
  });

  it("a candidate with a new prompt that answers differently on one trace: the review shows it and the gate fails", async () => {
    const candidate = (ctx: CandidateContext) =>
      agentOf(
        ctx,
        scriptedModel((total, sku) => (sku === "MS-VERT-1" ? `${sku}: ${total}` : v1Answer(total, sku))),
        "You are terse.",
      );
    const transport = new Collect();
    const { results } = await replay(candidate, { transport });
    const r = await review(results, { subject, operator, thresholds: { minOutputMatchRate: 1 } });
    expect(r.traces.map((t) => t.output.exact)).toEqual([true, false, true]);
    expect(r.traces.every((t) => t.trajectory.strict)).toBe(true);
    expect(r.aggregate.divergences).toBe(0);
    expect(r.gate.passed).toBe(false);
    expect(r.gate.failures[0]).toMatch(/output match rate/);
    expect(reviewMarkdown(r)).toContain("differs");
    const html = reviewHtml(r);
    expect(html).toContain("Gate: FAILED");
    expect(html).toContain("<svg");
    expect(html).toContain("<del>The total for MS-VERT-1 is</del> <ins>MS-VERT-1:</ins> 79.8 <del>EUR.</del>");
    expect(html).not.toMatch(/<script|https?:\/\//);
    // The replay runs are audited as the candidate's version, linked to their originals.
    const root = transport.events.find((e) => e.traceId === results[1]!.replayTraceId && e.type === "chain.start" && e.parentRunId === null)!;
    expect(root.tags).toContain(`auditgraph:replay-of:${results[1]!.originalTraceId}`);
    expect("identity" in root && root.identity).toMatchObject({ user: { id: "u1", tenantId }, agent: { version: "2.0.0" } });
    // Without thresholds on outputs, the same review passes.
    expect((await review(results, { subject, operator, thresholds: { minTrajectoryMatchRate: 1 } })).gate.passed).toBe(true);
  });

  it("a candidate that calls a different tool: trajectory mismatch and a divergence", async () => {
    const candidate = (ctx: CandidateContext) => agentOf(ctx, scriptedModel(v1Answer, true));
    const { results } = await replay(candidate, { onMismatch: "live" });
    const r = await review(results, { subject, operator, thresholds: { maxDivergences: 0 } });
    for (const t of r.traces) {
      expect(t.trajectory.strict).toBe(false);
      expect(t.trajectory.subset).toBe(false);
      expect(t.trajectory.editDistance).toBe(2);
      expect(t.divergences).toBe(1);
    }
    expect(results[0]!.divergences[0]).toMatchObject({ tool: "calculator", reason: "no-recorded-call", resolution: "live" });
    expect(r.gate.passed).toBe(false);
    // Failing on a mismatch instead: the trace is an error.
    const failing = await replay(candidate);
    expect(failing.results.every((x) => x.error?.includes("calculator"))).toBe(true);
  });

  it("resumes: traces already in the output directory are not run again", async () => {
    const outDir = join(dir, "out");
    const first = await replay(original, { control: true, outDir, snapshot: { ...snapshot, traces: snapshot.traces.slice(0, 1) } });
    expect(first.skipped).toBe(0);
    const again = await replay(original, { control: true, outDir });
    expect(again.skipped).toBe(1);
    expect(again.results.map((r) => r.originalTraceId)).toEqual(snapshot.traces.map((t) => t.traceId));
    expect((await readFile(join(outDir, "results.jsonl"), "utf8")).trim().split("\n")).toHaveLength(3);
    await writeFile(join(outDir, "review.md"), reviewMarkdown(await review(again.results, { subject, operator })));
  });
});

describe("a review says what it compared", () => {
  it("names the snapshot (file, id, sha256 of its bytes), the baseline and candidate versions, the thresholds used, the operator and the time", async () => {
    const file = join(dir, "subject-snap.json");
    const { snapshot: read, ref } = await readSnapshotFile(file);
    expect(ref).toEqual({
      file,
      id: snapshotIdOf(snapshot),
      sha256: createHash("sha256")
        .update(await readFile(file))
        .digest("hex"),
    });
    expect(read.traces.map((t) => t.traceId)).toEqual(snapshot.traces.map((t) => t.traceId));
    // The recorded traces ran as agent 1.0.0 on the fake model (which reports no version).
    expect(await baselineVersionsOf(snapshot)).toEqual({ agent: ["1.0.0"], model: [expect.any(String)] });

    const { results } = await replay(original, { control: true });
    const before = Date.now();
    const r = await review(results, { subject, operator, thresholds: { minOutputMatchRate: 1, maxDivergences: 0 } });
    expect(ReviewSchema.parse(r)).toEqual(r);
    expect(r).toMatchObject({ snapshot: ref, baselineVersions: subject.baselineVersions, candidateVersion: "2.0.0", operator });
    expect(r.thresholds).toEqual({
      minOutputMatchRate: 1,
      minTrajectoryMatchRate: null,
      maxDivergences: 0,
      maxErrors: null,
      maxTokenIncrease: null,
      maxCostIncrease: null,
      minScores: {},
    });
    expect(r.createdAt).toBe(new Date(r.createdAt).toISOString());
    expect(Date.parse(r.createdAt)).toBeGreaterThanOrEqual(before - 1);
    // No thresholds given: none applied, and the review says so.
    expect((await review(results, { subject, operator })).thresholds).toEqual({
      minOutputMatchRate: null,
      minTrajectoryMatchRate: null,
      maxDivergences: null,
      maxErrors: null,
      maxTokenIncrease: null,
      maxCostIncrease: null,
      minScores: {},
    });
    // The Markdown and the HTML show the same.
    const md = reviewMarkdown(r);
    const html = reviewHtml(r);
    for (const value of [ref.file, ref.id, ref.sha256, ...subject.baselineVersions.agent, ...subject.baselineVersions.model, "2.0.0", operator, r.createdAt]) {
      expect(md).toContain(value);
      expect(html).toContain(value);
    }
    for (const [label, value] of subjectRows(r)) {
      expect(md).toContain(`| ${label} | ${value} |`);
      expect(html).toContain(`<tr><th>${label}</th><td><code>${value}</code></td></tr>`);
    }
    expect(md).toContain("| minOutputMatchRate | 1 |");
    expect(md).toContain("| minTrajectoryMatchRate | not gated |");
  });

  it("lists traces in snapshot (recording) order, not the order they finished", async () => {
    const [first, second] = snapshot.traces.map((t) => t.traceId) as [string, string];
    const outDir = join(dir, "ordered");
    let secondDone!: () => void;
    const done = new Promise<void>((resolve) => (secondDone = resolve));
    // The first trace waits until the second's result is written: it finishes later, whatever the machine.
    const slowFirst = (ctx: CandidateContext) => {
      const agent = original(ctx);
      return { invoke: async (input: never, config?: Record<string, unknown>) => (ctx.trace.traceId === first && (await done), agent.invoke(input, config)) };
    };
    await replaySnapshot({
      snapshot,
      agent: slowFirst,
      handlerOptions: { agent: { ...agentV1, version: "2.0.0" } },
      transport: new Collect(),
      concurrency: 2,
      control: true,
      outDir,
      onProgress: (_done, _total, result) => result?.originalTraceId === second && secondDone(),
    });
    const finished = await readResults(outDir);
    expect(finished.map((x) => x.originalTraceId).indexOf(second)).toBeLessThan(finished.map((x) => x.originalTraceId).indexOf(first));
    const r = await review(finished, { subject, operator });
    expect(r.traces.map((t) => t.originalTraceId)).toEqual(snapshot.traces.map((t) => t.traceId));
    expect(reviewHtml(r).indexOf(first)).toBeLessThan(reviewHtml(r).indexOf(second));
    // What the replay compared, kept beside its results, reads back as written.
    await writeReplaySubject(outDir, subject);
    expect(await readReplaySubject(outDir)).toEqual(subject);
  });

  it("writes later reviews as review-1, review-2, ... and never over another", async () => {
    const outDir = join(dir, "numbered");
    await mkdir(outDir, { recursive: true });
    const own = join(outDir, "review.json");
    await writeFile(own, "the replay's own");
    const files = { json: "{}", md: "# r", html: "<p>r</p>" };
    expect(await writeNumberedReview(outDir, files)).toBe(join(outDir, "review-1.json"));
    expect(await writeNumberedReview(outDir, { ...files, md: "# second" })).toBe(join(outDir, "review-2.json"));
    expect(await readFile(join(outDir, "review-1.md"), "utf8")).toBe("# r");
    expect(await readFile(join(outDir, "review-2.md"), "utf8")).toBe("# second");
    expect(await readFile(own, "utf8")).toBe("the replay's own");
  });
});

describe("word diff", () => {
  const text = (html: string) => html.replace(/<[^>]+>/g, "");
  it("keeps word boundaries: a replaced word is not glued to its replacement", () => {
    expect(wordDiff("the cat sat", "the dog sat")).toBe("the <del>cat</del> <ins>dog</ins> sat");
    expect(text(wordDiff("the cat sat", "the dog sat"))).toBe("the cat dog sat");
    expect(text(wordDiff("the cat sat", "a dog ran"))).toBe("the cat sat a dog ran");
    expect(wordDiff("one  two\nthree", "one two three")).toBe("one two three");
    expect(wordDiff("a <b>", "a &")).toBe("a <del>&lt;b&gt;</del> <ins>&amp;</ins>");
  });
});
