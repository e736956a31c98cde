import { randomUUID } from "node:crypto";
import { mkdtemp, readFile, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BATCH_JOB_NAME, streamIdFor, type UserEvent } from "@auditgraph/core";
import { AmbiguousLineageIdError, type Lineage } from "@auditgraph/graph";
import { waitUntilIdle } from "@auditgraph/worker";
import type { Config } from "@auditgraph/cli";
import { cliEnvOf, isolatedConfig, readAll, runCli, sampleTrace, startPipeline } from "./helpers.js";

/**
 * Issue 14, point 1: a producer of tenant B re-sends tenant A's event ids (same event, run,
 * trace and tool-call ids) under B's identity, with a different user, prompt, answer, tool
 * result, agent, model version and session. Every one of those differs, so any node of the
 * other tenant that a tenant's lineage picked up shows in it.
 */
const suffix = randomUUID().slice(0, 8);
const tenantA = `trace-a-${suffix}`;
const tenantB = `trace-b-${suffix}`;

interface Side {
  user: string;
  agentName: string;
  agentVersion: string;
  modelVersion: string;
  session: string;
  question: string;
  answer: string;
  toolOutput: string;
}
const A: Side = {
  user: `alice-${suffix}`,
  agentName: "Invoice agent",
  agentVersion: "1.0.0",
  modelVersion: "served-a",
  session: `session-a-${suffix}`,
  question: `what is owed on invoice ${suffix}?`,
  answer: `You owe 120 EUR (${suffix}).`,
  toolOutput: `120 EUR ${suffix}`,
};
const B: Side = {
  user: `mallory-${suffix}`,
  agentName: "Forged agent",
  agentVersion: "6.6.6",
  modelVersion: "served-b",
  session: `session-b-${suffix}`,
  question: `forged question ${suffix}`,
  answer: `FORGED: nothing is owed (${suffix}).`,
  toolOutput: `0 EUR forged ${suffix}`,
};

/** The sample trace's events as `tenantId`'s, with `side`'s values; ids are taken from `ids` when given. */
function traceOf(tenantId: string, side: Side, ids = sampleTrace(tenantId)): UserEvent[] {
  return ids.map((e) => {
    const identity = { user: { id: side.user, tenantId }, agent: { id: "agent-t", name: side.agentName, version: side.agentVersion } };
    const base = { ...e, identity, sessionId: side.session };
    if (e.type === "llm.start") return { ...base, payload: { ...e.payload, messages: [{ role: "user", content: side.question }] } };
    if (e.type === "llm.end") {
      return { ...base, model: { ...e.model, version: side.modelVersion }, payload: { ...e.payload, output: { ...e.payload.output, text: side.answer } } };
    }
    if (e.type === "tool.end") return { ...base, payload: { ...e.payload, output: side.toolOutput } };
    return base;
  }) as UserEvent[];
}

const eventsA = traceOf(tenantA, A);
// The same ids, every one: B's producer copied A's events and changed what they say.
const eventsB = traceOf(tenantB, B, eventsA);
const outputId = eventsA.find((e) => e.type === "llm.end")!.eventId;
const traceId = eventsA[0]!.traceId;
// A trace only tenant A has (same agent and user): read without --tenant, as before.
const onlyA = traceOf(tenantA, A);

let config: Config;
let pipeline: Awaited<ReturnType<typeof startPipeline>>;
const cli = (...args: string[]) => runCli(cliEnvOf(config), ...args);

/** What of `side` a lineage (as JSON) or a page holds, and what of `other` it must not. */
function expectOnly(text: string, side: Side, other: Side) {
  for (const value of [side.user, side.answer, side.question, side.agentName, side.modelVersion, side.session]) expect(text).toContain(value);
  for (const value of Object.values(other)) expect(text).not.toContain(value);
}

beforeAll(async () => {
  config = await isolatedConfig();
  pipeline = await startPipeline(config);
  // A first, then B: B's records come later, which is what a read across tenants ordered by position would prefer.
  await pipeline.queue.add(BATCH_JOB_NAME, { events: [...eventsA, ...onlyA] });
  await waitUntilIdle(pipeline.queue, 60_000);
  await pipeline.queue.add(BATCH_JOB_NAME, { events: eventsB });
  await waitUntilIdle(pipeline.queue, 60_000);
}, 120_000);

afterAll(async () => {
  await pipeline?.stop();
});

