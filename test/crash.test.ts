import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { BATCH_JOB_NAME } from "@auditgraph/core";
import { waitUntilIdle } from "@auditgraph/worker";
import { keyStoreOf } from "@auditgraph/cli";
import { eventually, isolatedConfig, readAll, sampleTrace, startPipeline } from "./helpers.js";

const BIN = fileURLToPath(new URL("../packages/cli/bin/auditgraph.js", import.meta.url));
const JOBS = 40;

describe("a worker killed mid-stream", () => {
  it("loses no event and duplicates none, in the ledger or the graph, once a worker runs again", async () => {
    const config = await isolatedConfig();
    const env = { ...process.env, AUDITGRAPH_QUEUE: config.queueName, AUDITGRAPH_LEDGER_DIR: config.ledgerDir };
    const child = spawn(process.execPath, [BIN, "worker", "--lock-ms", "2000"], { env, stdio: "ignore" });
    const exited = new Promise((resolve) => child.on("exit", resolve));

    const pipeline = await startPipeline(config, { start: false });
    try {
      // A fresh tenant: each run's fresh ledger owns its tenant's projection.
      const tenantId = `crash-${randomUUID().slice(0, 8)}`;
      const traces = Array.from({ length: JOBS }, () => sampleTrace(tenantId));
      await pipeline.queue.addBulk(
        traces.map((events) => ({ name: BATCH_JOB_NAME, data: { events }, opts: { attempts: 20, backoff: { type: "fixed", delay: 200 } } })),
      );
      // Kill it with work done and work left.
      await eventually(async () => ((await readAll(pipeline.ledger)).length >= 6 * 3 ? true : undefined));
      child.kill("SIGKILL");
      await exited;
      // Killed with work left: not every batch is in the ledger yet (completed jobs leave Redis, so the ledger tells).
      expect((await readAll(pipeline.ledger)).length).toBeLessThan(JOBS * 6);

      // As the CLI worker it replaces: it reads back, and opens, what the killed one appended but never projected.
      await pipeline.start({ lockDurationMs: 2000, keyStore: keyStoreOf(config) });
      await waitUntilIdle(pipeline.queue, 90_000);

      const records = await readAll(pipeline.ledger);
      const expected = traces.flat().map((e) => e.eventId);
      expect(records.map((r) => r.event.eventId).sort()).toEqual([...expected].sort());
      expect(await pipeline.ledger.verify()).toMatchObject({ ok: true, count: expected.length });
      const [graph] = await pipeline.graph.read(
        `UNWIND $traceIds AS id
         MATCH (t:Trace {id: id})
         OPTIONAL MATCH (o:Output {traceId: id})
         OPTIONAL MATCH (p:Prompt {traceId: id})
         OPTIONAL MATCH (x:ToolCall {traceId: id})
         RETURN count(DISTINCT t) AS traces, count(DISTINCT o) AS outputs, count(DISTINCT p) AS prompts,
                count(DISTINCT x) AS toolCalls, count(*) AS rows`,
        { traceIds: traces.map((t) => t[0]!.traceId) },
      );
      // One of each per trace, and no trace with a second copy of anything (rows = traces).
      expect(graph).toEqual({ traces: JOBS, outputs: JOBS, prompts: JOBS, toolCalls: JOBS, rows: JOBS });
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      await pipeline.stop();
    }
  }, 150_000);
});
