import { createHash, randomUUID } from "node:crypto";
import { cp, readFile, rm, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { Queue } from "bullmq";
import { streamIdFor } from "@auditgraph/core";
import { CheckpointSigner, SegmentLedger, generateSigningKey } from "@auditgraph/ledger";
import type { Config } from "@auditgraph/cli";
import { readSnapshot, snapshotIdOf, type Review } from "@auditgraph/replay";
import { isolatedConfig, sampleTrace, runCli, cliEnvOf } from "./helpers.js";

const AGENT = fileURLToPath(new URL("./fixtures/replay-agent.mjs", import.meta.url));
const cli = (config: Config, ...args: string[]) => runCli(cliEnvOf(config), ...args);
const NO_THRESHOLDS = {
  minOutputMatchRate: null,
  minTrajectoryMatchRate: null,
  maxDivergences: null,
  maxErrors: null,
  maxTokenIncrease: null,
  maxCostIncrease: null,
  minScores: {},
};

let config: Config | undefined;
afterAll(async () => {
  // The replay's events went to this test's own queue, with no worker: drop them.
  if (!config) return;
  const queue = new Queue(config.queueName, { connection: config.redis });
  await queue.obliterate({ force: true }).catch(() => undefined);
  await queue.close();
});

describe("a review says what it compared (auditgraph replay / review DIR)", () => {
  it("records snapshot, versions, thresholds, operator and time; lists traces as recorded; review DIR writes review-<n> and leaves the replay's review alone", async () => {
    config = await isolatedConfig();
    const root = dirname(config.ledgerDir);
    const keys = generateSigningKey();
    const tenantId = `review-cli-${randomUUID()}`;
    const ledger = new SegmentLedger(config.ledgerDir, { signer: new CheckpointSigner(keys.privateKeyPem) });
    await ledger
      .append(streamIdFor(tenantId), [...sampleTrace(tenantId), ...sampleTrace(tenantId), ...sampleTrace(tenantId)] as never)
      .finally(() => ledger.close());

    const file = join(root, "snap.json");
    expect((await cli(config, "snapshot", "create", "--out", file, "--tenant", tenantId)).stdout).toMatch(/3 traces/);
    const snapshot = await readSnapshot(file);
    const order = snapshot.traces.map((t) => t.traceId);
    const ref = {
      file,
      id: snapshotIdOf(snapshot),
      sha256: createHash("sha256")
        .update(await readFile(file))
        .digest("hex"),
    };

    const out = join(root, "replay-out");
    const replayed = await cli(config, "replay", "--snapshot", file, "--agent", AGENT, "--out", out, "--min-output-match", "1", "--operator", "op-replay");
    expect(replayed.code).toBe(0);
    const own = JSON.parse(await readFile(join(out, "review.json"), "utf8")) as Review;
    expect(own).toMatchObject({
      snapshot: ref,
      // sampleTrace: agent-t 0.1.0; its model call starts as fake-model and ends served as fake-2026.
      baselineVersions: { agent: ["0.1.0"], model: ["fake-model@fake-2026"] },
      candidateVersion: "0.2.0",
      thresholds: { ...NO_THRESHOLDS, minOutputMatchRate: 1 },
      operator: "op-replay",
    });
    expect(own.createdAt).toBe(new Date(own.createdAt).toISOString());
    expect(own.traces.map((t) => t.originalTraceId)).toEqual(order);
    const md = await readFile(join(out, "review.md"), "utf8");
    const html = await readFile(join(out, "review.html"), "utf8");
    for (const value of [ref.file, ref.id, ref.sha256, "0.1.0", "fake-model@fake-2026", "0.2.0", "op-replay", own.createdAt]) {
      expect(md).toContain(value);
      expect(html).toContain(value);
    }

    // Results are appended as traces finish: here, the last recorded finished first and the first last.
    const rank = (line: string) => order.indexOf((JSON.parse(line) as { originalTraceId: string }).originalTraceId);
    const lines = (await readFile(join(out, "results.jsonl"), "utf8"))
      .trim()
      .split("\n")
      .sort((a, b) => rank(b) - rank(a));
    await writeFile(join(out, "results.jsonl"), `${lines.join("\n")}\n`);
    const names = ["review.json", "review.md", "review.html"];
    const before = await Promise.all(names.map((n) => readFile(join(out, n))));

    const first = await cli(config, "review", out, "--operator", "op-later");
    expect(first.code).toBe(0);
    expect(first.stdout).toContain(join(out, "review-1.json"));
    const r1 = JSON.parse(await readFile(join(out, "review-1.json"), "utf8")) as Review;
    expect(r1.traces.map((t) => t.originalTraceId)).toEqual(order);
    expect(r1).toMatchObject({
      snapshot: ref,
      baselineVersions: own.baselineVersions,
      candidateVersion: "0.2.0",
      thresholds: NO_THRESHOLDS,
      operator: "op-later",
    });
    expect(await readFile(join(out, "review-1.md"), "utf8")).toContain("op-later");
    expect(await readFile(join(out, "review-1.html"), "utf8")).toContain(ref.sha256);

    const second = await cli(config, "review", out, "--max-divergences", "0", "--json");
    expect(second.code).toBe(0);
    expect(second.stderr).toContain(join(out, "review-2.json"));
    const r2 = JSON.parse(await readFile(join(out, "review-2.json"), "utf8")) as Review;
    expect(JSON.parse(second.stdout)).toEqual(r2);
    expect(r2.thresholds).toEqual({ ...NO_THRESHOLDS, maxDivergences: 0 });

    // The replay's own review is as the replay wrote it, byte for byte.
    expect(await Promise.all(names.map((n) => readFile(join(out, n))))).toEqual(before);

    // A resumed replay reviews the results it finds in the same order: as recorded.
    const again = await cli(config, "replay", "--snapshot", file, "--agent", AGENT, "--out", out);
    expect(again.stdout).toContain("3 traces were already done");
    expect((JSON.parse(await readFile(join(out, "review.json"), "utf8")) as Review).traces.map((t) => t.originalTraceId)).toEqual(order);

    // A directory without what the replay compared cannot be reviewed: the review would not say what it compared.
    const bare = join(root, "bare");
    await cp(out, bare, { recursive: true });
    await rm(join(bare, "replay.json"));
    const refused = await cli(config, "review", bare);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain("replay.json");
    // Some ten CLI runs, each starting node: slow on a loaded machine, not a measure of anything.
  }, 240_000);
});
