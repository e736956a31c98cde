import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import cliProgress from "cli-progress";
import type { Command } from "commander";
import { AgentIdentitySchema, AuditgraphError, parseWith } from "@auditgraph/core";
import { QueueTransport } from "@auditgraph/langchain";
import {
  ThresholdsSchema,
  createSnapshot,
  readResults,
  readSnapshotJson,
  readSnapshotFile,
  baselineVersionsOf,
  writeReplaySubject,
  readReplaySubject,
  writeNumberedReview,
  replaySnapshot,
  reviewEvents,
  review,
  reviewHtml,
  reviewMarkdown,
  verifySnapshot,
  writeSnapshot,
  type CandidateFactory,
  type Review,
  type ReplaySubject,
  type SnapshotFilter,
  type Thresholds,
  type TraceResult,
} from "@auditgraph/replay";
import { loadConfig } from "./config.js";
import { keyStoreOf } from "./erase.js";
import { openLedger } from "./ledger.js";
import { cannotVerify, usageError } from "./errors.js";
import { verifyingKey } from "./verify.js";

interface SnapshotCreateFlags {
  out: string;
  tenant?: string;
  agentVersion?: string;
  modelVersion?: string;
  from?: string;
  to?: string;
  tag?: string;
  flaggedOnly?: boolean;
  trace?: string[];
  limit?: string;
  includeReplays?: boolean;
  includeUnfinished?: boolean;
}

const collect = (value: string, into: string[] = []) => [...into, value];

/** Thresholds from a JSON file, overridden by the flags given. */
async function thresholdsOf(opts: { thresholds?: string; minOutputMatch?: string; minTrajectoryMatch?: string; maxDivergences?: string }): Promise<Thresholds> {
  const fromFile = opts.thresholds ? (JSON.parse(await readFile(opts.thresholds, "utf8")) as unknown) : {};
  const base = parseWith(ThresholdsSchema, fromFile, `--thresholds ${opts.thresholds ?? ""}`.trim());
  const num = (v: string | undefined) => (v === undefined ? undefined : Number(v));
  return parseWith(
    ThresholdsSchema,
    {
      ...base,
      ...(opts.minOutputMatch !== undefined ? { minOutputMatchRate: num(opts.minOutputMatch) } : {}),
      ...(opts.minTrajectoryMatch !== undefined ? { minTrajectoryMatchRate: num(opts.minTrajectoryMatch) } : {}),
      ...(opts.maxDivergences !== undefined ? { maxDivergences: num(opts.maxDivergences) } : {}),
    },
    "review thresholds",
  );
}

/**
 * Writes the review beside the results and prints it (JSON with `json`); exits non-zero when the
 * gate fails. The replay writes `review.{json,md,html}`; a later review (`numbered`) writes the
 * next free `review-<n>.*` and prints its JSON's path, leaving the replay's own review as it was.
 */
async function writeReview(
  outDir: string,
  results: TraceResult[],
  options: { thresholds: Thresholds; subject: ReplaySubject; operator: string; json?: boolean; numbered?: boolean },
): Promise<Review> {
  const r = await review(results, { thresholds: options.thresholds, subject: options.subject, operator: options.operator });
  const md = reviewMarkdown(r);
  const files = { json: JSON.stringify(r, null, 2), md, html: reviewHtml(r) };
  let written: string;
  if (options.numbered) written = await writeNumberedReview(outDir, files);
  else {
    written = join(outDir, "review.json");
    await writeFile(written, files.json);
    await writeFile(join(outDir, "review.md"), md);
    await writeFile(join(outDir, "review.html"), files.html);
  }
  const html = written.replace(/\.json$/, ".html");
  if (options.json) {
    console.log(files.json);
    // stdout carries the review alone; where it was written goes to stderr.
    console.error(`review: ${written}`);
  } else {
    console.log(md);
    console.log(`review: ${written} (also ${written.replace(/\.json$/, ".md")}, ${html})`);
  }
  if (!r.gate.passed) process.exitCode = 2;
  return r;
}

const thresholdOptions = (command: Command) =>
  command
    .option(
      "--thresholds <file>",
      "review thresholds as JSON (minOutputMatchRate, minTrajectoryMatchRate, maxDivergences, maxErrors, maxTokenIncrease, maxCostIncrease, minScores)",
    )
    .option("--min-output-match <rate>", "gate: least share of traces whose output matches (normalised)")
    .option("--min-trajectory-match <rate>", "gate: least share of traces whose tool trajectory matches strictly")
    .option("--max-divergences <n>", "gate: most tool-call divergences")
    .option("--json", "print the review as JSON (what review.json holds) instead of its Markdown");

