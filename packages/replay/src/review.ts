import { z } from "zod";
import { parseWith } from "@auditgraph/core";
import type { TraceResult } from "./replay.js";
import type { ToolStep } from "./trace.js";
import { BaselineVersionsSchema, SnapshotRefSchema, type ReplaySubject } from "./review-subject.js";

/** A pluggable output score in [0, 1] (semantic similarity, an LLM judge, ...). */
export interface Scorer {
  name: string;
  score(original: string, candidate: string, result: TraceResult): number | Promise<number>;
}

export const normalise = (text: string): string => text.replace(/\s+/g, " ").trim().toLowerCase();

/** Levenshtein distance over tool-call steps (a step being its tool and canonical arguments). */
export function editDistance(a: readonly string[], b: readonly string[]): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = row;
  }
  return prev[b.length]!;
}

const key = (s: ToolStep) => `${s.name}${s.args}`;

/** Every element of `part` in `whole`, counted with multiplicity. */
function within(part: readonly string[], whole: readonly string[]): boolean {
  const left = [...whole];
  for (const p of part) {
    const at = left.indexOf(p);
    if (at < 0) return false;
    left.splice(at, 1);
  }
  return true;
}

export const TraceReviewSchema = z.object({
  originalTraceId: z.string(),
  replayTraceId: z.string(),
  output: z.object({ exact: z.boolean(), normalised: z.boolean(), scores: z.record(z.string(), z.number()), original: z.string(), candidate: z.string() }),
  trajectory: z.object({
    strict: z.boolean(),
    unordered: z.boolean(),
    /** The candidate's calls are all among the original's. */
    subset: z.boolean(),
    /** The candidate makes at least the original's calls. */
    superset: z.boolean(),
    editDistance: z.number().int().nonnegative(),
    original: z.array(z.string()),
    candidate: z.array(z.string()),
  }),
  divergences: z.number().int().nonnegative(),
  error: z.string().optional(),
  reproduced: z.boolean().optional(),
  delta: z.object({ tokens: z.number(), cost: z.number(), latencyMs: z.number(), errors: z.number(), flags: z.number(), escalations: z.number() }),
});
export type TraceReview = z.infer<typeof TraceReviewSchema>;

export const ThresholdsSchema = z.object({
  /** Least share of traces whose final output matches (normalised). */
  minOutputMatchRate: z.number().min(0).max(1).optional(),
  /** Least share of traces whose tool trajectory matches strictly. */
  minTrajectoryMatchRate: z.number().min(0).max(1).optional(),
  maxDivergences: z.number().int().nonnegative().optional(),
  maxErrors: z.number().int().nonnegative().optional(),
  /** Most the candidate's tokens may grow over the original's, as a share (0.1 = 10%). */
  maxTokenIncrease: z.number().optional(),
  maxCostIncrease: z.number().optional(),
  /** Least mean score of each named scorer. */
  minScores: z.record(z.string(), z.number()).optional(),
});
export type Thresholds = z.infer<typeof ThresholdsSchema>;

/** The thresholds a review applied: every one named, null where it was not set (that check was not made). */
export const AppliedThresholdsSchema = z.object({
  minOutputMatchRate: z.number().nullable(),
  minTrajectoryMatchRate: z.number().nullable(),
  maxDivergences: z.number().nullable(),
  maxErrors: z.number().nullable(),
  maxTokenIncrease: z.number().nullable(),
  maxCostIncrease: z.number().nullable(),
  minScores: z.record(z.string(), z.number()),
});
export type AppliedThresholds = z.infer<typeof AppliedThresholdsSchema>;

export const appliedThresholds = (t: Thresholds): AppliedThresholds => ({
  minOutputMatchRate: t.minOutputMatchRate ?? null,
  minTrajectoryMatchRate: t.minTrajectoryMatchRate ?? null,
  maxDivergences: t.maxDivergences ?? null,
  maxErrors: t.maxErrors ?? null,
  maxTokenIncrease: t.maxTokenIncrease ?? null,
  maxCostIncrease: t.maxCostIncrease ?? null,
  minScores: t.minScores ?? {},
});

