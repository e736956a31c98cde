import { describe, expect, it } from "vitest";
import { pino } from "pino";
import type { ProjectionCursor, ProjectionRange, RangeOutcome } from "@auditgraph/graph";
import { SchemaGate } from "../src/schema-gate.js";
import type { ProjectionGraph } from "../src/projector.js";

/**
 * The gate in front of the projection, with a graph of the test's (a pure unit: the real Neo4j
 * case is test/worker-neo4j-down.e2e.test.ts). The graph's migrations fail a few times, as while
 * Neo4j is away, then succeed; every call records when it came.
 */
function scriptedGraph(failures: number) {
  const calls: { what: string; at: number }[] = [];
  let left = failures;
  const graph: ProjectionGraph & { migrate(): Promise<unknown> } = {
    async migrate() {
      calls.push({ what: "migrate", at: Date.now() });
      if (left-- > 0) throw Object.assign(new Error("Could not perform discovery. No routing servers available."), { code: "ServiceUnavailable" });
      return { applied: ["0001"], skipped: [] };
    },
    async projectRange(range: ProjectionRange): Promise<RangeOutcome> {
      calls.push({ what: "projectRange", at: Date.now() });
      return { status: "projected", position: range.from + range.hashes.length - 1 } as RangeOutcome;
    },
    async cursors(): Promise<ProjectionCursor[]> {
      calls.push({ what: "cursors", at: Date.now() });
      return [];
    },
  };
  return { graph, calls };
}

const quiet = () => {
  const lines: { level: number; msg: string }[] = [];
  const logger = pino({ level: "debug" }, { write: (line: string) => lines.push(JSON.parse(line)) });
  return { logger, lines };
};

describe("SchemaGate", () => {
  it("refuses every graph call until the migrations are applied, retrying them with a capped backoff", async () => {
    const { graph, calls } = scriptedGraph(4);
    const { logger, lines } = quiet();
    const projected: number[] = [];
    const gate = new SchemaGate({ graph, migrate: () => graph.migrate(), logger, retryMinMs: 20, retryMaxMs: 50, observeProjection: (s) => projected.push(s) });
    // A call waits for the attempt under way and fails with its error: the projection backs off
    // and tries again, as the projector does, until the fifth attempt succeeds.
    await expect(gate.graph.cursors("tenant-a")).rejects.toMatchObject({
      code: "AUDITGRAPH_GRAPH_NOT_MIGRATED",
      message: expect.stringContaining("No routing servers"),
    });
    const range = { streamId: "tenant-a", from: 0, prevHash: "0".repeat(64), hashes: ["a".repeat(64)] } as ProjectionRange;
    let refused = 1;
    for (;;) {
      try {
        expect(await gate.graph.projectRange(range, [])).toMatchObject({ status: "projected", position: 0 });
        break;
      } catch (error) {
        expect(error).toMatchObject({ code: "AUDITGRAPH_GRAPH_NOT_MIGRATED" });
        refused += 1;
        await new Promise((r) => setTimeout(r, 5));
      }
    }
    expect(refused).toBeGreaterThan(1);
    await gate.migrated();
    await expect(gate.graph.cursors("tenant-a")).resolves.toEqual([]);

    const migrations = calls.filter((c) => c.what === "migrate");
    expect(migrations).toHaveLength(5);
    // Nothing reached the graph before the migrations were in.
    const firstGraphCall = calls.findIndex((c) => c.what !== "migrate");
    expect(firstGraphCall).toBe(5);
    expect(calls.slice(5).map((c) => c.what)).toEqual(["projectRange", "cursors"]);
    // Backoff: 20, 40, then capped at 50 ms.
    const gaps = migrations.slice(1).map((c, i) => c.at - migrations[i]!.at);
    expect(gaps[0]).toBeGreaterThanOrEqual(15);
    expect(gaps[1]).toBeGreaterThanOrEqual(35);
    for (const gap of gaps) expect(gap).toBeLessThan(50 + 200);
    expect(projected).toHaveLength(1);
    expect(gate.state()).toEqual({ migrated: true, failures: 0 });
    // One line when it starts failing, one when done: the retries between are debug.
    expect(lines.filter((l) => l.level >= 50).map((l) => l.msg)).toHaveLength(1);
    expect(lines.filter((l) => l.level === 40).map((l) => l.msg)).toEqual(["graph migrations applied: projecting what the ledger holds"]);
  });

  it("reports the failing state, and on close fails a call waiting on an attempt instead of hanging", async () => {
    const { graph, calls } = scriptedGraph(Number.POSITIVE_INFINITY);
    const gate = new SchemaGate({ graph, migrate: () => graph.migrate(), logger: quiet().logger, retryMinMs: 10, retryMaxMs: 10 });
    for (let i = 0; i < 200 && gate.state().failures < 2; i++) await new Promise((r) => setTimeout(r, 10));
    expect(gate.state()).toMatchObject({ migrated: false, lastError: expect.stringContaining("No routing servers") });
    expect(gate.state().failures).toBeGreaterThanOrEqual(2);
    // An attempt that never ends (a connection hanging): the call waits on it until the gate closes.
    let hang!: () => void;
    const hung = new SchemaGate({
      graph,
      migrate: () => new Promise<void>((resolve) => (hang = resolve)),
      logger: quiet().logger,
      retryMinMs: 10,
      retryMaxMs: 10,
    });
    const waiting = hung.graph.cursors("tenant-a");
    void hung.close();
    await expect(waiting).rejects.toMatchObject({ code: "AUDITGRAPH_WORKER_CLOSING" });
    hang();
    await gate.close();
    expect(calls.every((c) => c.what === "migrate")).toBe(true);
  });

  it("on close, aborts the attempt's signal and resolves only once the attempt under way has settled", async () => {
    const { graph } = scriptedGraph(0);
    const order: string[] = [];
    let started!: () => void;
    const running = new Promise<void>((resolve) => (started = resolve));
    // A migration holding the lock: told to stop, it finishes its work (30 ms on its own timer) and releases it.
    const gate = new SchemaGate({
      graph,
      migrate: (signal) =>
        new Promise<void>((resolve) => {
          started();
          signal.addEventListener("abort", () =>
            setTimeout(() => {
              order.push("migration finished and released");
              resolve();
            }, 30),
          );
        }),
      logger: quiet().logger,
      retryMinMs: 10,
      retryMaxMs: 10,
    });
    await running;
    await gate.close();
    order.push("closed");
    // Closed after the attempt settled: the caller may close the graph now without stranding the lock.
    expect(order).toEqual(["migration finished and released", "closed"]);
  });

  it("without a migrate function, passes calls straight through", async () => {
    const { graph, calls } = scriptedGraph(0);
    const gate = new SchemaGate({ graph, logger: quiet().logger, retryMinMs: 10, retryMaxMs: 10 });
    await gate.graph.cursors();
    expect(calls.map((c) => c.what)).toEqual(["cursors"]);
    expect(gate.state().migrated).toBe(true);
  });
});
