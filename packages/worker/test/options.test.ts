import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { pino } from "pino";
import { ValidationError } from "@auditgraph/core";
import { SegmentLedger } from "@auditgraph/ledger";
import { AuditWorker, AuditWorkerOptionsSchema } from "../src/worker.js";
import { WorkerHttpOptionsSchema } from "../src/http.js";
import { describeRedis } from "@auditgraph/policy";
import { isConnectionError } from "../src/redis-health.js";
import type { ProjectionGraph } from "../src/projector.js";

const graph: ProjectionGraph = {
  projectRange: async () => {
    throw new Error("not used");
  },
  cursors: async () => [],
};

describe("AuditWorker options", () => {
  it("refuses unknown keys, naming each, before connecting to anything", async () => {
    const ledger = new SegmentLedger(join(await mkdtemp(join(tmpdir(), "auditgraph-opts-")), "ledger"));
    // Port 1: nothing listens there; the refusal must come before any connection is tried.
    const base = { connection: { host: "127.0.0.1", port: 1 }, ledger, graph, logger: pino({ level: "silent" }) };
    const refused = (options: Record<string, unknown>) => {
      try {
        new AuditWorker(options as never);
      } catch (error) {
        return error;
      }
      throw new Error("accepted");
    };
    const misspelt = refused({ ...base, concurency: 2, queuName: "q" });
    expect(misspelt).toBeInstanceOf(ValidationError);
    expect((misspelt as Error).message).toMatch(/^invalid worker options: /);
    expect((misspelt as Error).message).toContain("concurency");
    expect((misspelt as Error).message).toContain("queuName");
    // Nested settings are held to the same rule, with their path.
    expect((refused({ ...base, projection: { batchSise: 10 } }) as Error).message).toMatch(/projection.*batchSise/);
    // Wrong types name the field.
    expect((refused({ ...base, concurrency: 0 }) as Error).message).toContain("concurrency");
    expect((refused({ ...base, ledger: {} }) as Error).message).toContain("ledger: must be a Ledger");
  });

  it("accepts every documented option", () => {
    const keys = Object.keys(AuditWorkerOptionsSchema.shape);
    for (const key of ["connection", "ledger", "graph", "migrate", "migrationRetryMaxMs", "queueName", "concurrency", "projection", "policies", "logger"])
      expect(keys).toContain(key);
  });

  it("the HTTP options refuse unknown keys too", () => {
    const result = WorkerHttpOptionsSchema.safeParse({ port: 9464, hots: "0.0.0.0" });
    expect(result.success).toBe(false);
    expect(JSON.stringify(result.error?.issues)).toContain("hots");
  });
});

describe("describeRedis", () => {
  it("names hosts and ports, never credentials", () => {
    const one = describeRedis({ host: "redis.internal", port: 6380, username: "worker", password: "s3cret-pass", tls: {} });
    expect(one).toEqual({ nodes: ["redis.internal:6380"], cluster: false, tls: true });
    const cluster = describeRedis({
      password: "s3cret-pass",
      clusterNodes: [
        { host: "a", port: 7000 },
        { host: "b", port: 7001 },
      ],
    });
    expect(cluster).toEqual({ nodes: ["a:7000", "b:7001"], cluster: true, tls: false });
    expect(JSON.stringify([one, cluster])).not.toContain("s3cret");
  });
});

describe("isConnectionError", () => {
  it("tells a dead Redis from a failing command", () => {
    expect(isConnectionError(Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:6390"), { code: "ECONNREFUSED" }))).toBe(true);
    expect(isConnectionError(new Error("Connection is closed."))).toBe(true);
    expect(isConnectionError(new Error("ERR wrong number of arguments for 'hset' command"))).toBe(false);
    expect(isConnectionError(new Error("Missing lock for job 12. moveToFinished"))).toBe(false);
  });
});