export const ReviewSchema = z.object({
  // What was compared, first: a review read without them could be of anything.
  snapshot: SnapshotRefSchema,
  baselineVersions: BaselineVersionsSchema,
  candidateVersion: z.string().min(1),
  thresholds: AppliedThresholdsSchema,
  /** Who ran the review. */
  operator: z.string().min(1),
  createdAt: z.iso.datetime({ offset: true }),
  /** In the snapshot's (recording) order. */
  traces: z.array(TraceReviewSchema),
  aggregate: z.object({
    traces: z.number().int(),
    outputExact: z.number().int(),
    outputNormalised: z.number().int(),
    outputMatchRate: z.number(),
    trajectoryStrict: z.number().int(),
    trajectoryUnordered: z.number().int(),
    trajectoryMatchRate: z.number(),
    meanEditDistance: z.number(),
    divergences: z.number().int(),
    errors: z.number().int(),
    reproduced: z.number().int().optional(),
    tokens: z.object({ original: z.number(), candidate: z.number() }),
    cost: z.object({ original: z.number(), candidate: z.number() }),
    latencyMs: z.object({ original: z.number(), candidate: z.number() }),
    flags: z.object({ original: z.number(), candidate: z.number() }),
    escalations: z.object({ original: z.number(), candidate: z.number() }),
    scores: z.record(z.string(), z.number()),
  }),
  gate: z.object({ passed: z.boolean(), failures: z.array(z.string()) }),
});
export type Review = z.infer<typeof ReviewSchema>;

export async function reviewTrace(result: TraceResult, scorers: readonly Scorer[] = []): Promise<TraceReview> {
  const { original: o, candidate: c } = result;
  const a = o.tools.map(key);
  const b = c.tools.map(key);
  const scores: Record<string, number> = {};
  for (const s of scorers) scores[s.name] = await s.score(o.finalOutput, c.finalOutput, result);
  return {
    originalTraceId: result.originalTraceId,
    replayTraceId: result.replayTraceId,
    output: {
      exact: o.finalOutput === c.finalOutput,
      normalised: normalise(o.finalOutput) === normalise(c.finalOutput),
      scores,
      original: o.finalOutput,
      candidate: c.finalOutput,
    },
    trajectory: {
      strict: a.length === b.length && a.every((x, i) => x === b[i]),
      unordered: a.length === b.length && within(a, b),
      subset: within(b, a),
      superset: within(a, b),
      editDistance: editDistance(a, b),
      original: o.tools.map((t) => `${t.name}(${t.args})`),
      candidate: c.tools.map((t) => `${t.name}(${t.args})`),
    },
    divergences: result.divergences.length,
    ...(result.error !== undefined ? { error: result.error } : {}),
    ...(result.reproduced !== undefined ? { reproduced: result.reproduced } : {}),
    delta: {
      tokens: c.tokens - o.tokens,
      cost: c.cost - o.cost,
      latencyMs: c.latencyMs - o.latencyMs,
      errors: c.errors - o.errors,
      flags: c.flags - o.flags,
      escalations: c.escalations - o.escalations,
    },
  };
}

const sum = (xs: readonly number[]) => xs.reduce((n, x) => n + x, 0);
const rate = (n: number, of: number) => (of === 0 ? 1 : n / of);

export interface ReviewOptions {
  /** What the replay compared (`replay.json`); its trace order is the order the review lists traces in. */
  subject: ReplaySubject;
  operator: string;
  scorers?: readonly Scorer[];
  thresholds?: Thresholds;
  /** Defaults to now. */
  createdAt?: Date;
}

/** Results in the snapshot's order; any the snapshot does not name keep their order, after the rest. */
function inSnapshotOrder(results: readonly TraceResult[], order: readonly string[]): TraceResult[] {
  const at = new Map(order.map((id, i) => [id, i]));
  const rank = (r: TraceResult) => at.get(r.originalTraceId) ?? order.length;
  // Array.prototype.sort is stable: ties (traces not in the snapshot) keep their order.
  return [...results].sort((a, b) => rank(a) - rank(b));
}

