import { spawn, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { afterAll, describe, expect, it } from "vitest";
import { Queue } from "bullmq";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-proto";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { BasicTracerProvider, BatchSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { streamIdFor } from "@auditgraph/core";
import { SegmentLedger } from "@auditgraph/ledger";
import { waitUntilIdle } from "@auditgraph/worker";
import { emitCurrentRun, idOf, traceOf } from "../packages/otel/test/genai-spans.js";
import { CLI_BIN, cliEnvOf, eventually, isolatedConfig, readAll, runCli } from "./helpers.js";
import { freePort } from "./redis-process.js";

/**
 * The CLI's side of OTLP ingest: `auditgraph otlp-token` prints a token and its
 * AUDITGRAPH_OTLP_TOKENS entry, and `auditgraph worker` serves POST /v1/traces on
 * AUDITGRAPH_WORKER_HTTP_PORT with that entry, recording the SDK's export for the token's tenant.
 */

const cleanup: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  for (const step of cleanup.reverse()) await step().catch(() => undefined);
});

describe("auditgraph otlp-token and the CLI worker's receiver", () => {
  it("prints a token whose SHA-256 is the entry's, refuses a missing tenant or an unknown flag", async () => {
    const config = await isolatedConfig();
    const env = cliEnvOf(config);
    const made = await runCli(env, "otlp-token", "--tenant", "acme:eu", "--json");
    expect(made.code).toBe(0);
    const { tenantId, token, entry } = JSON.parse(made.stdout) as { tenantId: string; token: string; entry: string };
    expect(tenantId).toBe("acme:eu");
    expect(token).toMatch(/^agotlp_[A-Za-z0-9_-]{43}$/);
    expect(entry).toBe(`acme:eu:${createHash("sha256").update(token).digest("hex")}`);
    const again = JSON.parse((await runCli(env, "otlp-token", "--tenant", "acme:eu", "--json")).stdout) as { token: string };
    expect(again.token).not.toBe(token);
    const plain = await runCli(env, "otlp-token", "--tenant", "acme");
    expect(plain.stdout).toMatch(/^token: agotlp_/m);
    expect(plain.stdout).toMatch(/^AUDITGRAPH_OTLP_TOKENS entry: acme:[0-9a-f]{64}$/m);
    const missing = await runCli(env, "otlp-token");
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("--tenant");
    const unknown = await runCli(env, "otlp-token", "--tenant", "acme", "--tennant", "x");
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("--tennant");
  });

  it("the CLI worker records spans exported to its HTTP port for the token's tenant, and never prints the token", async () => {
    const config = await isolatedConfig();
    const tenant = `otlp-cli-${config.queueName}`;
    const made = JSON.parse((await runCli(cliEnvOf(config), "otlp-token", "--tenant", tenant, "--json")).stdout) as { token: string; entry: string };
    const port = await freePort();
    const env = { ...cliEnvOf(config), AUDITGRAPH_WORKER_HTTP_PORT: String(port), AUDITGRAPH_OTLP_TOKENS: made.entry, AUDITGRAPH_LOG_LEVEL: "debug" };
    const child: ChildProcess = spawn(process.execPath, [CLI_BIN, "worker"], { env, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout!.on("data", (b: Buffer) => (out += b.toString()));
    child.stderr!.on("data", (b: Buffer) => (out += b.toString()));
    cleanup.push(async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    });
    await eventually(async () => (out.includes("auditgraph worker: queue") ? true : undefined), 60_000).catch((e) => {
      throw new Error(`${(e as Error).message}: the worker never said it was ready:\n${out}`);
    });
    const queue = new Queue(config.queueName, { connection: config.redis });
    cleanup.push(async () => {
      await queue.obliterate({ force: true }).catch(() => undefined);
      await queue.close();
    });

    const provider = new BasicTracerProvider({
      resource: resourceFromAttributes({ "service.name": "cli-svc" }),
      spanProcessors: [
        new BatchSpanProcessor(new OTLPTraceExporter({ url: `http://127.0.0.1:${port}/v1/traces`, headers: { Authorization: `Bearer ${made.token}` } })),
      ],
    });
    const run = emitCurrentRun(provider.getTracer("cli-it"));
    await provider.forceFlush();
    await provider.shutdown();
    await waitUntilIdle(queue, 60_000, { projection: false });

    const ledger = new SegmentLedger(config.ledgerDir);
    const records = (await readAll(ledger)).filter((r) => r.event.traceId === traceOf(run.root));
    expect(records).toHaveLength(12);
    expect(new Set(records.map((r) => r.streamId))).toEqual(new Set([streamIdFor(tenant)]));
    // The run tree, whether the CLI's key store sealed the payloads or not (ids stay in the clear).
    expect(new Set(records.map((r) => r.event.runId))).toEqual(new Set([run.root, run.chat1, run.tool, run.chat2].map(idOf)));
    child.kill("SIGTERM");
    await new Promise((resolve) => (child.exitCode !== null ? resolve(null) : child.once("exit", resolve)));
    expect(out).not.toContain(made.token);
  });
});