describe("trace and Graph.lineage with an id that two tenants have", { timeout: 120_000 }, () => {
  it("B's copies of A's event ids are B's own events: appended to B's stream, projected as B's nodes, nothing refused", async () => {
    expect(await pipeline.queue.getJobCounts("failed")).toEqual({ failed: 0 });
    expect(await pipeline.ledger.readDeadLetters()).toEqual([]);
    const records = await readAll(pipeline.ledger);
    const idsIn = (tenantId: string) => records.filter((r) => r.streamId === streamIdFor(tenantId)).map((r) => r.event.eventId);
    expect(idsIn(tenantB)).toEqual(eventsB.map((e) => e.eventId));
    expect(idsIn(tenantA)).toEqual([...eventsA, ...onlyA].map((e) => e.eventId));
    const outputs = await pipeline.graph.read("MATCH (o:Output {id: $id}) RETURN o.tenantId AS tenantId, o.text AS text ORDER BY tenantId", { id: outputId });
    expect(outputs).toEqual([
      { tenantId: tenantA, text: A.answer },
      { tenantId: tenantB, text: B.answer },
    ]);
  });

  it("Graph.lineage with a tenant reads only that tenant's nodes, by output id and by trace id", async () => {
    for (const [tenantId, side, other] of [
      [tenantA, A, B],
      [tenantB, B, A],
    ] as const) {
      for (const id of [outputId, traceId]) {
        const lineage = (await pipeline.graph.lineage(id, { tenantId }))!;
        expect(lineage.output).toMatchObject({ id: outputId, text: side.answer });
        expect(lineage.user).toEqual({ id: side.user, tenantId });
        expect(lineage.agent).toEqual({ id: "agent-t", name: side.agentName, version: side.agentVersion });
        expect(lineage.model.version).toBe(side.modelVersion);
        expect(lineage.trace).toMatchObject({ id: traceId, sessionId: side.session });
        expect(lineage.toolCalls.map((t) => t.output)).toEqual([side.toolOutput]);
        expectOnly(JSON.stringify(lineage), side, other);
      }
    }
    expect(await pipeline.graph.lineage(onlyA[0]!.traceId, { tenantId: tenantB })).toBeNull();
  });

  it("Graph.lineage without a tenant refuses an id that several tenants have, and reads an id that one tenant has", async () => {
    const refused = await pipeline.graph.lineage(outputId).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(refused).toBeInstanceOf(AmbiguousLineageIdError);
    expect(refused).toMatchObject({ code: "AUDITGRAPH_AMBIGUOUS_ID", tenantCount: 2 });
    expect((refused as Error).message).not.toContain(tenantA);
    expect((refused as Error).message).not.toContain(tenantB);
    const single = (await pipeline.graph.lineage(onlyA[0]!.traceId))!;
    expect(single.user.tenantId).toBe(tenantA);
  });

  it("auditgraph trace --tenant prints that tenant's answer and user; without --tenant it exits 2 naming --tenant", async () => {
    for (const [tenantId, side, other] of [
      [tenantA, A, B],
      [tenantB, B, A],
    ] as const) {
      // The tree by output id, the JSON by trace id.
      const text = await cli("trace", outputId, "--tenant", tenantId);
      expect(text.code).toBe(0);
      expect(text.stdout).toContain(`"${side.answer}"`);
      expect(text.stdout).toContain(`user ${side.user} of tenant ${tenantId}`);
      for (const value of [other.user, other.answer, other.agentName]) expect(text.stdout).not.toContain(value);
      const json = await cli("trace", traceId, "--tenant", tenantId, "--json");
      expect(json.code).toBe(0);
      expectOnly(json.stdout, side, other);
      expect(JSON.parse(json.stdout) as Lineage).toMatchObject({ output: { id: outputId, text: side.answer }, user: { id: side.user, tenantId } });
    }

    for (const id of [outputId, traceId]) {
      const refused = await cli("trace", id);
      expect(refused.code).toBe(2);
      expect(refused.stdout).toBe("");
      expect(refused.stderr.trim().split("\n")).toHaveLength(1);
      expect(refused.stderr).toContain("--tenant");
      expect(refused.stderr).toContain("2 tenants");
      expect(refused.stderr).not.toContain(tenantA);
      expect(refused.stderr).not.toContain(tenantB);
    }

    const single = await cli("trace", onlyA[0]!.traceId);
    expect(single.code).toBe(0);
    expect(single.stdout).toContain(`of tenant ${tenantA}`);
    const elsewhere = await cli("trace", onlyA[0]!.traceId, "--tenant", tenantB);
    expect(elsewhere.code).toBe(1);
    expect(elsewhere.stderr).toContain(`for tenant "${tenantB}"`);
  });

  it("the --html page is written from the tenant's lineage only, and not at all for a refused id", async () => {
    const dir = await mkdtemp(join(tmpdir(), "auditgraph-trace-tenant-"));
    const page = join(dir, "a.html");
    expect((await cli("trace", outputId, "--tenant", tenantA, "--html", page)).code).toBe(0);
    const html = await readFile(page, "utf8");
    expect(html).toContain(A.user);
    expect(html).toContain(tenantA);
    // The answer is in the page as escaped text and as JSON; its distinctive part is plain in both.
    expect(html).toContain(`You owe 120 EUR (${suffix})`);
    for (const value of [B.user, `FORGED: nothing is owed (${suffix})`, B.agentName, B.question, tenantB]) expect(html).not.toContain(value);

    const refusedPage = join(dir, "refused.html");
    expect((await cli("trace", outputId, "--html", refusedPage)).code).toBe(2);
    await expect(stat(refusedPage)).rejects.toMatchObject({ code: "ENOENT" });
  });
});