/** Per trace and in aggregate; with thresholds, the gate (a regression fails it). */
export async function review(unordered: readonly TraceResult[], options: ReviewOptions): Promise<Review> {
  const thresholds = parseWith(ThresholdsSchema, options.thresholds ?? {}, "review thresholds");
  // Results arrive in the order traces finished (results.jsonl): the review lists them as recorded.
  const results = inSnapshotOrder(unordered, options.subject.traceOrder);
  const traces = await Promise.all(results.map((r) => reviewTrace(r, options.scorers)));
  const n = traces.length;
  const scores: Record<string, number> = {};
  for (const s of options.scorers ?? []) scores[s.name] = n === 0 ? 1 : sum(traces.map((t) => t.output.scores[s.name] ?? 0)) / n;
  const pair = (f: (r: TraceResult["original"]) => number) => ({
    original: sum(results.map((r) => f(r.original))),
    candidate: sum(results.map((r) => f(r.candidate))),
  });
  const controls = traces.filter((t) => t.reproduced !== undefined);
  const aggregate: Review["aggregate"] = {
    traces: n,
    outputExact: traces.filter((t) => t.output.exact).length,
    outputNormalised: traces.filter((t) => t.output.normalised).length,
    outputMatchRate: rate(traces.filter((t) => t.output.normalised).length, n),
    trajectoryStrict: traces.filter((t) => t.trajectory.strict).length,
    trajectoryUnordered: traces.filter((t) => t.trajectory.unordered).length,
    trajectoryMatchRate: rate(traces.filter((t) => t.trajectory.strict).length, n),
    meanEditDistance: n === 0 ? 0 : sum(traces.map((t) => t.trajectory.editDistance)) / n,
    divergences: sum(traces.map((t) => t.divergences)),
    errors: traces.filter((t) => t.error !== undefined).length,
    ...(controls.length ? { reproduced: controls.filter((t) => t.reproduced).length } : {}),
    tokens: pair((s) => s.tokens),
    cost: pair((s) => s.cost),
    latencyMs: pair((s) => s.latencyMs),
    flags: pair((s) => s.flags),
    escalations: pair((s) => s.escalations),
    scores,
  };
  const failures: string[] = [];
  // A control run must reproduce every trace: one it did not fails the gate whatever the
  // thresholds, so the printed gate and the command's exit code always agree.
  const notReproduced = controls.filter((c) => !c.reproduced).length;
  if (notReproduced > 0) failures.push(`control: ${notReproduced} of ${controls.length} traces were not reproduced`);
  const t = thresholds;
  if (t.minOutputMatchRate !== undefined && aggregate.outputMatchRate < t.minOutputMatchRate)
    failures.push(`output match rate ${aggregate.outputMatchRate.toFixed(3)} is below minOutputMatchRate ${t.minOutputMatchRate}`);
  if (t.minTrajectoryMatchRate !== undefined && aggregate.trajectoryMatchRate < t.minTrajectoryMatchRate)
    failures.push(`trajectory match rate ${aggregate.trajectoryMatchRate.toFixed(3)} is below minTrajectoryMatchRate ${t.minTrajectoryMatchRate}`);
  if (t.maxDivergences !== undefined && aggregate.divergences > t.maxDivergences)
    failures.push(`${aggregate.divergences} divergences exceed maxDivergences ${t.maxDivergences}`);
  if (t.maxErrors !== undefined && aggregate.errors > t.maxErrors) failures.push(`${aggregate.errors} failed traces exceed maxErrors ${t.maxErrors}`);
  const growth = (p: { original: number; candidate: number }) => (p.original === 0 ? (p.candidate === 0 ? 0 : Infinity) : p.candidate / p.original - 1);
  if (t.maxTokenIncrease !== undefined && growth(aggregate.tokens) > t.maxTokenIncrease)
    failures.push(`tokens grew ${(growth(aggregate.tokens) * 100).toFixed(1)}%, over maxTokenIncrease ${t.maxTokenIncrease}`);
  if (t.maxCostIncrease !== undefined && growth(aggregate.cost) > t.maxCostIncrease)
    failures.push(`cost grew ${(growth(aggregate.cost) * 100).toFixed(1)}%, over maxCostIncrease ${t.maxCostIncrease}`);
  for (const [name, min] of Object.entries(t.minScores ?? {})) {
    if (!(name in scores)) failures.push(`minScores.${name}: no scorer of that name ran`);
    else if (scores[name]! < min) failures.push(`mean ${name} score ${scores[name]!.toFixed(3)} is below ${min}`);
  }
  const { snapshot, baselineVersions, candidateVersion } = options.subject;
  return parseWith(
    ReviewSchema,
    {
      snapshot,
      baselineVersions,
      candidateVersion,
      thresholds: appliedThresholds(thresholds),
      operator: options.operator,
      createdAt: (options.createdAt ?? new Date()).toISOString(),
      traces,
      aggregate,
      gate: { passed: failures.length === 0, failures },
    },
    "review",
  );
}

