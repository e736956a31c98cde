import { randomUUID } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { Graph } from "@auditgraph/graph";
import { CheckpointSigner, SegmentLedger, generateSigningKey } from "@auditgraph/ledger";
import { processBatch } from "@auditgraph/worker";
import { keyStoreOf, type Config } from "@auditgraph/cli";
import type { Snapshot } from "@auditgraph/replay";
import { eventually, isolatedConfig, sampleTrace, startPipeline, runCli, cliEnvOf } from "./helpers.js";

const AGENT = fileURLToPath(new URL("./fixtures/replay-agent.mjs", import.meta.url));

const cli = (config: Config, ...args: string[]) => runCli(cliEnvOf(config), ...args);

let graph: Graph | undefined;
afterAll(() => graph?.close());

describe("auditgraph snapshot / replay / review", () => {
  it("snapshots sealed traces provably, replays a candidate over them (resumably) and gates on the review", async () => {
    const config = await isolatedConfig();
    graph = new Graph(config.neo4j);
    await graph.migrate();
    const pair = generateSigningKey();
    const keys = { privateKeyPath: join(dirname(config.ledgerDir), "signing.pem"), publicKeyPath: join(dirname(config.ledgerDir), "public.pem") };
    await writeFile(keys.privateKeyPath, pair.privateKeyPem);
    await writeFile(keys.publicKeyPath, pair.publicKeyPem);
    const tenantId = `replay-cli-${randomUUID().slice(0, 8)}`;
    const ledger = new SegmentLedger(config.ledgerDir, { signer: new CheckpointSigner(await readFile(keys.privateKeyPath, "utf8")) });
    const events = [...sampleTrace(tenantId), ...sampleTrace(tenantId)];
    await processBatch(ledger, graph, "replay-cli", { events }, { keyStore: keyStoreOf(config) }).finally(() => ledger.close());

    const file = join(dirname(config.ledgerDir), "snap.json");
    const created = await cli(config, "snapshot", "create", "--out", file, "--tenant", tenantId, "--agent-version", "0.1.0");
    expect(created.stdout).toMatch(/2 traces, 12 records/);
    // Sealed as stored: the snapshot holds no more than the ledger.
    expect(await readFile(file, "utf8")).not.toContain('"answer"');
    expect((await cli(config, "snapshot", "verify", file, "--public-key", keys.publicKeyPath)).stdout).toMatch(/^OK: 2 traces, 12 records/);

    const altered = JSON.parse(await readFile(file, "utf8")) as Snapshot;
    altered.traces[0]!.records[1]!.record.recordedAt = new Date(0).toISOString();
    const alteredFile = `${file}.altered`;
    await writeFile(alteredFile, JSON.stringify(altered));
    const bad = await cli(config, "snapshot", "verify", alteredFile, "--public-key", keys.publicKeyPath);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain(altered.traces[0]!.records[1]!.record.event.eventId);

    // The replay runs go through the queue to a worker like any agent's.
    const pipeline = await startPipeline(config, { start: false });
    await pipeline.start({ keyStore: keyStoreOf(config) });
    const out = join(dirname(config.ledgerDir), "replay-out");
    const replayed = await cli(config, "replay", "--snapshot", file, "--agent", AGENT, "--out", out, "--min-output-match", "1", "--max-divergences", "0");
    expect(replayed.stderr).toContain("replay [");
    expect(replayed.stdout).toContain("Gate: PASSED");
    expect(replayed.code).toBe(0);
    const linked = await eventually(async () => {
      const rows = await graph!.read(
        `MATCH (r:Trace {tenantId: $tenantId})-[:REPLAY_OF]->(o:Trace {tenantId: $tenantId}), (r)-[:HANDLED_BY]->(av:AgentVersion)
         RETURN o.id AS original, av.version AS version`,
        { tenantId },
      );
      return rows.length === 2 ? rows : undefined;
    });
    expect(linked.map((r) => r.original).sort()).toEqual(altered.traces.map((t) => t.traceId).sort());
    expect(linked.map((r) => r.version)).toEqual(["0.2.0", "0.2.0"]);
    // The review itself went to the ledger and became a (:Review) node for compare-agent-versions.
    const reviews = await eventually(async () => {
      const q = await cli(config, "query", "compare-agent-versions", "--param", `tenantId=${tenantId}`, "--param", "agentId=agent-t", "--json");
      const rows = JSON.parse(q.stdout || "[]") as Record<string, unknown>[];
      return rows.length ? rows : undefined;
    });
    expect(reviews[0]).toMatchObject({
      candidateVersion: "0.2.0",
      baselineVersions: ["0.1.0"],
      traces: 2,
      outputMatchRate: 1,
      divergences: 0,
      gatePassed: true,
    });
    await pipeline.stop();
    const again = await cli(config, "replay", "--snapshot", file, "--agent", AGENT, "--out", out);
    expect(again.stdout).toContain("2 traces were already done");
    const review = JSON.parse(await readFile(join(out, "review.json"), "utf8")) as { aggregate: { outputExact: number; trajectoryStrict: number } };
    expect(review.aggregate).toMatchObject({ outputExact: 2, trajectoryStrict: 2 });
    // A gate the candidate cannot meet fails the command.
    const strict = await cli(config, "review", out, "--max-divergences", "0", "--thresholds", join(out, "missing.json"));
    expect(strict.code).toBe(1);
    expect(strict.stderr).toContain("missing.json");
  });
});
