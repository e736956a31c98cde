import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { pino } from "pino";
import { QueueTransport, type QueueTransportOptions } from "../src/index.js";

/** A logger that keeps its lines. */
function captured() {
  const lines: string[] = [];
  const logger = pino({ level: "info" }, new Writable({ write: (chunk, _enc, done) => (lines.push(String(chunk)), done()) }));
  return { logger, text: () => lines.join("") };
}

const refusal = (options: QueueTransportOptions) => {
  try {
    new QueueTransport(options);
  } catch (error) {
    return (error as Error).message;
  }
  throw new Error("the options were accepted");
};

describe("QueueTransport options", () => {
  it("refuses an unknown option, naming it", () => {
    expect(refusal({ spoolDirectory: "/tmp/x" } as QueueTransportOptions)).toMatch(/QueueTransport options.*spoolDirectory/);
    expect(refusal({ sendTimeout: 5 } as QueueTransportOptions)).toMatch(/sendTimeout\b/);
  });

  it("refuses a bad variable, naming the variable, and only the variables it reads", () => {
    expect(refusal({ env: { AUDITGRAPH_REDIS_URL: "http://127.0.0.1:6379" } })).toMatch(/environment: AUDITGRAPH_REDIS_URL/);
    expect(refusal({ env: { AUDITGRAPH_REDIS_URL: "redis://127.0.0.1:6379/zero" } })).toMatch(/AUDITGRAPH_REDIS_URL: .*database number/);
    expect(refusal({ env: { AUDITGRAPH_QUEUE: "audit events" } })).toMatch(/AUDITGRAPH_QUEUE/);
    expect(refusal({ env: { AUDITGRAPH_SPOOL_DIR: "" } })).toMatch(/AUDITGRAPH_SPOOL_DIR/);
    expect(refusal({ env: { AUDITGRAPH_REDIS_CLUSTER_NODES: "10.0.0.1" } })).toMatch(/AUDITGRAPH_REDIS_CLUSTER_NODES: must be host:port/);
    // A cluster's queue must be a hash tag: named where the queue name came from.
    expect(refusal({ env: { AUDITGRAPH_REDIS_CLUSTER_NODES: "10.0.0.1:7000", AUDITGRAPH_QUEUE: "audit" } })).toMatch(
      /environment: AUDITGRAPH_QUEUE: must be a hash tag/,
    );
    expect(refusal({ queueName: "audit", env: { AUDITGRAPH_REDIS_CLUSTER_NODES: "10.0.0.1:7000" } })).toMatch(
      /QueueTransport options: queueName: must be a hash tag/,
    );
    expect(refusal({ queueName: "audit", connection: { clusterNodes: [{ host: "10.0.0.1", port: 7000 }] } })).toMatch(
      /queueName: must be a hash tag.*connection\.clusterNodes/,
    );
  });

  it("an option wins over its variable, and a variable an option overrides is not read", async () => {
    const spoolDir = await mkdtemp(join(tmpdir(), "auditgraph-options-"));
    const log = captured();
    const transport = new QueueTransport({
      connection: { host: "127.0.0.1", port: 6379 },
      queueName: "from-code",
      spoolDir,
      logger: log.logger,
      env: { AUDITGRAPH_REDIS_URL: "not a url", AUDITGRAPH_QUEUE: "not a queue!", AUDITGRAPH_SPOOL_DIR: "" },
    });
    try {
      expect(transport.queue.name).toBe("from-code");
      expect(log.text()).toContain(spoolDir);
    } finally {
      await transport.close();
    }
  });

  it("with nothing given: redis://127.0.0.1:6379, auditgraph-events, .auditgraph/spool; said once at start, without credentials", async () => {
    const spoolDir = await mkdtemp(join(tmpdir(), "auditgraph-options-"));
    const log = captured();
    // Everything from the (empty) environment but the spool, which would land in this repository.
    const defaults = new QueueTransport({ env: {}, spoolDir, logger: log.logger });
    await defaults.close();
    expect(defaults.queue.name).toBe("auditgraph-events");
    const started = log
      .text()
      .split("\n")
      .filter((l) => l.includes("audit transport started"));
    expect(started).toHaveLength(1);
    expect(JSON.parse(started[0]!)).toMatchObject({ redis: { nodes: ["127.0.0.1:6379"], tls: false }, queue: "auditgraph-events", spoolDir });

    const secret = `pw-${Math.random().toString(36).slice(2)}`;
    const user = `ops-${Math.random().toString(36).slice(2)}`;
    const other = captured();
    const fromEnv = new QueueTransport({
      env: {
        AUDITGRAPH_REDIS_URL: `rediss://${user}:${secret}@redis.internal:6380/4`,
        AUDITGRAPH_QUEUE: "{audit}",
        AUDITGRAPH_REDIS_CLUSTER_NODES: "10.0.0.1:7000,10.0.0.2:7001",
      },
      spoolDir,
      logger: other.logger,
      sendTimeoutMs: 100,
      closeTimeoutMs: 500,
    });
    await fromEnv.close();
    expect(fromEnv.queue.name).toBe("{audit}");
    const line = JSON.parse(
      other
        .text()
        .split("\n")
        .find((l) => l.includes("audit transport started"))!,
    ) as Record<string, unknown>;
    expect(line).toMatchObject({ redis: { nodes: ["10.0.0.1:7000", "10.0.0.2:7001"], db: 4, tls: true }, queue: "{audit}" });
    expect(other.text()).not.toContain(secret);
    expect(other.text()).not.toContain(user);
    expect(other.text()).not.toContain("rediss://");
  });
});