const shown = (v: number | null) => (v === null ? "not gated" : String(v));

/** What the review compared, as label and value: the Markdown and the HTML show the same rows. */
export function subjectRows(r: Review): [string, string][] {
  const t = r.thresholds;
  return [
    ["snapshot file", r.snapshot.file],
    ["snapshot id", r.snapshot.id],
    ["snapshot sha256", r.snapshot.sha256],
    ["baseline agent versions", r.baselineVersions.agent.join(", ") || "none recorded"],
    ["baseline model versions", r.baselineVersions.model.join(", ") || "none recorded"],
    ["candidate version", r.candidateVersion],
    ["minOutputMatchRate", shown(t.minOutputMatchRate)],
    ["minTrajectoryMatchRate", shown(t.minTrajectoryMatchRate)],
    ["maxDivergences", shown(t.maxDivergences)],
    ["maxErrors", shown(t.maxErrors)],
    ["maxTokenIncrease", shown(t.maxTokenIncrease)],
    ["maxCostIncrease", shown(t.maxCostIncrease)],
    ...(Object.keys(t.minScores).length
      ? Object.entries(t.minScores).map(([k, v]): [string, string] => [`minScores.${k}`, String(v)])
      : [["minScores", "not gated"] as [string, string]]),
    ["operator", r.operator],
    ["created at", r.createdAt],
  ];
}

const cell = (s: string) => s.replace(/\|/g, "\\|").replace(/\n/g, " ").slice(0, 80);

export function reviewMarkdown(r: Review): string {
  const a = r.aggregate;
  const lines = [
    `# Replay review`,
    ``,
    `**Gate: ${r.gate.passed ? "PASSED" : "FAILED"}**${r.gate.failures.map((f) => `\n- ${f}`).join("")}`,
    ``,
    `## Compared`,
    ``,
    `| | |`,
    `|---|---|`,
    ...subjectRows(r).map(([k, v]) => `| ${k} | ${v.replace(/\|/g, "\\|")} |`),
    ``,
    `## Results`,
    ``,
    `| | |`,
    `|---|---|`,
    `| traces | ${a.traces} |`,
    `| output exact / normalised | ${a.outputExact} / ${a.outputNormalised} |`,
    `| trajectory strict / unordered | ${a.trajectoryStrict} / ${a.trajectoryUnordered} |`,
    `| mean edit distance | ${a.meanEditDistance.toFixed(2)} |`,
    `| divergences | ${a.divergences} |`,
    `| failed traces | ${a.errors} |`,
    ...(a.reproduced !== undefined ? [`| control reproduced | ${a.reproduced} / ${a.traces} |`] : []),
    `| tokens (original → candidate) | ${a.tokens.original} → ${a.tokens.candidate} |`,
    `| cost | ${a.cost.original.toFixed(6)} → ${a.cost.candidate.toFixed(6)} |`,
    `| latency ms | ${a.latencyMs.original} → ${a.latencyMs.candidate} |`,
    `| flags | ${a.flags.original} → ${a.flags.candidate} |`,
    ...Object.entries(a.scores).map(([k, v]) => `| score ${k} | ${v.toFixed(3)} |`),
    ``,
    `| trace | output | trajectory | edit | divergences | original | candidate |`,
    `|---|---|---|---|---|---|---|`,
    ...r.traces.map(
      (t) =>
        `| ${t.originalTraceId.slice(0, 8)} | ${t.output.exact ? "exact" : t.output.normalised ? "normalised" : "differs"} | ${t.trajectory.strict ? "strict" : t.trajectory.unordered ? "unordered" : "differs"} | ${t.trajectory.editDistance} | ${t.divergences} | ${cell(t.output.original)} | ${cell(t.output.candidate)} |`,
    ),
    ``,
  ];
  return lines.join("\n");
}
