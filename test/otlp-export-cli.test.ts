/**
 * Issue 17, export, from the command line: `auditgraph worker` reads AUDITGRAPH_OTLP_EXPORT_* and
 * forwards what it records (flushed on SIGTERM at the latest), sends the headers and never prints
 * them; a bad setting stops it at start, naming the variable.
 */
import { spawn } from "node:child_process";
import { afterEach, describe, expect, it } from "vitest";
import { Queue } from "bullmq";
import { BATCH_JOB_NAME } from "@auditgraph/core";
import { waitUntilIdle } from "@auditgraph/worker";
import { CLI_BIN, cliEnvOf, isolatedConfig, runCli, sampleTrace } from "./helpers.js";
import { startOtlpReceiver } from "./otlp-export-receiver.js";

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!().catch(() => undefined);
});

const TOKEN = "cGstbGYtMTIzOnNrLWxmLTQ1Ng==";

describe("auditgraph worker with AUDITGRAPH_OTLP_EXPORT_URL", () => {
  it("exports a job's trace as GenAI spans with the configured headers and protocol, and never prints the headers", async () => {
    const receiver = await startOtlpReceiver();
    cleanups.push(() => receiver.close());
    const config = await isolatedConfig();
    const env = {
      ...cliEnvOf(config),
      AUDITGRAPH_OTLP_EXPORT_URL: receiver.url,
      AUDITGRAPH_OTLP_EXPORT_HEADERS: `Authorization=Basic%20${encodeURIComponent(TOKEN)},x-langfuse-ingestion-version=4`,
      AUDITGRAPH_OTLP_EXPORT_PROTOCOL: "http/json",
    };
    const child = spawn(process.execPath, [CLI_BIN, "worker"], { env, stdio: ["ignore", "pipe", "pipe"] });
    cleanups.push(async () => child.exitCode === null && child.signalCode === null && child.kill("SIGKILL"));
    let out = "";
    child.stdout.on("data", (b: Buffer) => (out += b.toString()));
    child.stderr.on("data", (b: Buffer) => (out += b.toString()));
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    const queue = new Queue(config.queueName, { connection: config.redis });
    cleanups.push(() => queue.obliterate({ force: true }).then(() => queue.close()));
    const events = sampleTrace();
    await queue.add(BATCH_JOB_NAME, { events });
    await waitUntilIdle(queue, 60_000, { projection: false });
    child.kill("SIGTERM");
    expect(await exited).toBe(0);

    const spans = receiver.spans();
    expect(spans.map((s) => s.name).sort()).toEqual(["chat fake-model", "execute_tool add", "invoke_agent Test agent"]);
    for (const r of receiver.requests) {
      expect(r.headers.authorization).toBe(`Basic ${TOKEN}`);
      expect(r.headers["x-langfuse-ingestion-version"]).toBe("4");
      expect(r.headers["content-type"]).toBe("application/json");
    }
    expect(out).toContain("exporting recorded events as GenAI spans over OTLP");
    expect(out).toContain(new URL(receiver.url).host);
    expect(out).not.toContain(TOKEN);
    expect(out).not.toContain(encodeURIComponent(TOKEN));
  });

  it("refuses a bad setting at start, naming the variable", async () => {
    const config = await isolatedConfig();
    const bad = await runCli(
      { ...cliEnvOf(config), AUDITGRAPH_OTLP_EXPORT_URL: "http://127.0.0.1:4318/v1/traces", AUDITGRAPH_OTLP_EXPORT_PROTOCOL: "grpc" },
      "worker",
    );
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain("AUDITGRAPH_OTLP_EXPORT_PROTOCOL");
  });
});
