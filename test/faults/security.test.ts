import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomUUID } from "node:crypto";
import { BATCH_JOB_NAME, ValidationError } from "@auditgraph/core";
import { INVESTIGATIONS, investigate, type InvestigationName } from "@auditgraph/graph";
import { waitUntilIdle } from "@auditgraph/worker";
import { isolatedConfig, sampleTrace, startPipeline } from "../helpers.js";

let p: Awaited<ReturnType<typeof startPipeline>>;
const victim = sampleTrace(`victim-${randomUUID().slice(0, 8)}`);
const victimTenant = victim[0]!.identity.user.tenantId;
const mine = sampleTrace(`mine-${randomUUID().slice(0, 8)}`);
const myTenant = mine[0]!.identity.user.tenantId;
const countTenant = async (tenantId: string) => (await p.graph.read(`MATCH (n {tenantId: $tenantId}) RETURN count(n) AS n`, { tenantId }))[0]!.n as number;

beforeAll(async () => {
  p = await startPipeline(await isolatedConfig());
  await p.queue.add(BATCH_JOB_NAME, { events: victim });
  await p.queue.add(BATCH_JOB_NAME, { events: mine });
  await waitUntilIdle(p.queue);
});
afterAll(() => p.stop());

describe("investigations cannot write", () => {
  it("refuses writes in the read transaction every investigation runs in", async () => {
    const before = await countTenant(victimTenant);
    expect(before).toBeGreaterThan(5);
    for (const cypher of [
      "CREATE (:Hacked {at: 1})",
      "MATCH (n {tenantId: $t}) DETACH DELETE n",
      "MATCH (n {tenantId: $t}) SET n.tenantId = 'stolen'",
      "MERGE (:Hacked {at: 2})",
    ])
      await expect(p.graph.read(cypher, { t: victimTenant }), cypher).rejects.toThrow(/read|access mode|not allowed/i);
    expect(await countTenant(victimTenant)).toBe(before);
    expect(await p.graph.read("MATCH (h:Hacked) RETURN count(h) AS n")).toEqual([{ n: 0 }]);
  });
});

describe("tenant scoping cannot be escaped by parameters", () => {
  const v = victim;
  const hostileText = ['"}) MATCH (n) RETURN n //', "*", ".*", "' OR 1=1 --", `${victimTenant}' OR '1'='1`, "$tenantId", "%"];
  // Each investigation with its id parameters pointed at the victim's data, and hostile text in every string one.
  const victimIds: Record<InvestigationName, Record<string, unknown>> = {
    "on-behalf-of": { agentId: v[0]!.identity.agent.id },
    "blast-radius": { modelVersion: "fake-2026" },
    "user-activity": { userId: v[0]!.identity.user.id },
    "trace-output": { outputId: v[2]!.eventId },
    "live-versions": {},
    "flag-rate": { by: "model" },
    "escalation-queue": {},
    "compare-agent-versions": { agentId: v[0]!.identity.agent.id },
    "approval-integrity": { highImpactTools: ["add"] },
    "trace-readers": { traceId: v[0]!.traceId },
    "data-readers": { userId: v[0]!.identity.user.id },
    "trace-search": { userId: v[0]!.identity.user.id, agentId: v[0]!.identity.agent.id, sessionId: v[0]!.sessionId, includeReplays: true },
  };

  it("given my tenant, returns nothing of another tenant's, with its ids or hostile text as parameters", async () => {
    // The victim's ids do find the victim's data under the victim's tenant: the probes can fail.
    expect(await investigate(p.graph, "trace-output", { tenantId: victimTenant, outputId: v[2]!.eventId })).toHaveLength(1);
    expect(await investigate(p.graph, "user-activity", { tenantId: victimTenant, userId: "u1" })).not.toHaveLength(0);
    const victimIdsAll = new Set(victim.flatMap((e) => [e.eventId, e.traceId, e.runId]));
    for (const name of Object.keys(INVESTIGATIONS) as InvestigationName[]) {
      const variants = [
        victimIds[name],
        ...hostileText.map((h) => Object.fromEntries(Object.entries(victimIds[name]).map(([k, x]) => [k, k === "by" ? x : h]))),
      ];
      for (const tenantId of [myTenant, ...hostileText])
        for (const params of variants) {
          const rows = await investigate(p.graph, name, { tenantId, ...params } as never).catch((error: unknown) => {
            // Refused is fine, as long as the field is named.
            expect(error).toBeInstanceOf(ValidationError);
            return [];
          });
          const text = JSON.stringify(rows);
          expect(text.includes(victimTenant), `${name} ${JSON.stringify({ tenantId, ...params })}`).toBe(false);
          for (const id of victimIdsAll) expect(text.includes(id), `${name} leaked ${id}`).toBe(false);
        }
    }
  });

  it("refuses arrays, objects and numbers where text is expected, naming the field", async () => {
    const probes: [InvestigationName, Record<string, unknown>, string][] = [
      ["user-activity", { tenantId: [myTenant, victimTenant], userId: "u1" }, "tenantId"],
      ["user-activity", { tenantId: myTenant, userId: ["u1"] }, "userId"],
      ["trace-output", { tenantId: { $ne: null }, outputId: "x" }, "tenantId"],
      ["on-behalf-of", { tenantId: myTenant, agentId: 7 }, "agentId"],
      ["user-activity", { tenantId: "", userId: "u1" }, "tenantId"],
      ["user-activity", { tenantId: myTenant, userId: "u1", limit: "1; MATCH (n) DETACH DELETE n" }, "limit"],
      ["user-activity", { tenantId: myTenant, userId: "u1", extra: "x" }, "extra"],
      ["flag-rate", { tenantId: myTenant, by: "model) MATCH (n" }, "by"],
    ];
    for (const [name, params, field] of probes) {
      const error = await investigate(p.graph, name, params as never).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error, `${name} ${JSON.stringify(params)}`).toBeInstanceOf(ValidationError);
      expect((error as ValidationError).message).toContain(field);
    }
    expect(await countTenant(victimTenant)).toBeGreaterThan(5);
  });
});