export function registerReplay(program: Command): void {
  const snapshot = program.command("snapshot").description("frozen, provable sets of recorded traces for replay");
  snapshot
    .command("create")
    .description("select traces from the ledger and write them, with their inclusion proofs and checkpoints, to one file")
    .requiredOption("--out <file>", "the snapshot file to write")
    .option("--tenant <id>", "only this tenant's traces")
    .option("--agent-version <v>", "only traces of this agent version")
    .option("--model-version <v>", "only traces with a model call served by this version")
    .option("--from <iso>", "traces recorded at or after this time")
    .option("--to <iso>", "traces recorded before this time")
    .option("--tag <tag>", "only traces with an event carrying this tag")
    .option("--flagged-only", "only traces with a policy flag or an escalation")
    .option("--trace <id>", "this trace (repeatable)", collect)
    .option("--limit <n>", "at most this many traces, earliest first")
    .option("--include-replays", "also replay runs and replay reviews' records (left out by default)")
    .option("--include-unfinished", "also traces whose root run has no end in the ledger (in progress, or a held call never finished)")
    .option("--json", "print the snapshot's manifest as JSON")
    .action(async (opts: SnapshotCreateFlags & { json?: boolean }) => {
      const config = loadConfig();
      const filter: SnapshotFilter = {
        ...(opts.tenant ? { tenantId: opts.tenant } : {}),
        ...(opts.agentVersion ? { agentVersion: opts.agentVersion } : {}),
        ...(opts.modelVersion ? { modelVersion: opts.modelVersion } : {}),
        ...(opts.from ? { from: opts.from } : {}),
        ...(opts.to ? { to: opts.to } : {}),
        ...(opts.tag ? { tag: opts.tag } : {}),
        ...(opts.flaggedOnly ? { flaggedOnly: true } : {}),
        ...(opts.trace?.length ? { traceIds: opts.trace } : {}),
        ...(opts.limit ? { limit: Number(opts.limit) } : {}),
        ...(opts.includeReplays ? { includeReplays: true } : {}),
        ...(opts.includeUnfinished ? { includeUnfinished: true } : {}),
      };
      const ledger = await openLedger({ ...config, signingKeyPath: undefined });
      try {
        const snap = await createSnapshot(ledger, filter, {
          keyStore: keyStoreOf(config),
          onProgress: (p) => process.stderr.write(`snapshot: ${p.stream}: ${p.records} records read\r`),
        });
        await writeSnapshot(opts.out, snap);
        if (opts.json) return console.log(JSON.stringify({ file: opts.out, manifest: snap.manifest }, null, 2));
        console.log(
          `snapshot ${opts.out}: ${snap.manifest.traceCount} traces, ${snap.manifest.recordCount} records, proven against ${snap.manifest.checkpoints.length} signed checkpoint(s)`,
        );
      } finally {
        await ledger.close();
      }
    });
  snapshot
    .command("verify")
    .description("check every record of a snapshot against its signed checkpoint, with nothing but the public key")
    .argument("<file>", "the snapshot file")
    .option("--public-key <pem>", "the checkpoint signer's public key (PEM file; default: AUDITGRAPH_PUBLIC_KEY)")
    .option("--json", "print the report as JSON")
    .action(async (file: string, opts: { publicKey?: string; json?: boolean }) => {
      // Exit 0 every record checks, 1 one does not, 2 nothing could be checked (no file, not JSON, no key).
      const [input, publicKey] = await Promise.all([
        readSnapshotJson(file).catch((error: Error) => {
          throw cannotVerify(`<file>: ${error.message}`);
        }),
        verifyingKey(opts.publicKey),
      ]);
      const report = verifySnapshot(input, publicKey);
      if (opts.json) console.log(JSON.stringify(report, null, 2));
      else if (report.ok) console.log(`OK: ${report.traces} traces, ${report.records} records, each proven under a signed checkpoint`);
      if (report.ok) return;
      const f = report.failure!;
      console.error(`FAILED: ${f.traceId ? `trace ${f.traceId}` : "manifest"}${f.eventId ? `, event ${f.eventId}` : ""}: ${f.reason}`);
      process.exitCode = 1;
    });

  thresholdOptions(
    program
      .command("replay")
      .description("run a candidate agent over a snapshot's traces (audited, linked to the originals), then review the difference")
      .requiredOption("--snapshot <file>", "the snapshot file")
      .requiredOption(
        "--agent <module>",
        "a module whose default export is the candidate factory ((context) => runnable) and whose `agent` export is its identity {id, name, version}",
      )
      .option("--live-tools", "run the candidate's real tools instead of serving the recorded results")
      .option("--on-mismatch <what>", "a tool call with no recorded result: fail the trace (fail) or call the live tool (live)", "fail")
      .option("--control", "replay the original agent with the recorded model outputs: it must reproduce every trace")
      .option("--concurrency <n>", "traces run at once", "4")
      .option("--out <dir>", "results and review; traces already done there are skipped", "replay-out")
      .option("--operator <id>", "who ran the review, recorded with it in the ledger", process.env.USER ?? "replay"),
  ).action(
    async (opts: {
      snapshot: string;
      agent: string;
      liveTools?: boolean;
      onMismatch: string;
      control?: boolean;
      concurrency: string;
      out: string;
      operator: string;
      thresholds?: string;
      minOutputMatch?: string;
      minTrajectoryMatch?: string;
      maxDivergences?: string;
      json?: boolean;
    }) => {
      if (opts.onMismatch !== "fail" && opts.onMismatch !== "live")
        throw usageError(`--on-mismatch must be fail or live, got ${JSON.stringify(opts.onMismatch)}`);
      const concurrency = Number(opts.concurrency);
      if (!Number.isInteger(concurrency) || concurrency < 1)
        throw usageError(`--concurrency must be a positive integer, got ${JSON.stringify(opts.concurrency)}`);
      // The review names its operator: refused now rather than after the whole replay has run.
      if (!opts.operator.trim()) throw usageError("--operator must not be empty");
      const thresholds = await thresholdsOf(opts);
      const mod = (await import(pathToFileURL(resolve(opts.agent)).href)) as { default?: unknown; agent?: unknown };
      if (typeof mod.default !== "function")
        throw new AuditgraphError("AUDITGRAPH_E_AGENT_MODULE", `--agent ${opts.agent}: its default export must be the candidate factory, a function`);
      const agent = parseWith(AgentIdentitySchema, mod.agent, `--agent ${opts.agent}: export \`agent\` (the candidate's identity)`);
      const config = loadConfig();
      const { snapshot: snap, ref } = await readSnapshotFile(opts.snapshot);
      await mkdir(opts.out, { recursive: true });
      // Written before the run, so that `review DIR` can review even an interrupted replay's results.
      const subject: ReplaySubject = {
        snapshot: ref,
        baselineVersions: await baselineVersionsOf(snap, keyStoreOf(config)),
        candidateVersion: agent.version,
        traceOrder: snap.traces.map((t) => t.traceId),
      };
      await writeReplaySubject(opts.out, subject);
      const transport = new QueueTransport({ connection: config.redis, queueName: config.queueName, spoolDir: config.spoolDir });
      const bar = new cliProgress.SingleBar(
        {
          format: "replay [{bar}] {value}/{total} traces | ETA {eta_formatted}",
          stream: process.stderr,
          noTTYOutput: true,
          notTTYSchedule: 1_000,
          hideCursor: true,
        },
        cliProgress.Presets.shades_classic,
      );
      bar.start(snap.traces.length, 0);
      try {
        const { skipped } = await replaySnapshot({
          snapshot: snap,
          keyStore: keyStoreOf(config),
          agent: mod.default as CandidateFactory,
          handlerOptions: { agent },
          transport,
          concurrency,
          tools: opts.liveTools ? "live" : "recorded",
          onMismatch: opts.onMismatch,
          ...(opts.control ? { control: true } : {}),
          outDir: opts.out,
          onProgress: (done) => bar.update(done),
        });
        bar.stop();
        // With --json, stdout carries the review alone.
        const say = opts.json ? console.error : console.log;
        if (skipped) say(`replay: ${skipped} traces were already done in ${opts.out} and were not run again`);
        const results = await readResults(opts.out);
        if (opts.control) {
          const off = results.filter((r) => !r.reproduced);
          if (off.length) {
            console.error(`control: ${off.length} of ${results.length} traces were not reproduced: ${off.map((r) => r.originalTraceId).join(", ")}`);
            process.exitCode = 2;
          } else say(`control: all ${results.length} traces reproduced exactly`);
        }
        const r = await writeReview(opts.out, results, { thresholds, subject, operator: opts.operator, json: opts.json });
        // Stored like any event: ledger first, then a (:Review) node for compare-agent-versions.
        for (const event of reviewEvents(r, results, snap, { candidate: agent, operator: opts.operator })) transport.send(event);
      } finally {
        bar.stop();
        await transport.close();
      }
    },
  );

  thresholdOptions(
    program
      .command("review")
      .description("review a replay's results again (e.g. with other thresholds) into DIR/review-<n>.{json,md,html}; exits 2 when the gate fails")
      .argument("<dir>", "the replay's --out directory")
      .option("--operator <id>", "who ran the review, recorded in it", process.env.USER ?? "replay"),
  ).action(
    async (
      dir: string,
      opts: { thresholds?: string; minOutputMatch?: string; minTrajectoryMatch?: string; maxDivergences?: string; json?: boolean; operator: string },
    ) => {
      if (!opts.operator.trim()) throw usageError("--operator must not be empty");
      const thresholds = await thresholdsOf(opts);
      const results = await readResults(dir);
      if (results.length === 0) throw new AuditgraphError("AUDITGRAPH_E_NO_REPLAY_RESULTS", `${dir}: no replay results (results.jsonl) found`);
      const subject = await readReplaySubject(dir);
      await writeReview(dir, results, { thresholds, subject, operator: opts.operator, json: opts.json, numbered: true });
    },
  );
}
