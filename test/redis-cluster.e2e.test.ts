import { spawn, execFile, type ChildProcess } from "node:child_process";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { randomUUID } from "node:crypto";
import { afterAll, describe, expect, it } from "vitest";
import { Cluster } from "ioredis";
import { loadConfig } from "@auditgraph/cli";
import { cliEnvOf, eventually, isolatedConfig, runCli } from "./helpers.js";
import { freePort } from "./redis-process.js";

const run = promisify(execFile);

/** A real three-primary Redis Cluster of the test's own (redis-server in cluster mode, slots split by redis-cli). */
async function startCluster(): Promise<{ ports: number[]; stop: () => void }> {
  const dir = await mkdtemp(join(tmpdir(), "auditgraph-cluster-"));
  const ports = [await freePort(), await freePort(), await freePort()];
  const children: ChildProcess[] = ports.map((port) =>
    spawn(
      "redis-server",
      [
        "--port",
        String(port),
        "--bind",
        "127.0.0.1",
        "--cluster-enabled",
        "yes",
        "--cluster-config-file",
        join(dir, `nodes-${port}.conf`),
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        dir,
      ],
      { stdio: "ignore" },
    ),
  );
  const stop = () => {
    for (const c of children) c.kill("SIGKILL");
  };
  try {
    await eventually(async () => {
      const pongs = await Promise.all(
        ports.map((p) =>
          run("redis-cli", ["-p", String(p), "ping"]).then(
            (r) => r.stdout.trim(),
            () => "",
          ),
        ),
      );
      return pongs.every((p) => p === "PONG") ? true : undefined;
    }, 10_000);
    await run("redis-cli", ["--cluster", "create", ...ports.map((p) => `127.0.0.1:${p}`), "--cluster-replicas", "0", "--cluster-yes"]);
    await eventually(async () => {
      const states = await Promise.all(ports.map((p) => run("redis-cli", ["-p", String(p), "cluster", "info"]).then((r) => r.stdout)));
      return states.every((s) => s.includes("cluster_state:ok")) ? true : undefined;
    }, 20_000);
    return { ports, stop };
  } catch (error) {
    stop();
    throw error;
  }
}

let cluster: { ports: number[]; stop: () => void } | undefined;
afterAll(() => cluster?.stop());

describe("Redis Cluster, by configuration only", () => {
  it("reads the seed nodes from AUDITGRAPH_REDIS_CLUSTER_NODES, and names the variable when they are malformed", () => {
    const config = loadConfig({
      AUDITGRAPH_REDIS_URL: "rediss://ops:s3cret@ignored:1",
      AUDITGRAPH_REDIS_CLUSTER_NODES: "10.0.0.1:7000,redis-b.internal:7001",
      AUDITGRAPH_QUEUE: "{audit}",
    });
    expect(config.redis).toMatchObject({
      clusterNodes: [
        { host: "10.0.0.1", port: 7000 },
        { host: "redis-b.internal", port: 7001 },
      ],
      username: "ops",
      password: "s3cret",
      tls: {},
    });
    expect(loadConfig({}).redis.clusterNodes).toBeUndefined();
    expect(() => loadConfig({ AUDITGRAPH_REDIS_CLUSTER_NODES: "10.0.0.1", AUDITGRAPH_QUEUE: "{audit}" })).toThrow(
      /AUDITGRAPH_REDIS_CLUSTER_NODES: must be host:port seed nodes/,
    );
  });

  it("runs the demo end to end through a sharded cluster, and refuses a queue name that is not a hash tag", async () => {
    cluster = await startCluster();
    const config = await isolatedConfig();
    const queue = `{cluster-${randomUUID().slice(0, 8)}}`;
    const env = { ...cliEnvOf(config), AUDITGRAPH_QUEUE: queue, AUDITGRAPH_REDIS_CLUSTER_NODES: `127.0.0.1:${cluster.ports[0]}` };

    const refused = await runCli({ ...env, AUDITGRAPH_QUEUE: "auditgraph-events" }, "demo");
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain("AUDITGRAPH_QUEUE");
    expect(refused.stderr).toContain("must be a hash tag such as {auditgraph}");

    const demo = await runCli(env, "demo");
    expect(demo.stderr).not.toMatch(/MOVED|CROSSSLOT/);
    expect(demo.code).toBe(0);
    expect(demo.stdout).toMatch(/\$ auditgraph verify\nOK: 30 events in 1 streams/);

    // The queue's keys are on the cluster, all on the one node that owns the hash tag's slot.
    const client = new Cluster([{ host: "127.0.0.1", port: cluster.ports[0]! }]);
    try {
      await new Promise((resolve) => client.once("ready", resolve));
      expect(client.nodes("master")).toHaveLength(3);
      const perNode = await Promise.all(client.nodes("master").map((node) => node.keys(`bull:${queue}:*`)));
      expect(perNode.filter((keys) => keys.length > 0)).toHaveLength(1);
      expect(perNode.flat()).toContain(`bull:${queue}:meta`);
    } finally {
      client.disconnect();
    }
  }, 120_000);
});
