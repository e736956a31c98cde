import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomUUID } from "node:crypto";
import { BATCH_JOB_NAME, streamIdFor, type StoredEvent } from "@auditgraph/core";
import { projectionLag, startWorkerHttp, waitUntilIdle, type WorkerHttp } from "@auditgraph/worker";
import type { Config } from "@auditgraph/cli";
import { capturedLogger, cliEnvOf, isolatedConfig, runCli, sampleTrace, startPipeline } from "../helpers.js";

/**
 * A record the graph can never take (here a 40 KB traceId: Neo4j's "Property value is too large
 * to index"; the schema refuses such ids now, so it is written straight into the ledger, as an
 * older worker release would have) is set aside as a projection dead letter: listed by
 * `dead-letters`, counted in the projection lag and the metrics, and the tenant's later events
 * reach the graph. `rebuild-graph --tenant` sets it aside too, and completes.
 */
let config: Config;
let p: Awaited<ReturnType<typeof startPipeline>>;
let http: WorkerHttp;
const log = capturedLogger();
const cli = (...args: string[]) => runCli(cliEnvOf(config), ...args);

beforeAll(async () => {
  config = await isolatedConfig();
  p = await startPipeline(config, { start: false });
  await p.start({ logger: log.logger });
  http = await startWorkerHttp(p.worker!, { port: 0, host: "127.0.0.1" });
});

afterAll(async () => {
  await http?.close();
  await p?.stop();
});

const traceNodes = async (tenantId: string, traceId: string) =>
  (await p.graph.read(`MATCH (t:Trace {tenantId: $tenantId, id: $traceId}) RETURN count(t) AS n`, { tenantId, traceId }))[0]!.n as number;

/** A metric's value in Prometheus text. */
const sample = (text: string, name: string) => {
  const line = text.split("\n").find((l) => l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(" ") + 1));
};

describe("projection dead letters", () => {
  it("sets aside a record the graph refuses for good, lists and counts it, projects the tenant's later events, and a tenant rebuild completes", async () => {
    const tenantId = `t-${randomUUID().slice(0, 8)}`;
    const streamId = streamIdFor(tenantId);
    const before = sampleTrace(tenantId);
    await p.queue.add(BATCH_JOB_NAME, { events: before });
    await waitUntilIdle(p.queue, 30_000);

    // Past the schema's id limit: appended to the ledger directly, bypassing validation.
    const hugeTraceId = "t".repeat(40_000);
    const poison = { ...sampleTrace(tenantId)[0]!, traceId: hugeTraceId } as StoredEvent;
    const appended = await p.ledger.append(streamId, [poison]);
    const poisonPosition = appended.records[0]!.position;
    expect(poisonPosition).toBe(before.length);

    // The tenant's next events come after it in the stream: without setting it aside they never reach the graph.
    const after = sampleTrace(tenantId);
    await p.queue.add(BATCH_JOB_NAME, { events: after });
    await waitUntilIdle(p.queue, 60_000);
    await p.worker!.projected(60_000);
    expect(await traceNodes(tenantId, after[0]!.traceId)).toBe(1);
    expect(await traceNodes(tenantId, before[0]!.traceId)).toBe(1);
    const last = poisonPosition + after.length;
    expect((await p.graph.cursors(streamId))[0]).toMatchObject({ position: last });

    // Counted: in the worker's lag, its readiness, the ledger-wide lag and the metrics.
    expect(p.worker!.projectionLag().find((l) => l.streamId === streamId)).toMatchObject({ projected: last, failures: 0, setAside: 1 });
    expect((await p.worker!.readiness()).neo4j.projection).toMatchObject({ failingStreams: 0, setAside: 1 });
    expect((await projectionLag(p.ledger, p.graph)).find((l) => l.streamId === streamId)).toEqual({ streamId, cursor: last, last, behind: 0, setAside: 1 });
    const metrics = await (await fetch(`${http.url}/metrics`)).text();
    expect(sample(metrics, "auditgraph_projection_dead_letters_total")).toBe(1);
    // Said once, naming the position, never the content.
    expect(log.text()).toMatch(/a record the graph refuses was set aside/);
    expect(log.text()).not.toContain("t".repeat(300));
    // Set aside at once: the refusal is not taken for an outage and retried first.
    expect(log.text()).not.toMatch(/projection failed/);

    // Listed by the CLI as a projection dead letter: where it is and why, no user content.
    const listed = await cli("dead-letters", "list", "--json");
    expect(listed.code).toBe(0);
    const rows = JSON.parse(listed.stdout) as { id: string; kind: string; reason: string; projection: Record<string, unknown> }[];
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      id: `projection/${streamId}/${poisonPosition}`,
      kind: "projection",
      projection: { streamId, position: poisonPosition, eventId: poison.eventId, tenantId, code: expect.stringMatching(/^Neo\./) },
    });
    expect(rows[0]!.reason).toMatch(/too large to index/);
    expect(listed.stdout).not.toContain("t".repeat(300));
    const text = await cli("dead-letters", "list");
    expect(text.stdout).toMatch(new RegExp(`^projection +projection/${streamId}/${poisonPosition} `, "m"));
    // No job to replay: the record is in the ledger already.
    const replay = await cli("dead-letters", "replay", rows[0]!.id);
    expect(replay.code).toBe(1);
    expect(replay.stderr).toMatch(/a projection dead letter is a ledger record, not a job/);

    // A rebuild of the tenant sets it aside too, and completes.
    const rebuilt = await cli("rebuild-graph", "--tenant", tenantId, "--replace");
    expect(rebuilt.stderr).not.toMatch(/too large to index.*retry/);
    expect(rebuilt.code).toBe(0);
    expect(rebuilt.stdout).toMatch(/1 set aside/);
    expect(await traceNodes(tenantId, after[0]!.traceId)).toBe(1);
    expect(await traceNodes(tenantId, before[0]!.traceId)).toBe(1);
    expect((await p.graph.cursors(streamId))[0]).toMatchObject({ position: last });
    // The same record, the same dead letter: not listed twice.
    expect((await p.ledger.readDeadLetters()).filter((l) => l.kind === "projection")).toHaveLength(1);
  }, 180_000);
});
