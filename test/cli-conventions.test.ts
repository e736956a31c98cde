import { mkdtemp, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { UserEvent } from "@auditgraph/core";
import { Graph } from "@auditgraph/graph";
import { SegmentLedger } from "@auditgraph/ledger";
import { processBatch } from "@auditgraph/worker";
import { cliEnvOf, isolatedConfig, runCli, sampleTrace } from "./helpers.js";
import type { Config } from "@auditgraph/cli";

// Each CLI run is a process of its own: on a busy machine a test of several takes a while.
const SLOW = 240_000;

const lines = (text: string) => text.split("\n").filter(Boolean);

/** One line on stderr, exit 2, and no help text: how every usage error ends. */
function expectUsageError(result: { code: number; stdout: string; stderr: string }, pattern: RegExp) {
  expect(result.code).toBe(2);
  expect(lines(result.stderr)).toHaveLength(1);
  expect(result.stderr).toMatch(pattern);
  expect(result.stderr).not.toContain("Usage:");
}

/** The same trace id in two tenants, each appended to the ledger and projected. */
function sameTraceIn(tenantA: string, tenantB: string): { traceId: string; events: UserEvent[][] } {
  const a = sampleTrace(tenantA);
  const traceId = a[0]!.traceId;
  const b = sampleTrace(tenantB);
  const bTrace = b[0]!.traceId;
  const renamed = b.map((e) => ({
    ...e,
    traceId,
    runId: e.runId === bTrace ? traceId : e.runId,
    parentRunId: e.parentRunId === bTrace ? traceId : e.parentRunId,
  })) as UserEvent[];
  return { traceId, events: [a, renamed] };
}

describe("CLI conventions", () => {
  let config: Config;
  let graph: Graph;
  const tenantA = `conv-a-${randomUUID().slice(0, 8)}`;
  const tenantB = `conv-b-${randomUUID().slice(0, 8)}`;
  const shared = sameTraceIn(tenantA, tenantB);
  const cli = (...args: string[]) => runCli(cliEnvOf(config), ...args);

  beforeAll(async () => {
    config = await isolatedConfig();
    graph = new Graph(config.neo4j);
    await graph.migrate();
    const ledger = new SegmentLedger(config.ledgerDir);
    for (const [i, events] of shared.events.entries()) await processBatch(ledger, graph, `conv-${i}`, { events });
    await ledger.close();
  });
  afterAll(() => graph?.close());

  it("--version prints the package's version", async () => {
    const { version } = JSON.parse(await readFile(new URL("../packages/cli/package.json", import.meta.url), "utf8")) as { version: string };
    const result = await runCli(process.env, "--version");
    expect(result.code).toBe(0);
    expect(result.stdout).toBe(`${version}\n`);
  });

  it("usage errors exit 2 with one line: unknown option, unknown command, missing argument, bad value", { timeout: SLOW }, async () => {
    expectUsageError(await cli("verify", "--jsn"), /^auditgraph: error: unknown option '--jsn' \(Did you mean --json\?\)$/m);
    expectUsageError(await cli("verfy"), /unknown command 'verfy'/);
    expectUsageError(await cli("trace"), /missing required argument 'id'/);
    expectUsageError(await cli("rebuild-graph", "--batch", "zero"), /--batch.*must be a positive integer/);
    expectUsageError(await cli("trace", "x", "y"), /too many arguments/);
  });

  it("a bad setting exits 2 naming its variable", async () => {
    expectUsageError(await runCli({ ...cliEnvOf(config), NEO4J_URI: "http://nope" }, "trace", "x"), /invalid configuration: NEO4J_URI: must be a bolt/);
  });

  it("query takes --tenant (or --param tenantId=, not both differing), and its numbers are numbers", { timeout: SLOW }, async () => {
    const byFlag = await cli("query", "on-behalf-of", "--tenant", tenantA, "--param", "agentId=agent-t", "--json");
    expect(byFlag.code).toBe(0);
    const rows = JSON.parse(byFlag.stdout) as Record<string, unknown>[];
    expect(rows).toEqual([{ userId: "u1", agentVersion: "0.1.0", traces: 1, firstAt: expect.any(String), lastAt: expect.any(String) }]);
    expect(typeof rows[0]!.traces).toBe("number");
    const byParam = await cli("query", "on-behalf-of", "--param", `tenantId=${tenantA}`, "--param", "agentId=agent-t", "--json");
    expect(JSON.parse(byParam.stdout)).toEqual(rows);
    expect((await cli("query", "on-behalf-of", "--tenant", tenantA, "--param", `tenantId=${tenantA}`, "--param", "agentId=agent-t", "--json")).code).toBe(0);
    expectUsageError(
      await cli("query", "on-behalf-of", "--tenant", tenantA, "--param", `tenantId=${tenantB}`, "--param", "agentId=agent-t"),
      /--tenant .* and --param tenantId=.* name different tenants/,
    );
    // As a table: the count is a number cell (console.table quotes strings only).
    const table = await cli("query", "blast-radius", "--tenant", tenantB, "--param", "modelVersion=fake-2026");
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/'u1'/);
    expect(table.stdout).toMatch(/│ +outputs +│/);
    expect(table.stdout).not.toMatch(/'1'/);
  });

  it("trace --tenant reads only that tenant's output", { timeout: SLOW }, async () => {
    for (const tenant of [tenantA, tenantB]) {
      const result = await cli("trace", shared.traceId, "--tenant", tenant, "--json");
      expect(result.code).toBe(0);
      expect(JSON.parse(result.stdout).user).toEqual({ id: "u1", tenantId: tenant });
    }
    const elsewhere = await cli("trace", shared.traceId, "--tenant", "no-such-tenant");
    expect(elsewhere.code).toBe(1);
    expect(elsewhere.stderr).toContain(`no output or trace with id "${shared.traceId}" in the graph for tenant "no-such-tenant"`);
  });

  it("holds with none says so; hold, release-hold and holds print JSON", { timeout: SLOW }, async () => {
    const env = { ...process.env, AUDITGRAPH_LEDGER_DIR: join(await mkdtemp(join(tmpdir(), "conv-holds-")), "ledger") };
    const none = await runCli(env, "holds");
    expect(none).toMatchObject({ code: 0, stdout: "no legal holds\n" });
    expect(JSON.parse((await runCli(env, "holds", "--json")).stdout)).toEqual([]);
    const placed = JSON.parse((await runCli(env, "hold", "--tenant", tenantA, "--reason", "matter 9", "--json")).stdout);
    expect(placed).toMatchObject({ streamId: `tenant-${tenantA}`, reason: "matter 9", placedAt: expect.any(String) });
    const released = JSON.parse((await runCli(env, "release-hold", placed.id, "--json")).stdout);
    expect(released).toMatchObject({ id: placed.id, releasedAt: expect.any(String) });
  });

  it("--json on keygen, migrate, deploy and dead-letters replay", { timeout: SLOW }, async () => {
    const keys = await cli("keygen", "--out", join(config.ledgerDir, "..", "keys"), "--json");
    expect(JSON.parse(keys.stdout)).toEqual({
      privateKeyPath: expect.stringMatching(/checkpoint-signing-key\.pem$/),
      publicKeyPath: expect.stringMatching(/checkpoint-public-key\.pem$/),
    });
    const migrated = JSON.parse((await cli("migrate", "--json")).stdout);
    expect(migrated).toEqual({ applied: [], skipped: expect.any(Array) });
    const deployed = await cli("deploy", "--tenant", tenantA, "--agent", "agent-t", "--agent-version", "0.2.0", "--json");
    expect(deployed.code).toBe(0);
    const deployment = JSON.parse(deployed.stdout);
    expect(deployment).toMatchObject({ streamId: `tenant-${tenantA}`, target: "agent", version: "0.2.0", action: "rollout", environment: "production" });
    expect(typeof deployment.position).toBe("number");
    expect(JSON.parse((await cli("dead-letters", "replay", "--all", "--json")).stdout)).toEqual([]);
  });
});
