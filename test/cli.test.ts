import { execFile, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import pg from "pg";
import { describe, expect, it } from "vitest";
import { Queue } from "bullmq";
import { BATCH_JOB_NAME } from "@auditgraph/core";
import { PostgresLedger, SegmentLedger } from "@auditgraph/ledger";
import { waitUntilIdle } from "@auditgraph/worker";
import type { Config } from "@auditgraph/cli";
import { isolatedConfig, readAll, sampleTrace, CLI_BIN, cliEnvOf, runCli } from "./helpers.js";

const run = promisify(execFile);

const cli = (config: Config, ...args: string[]) => runCli(cliEnvOf(config), ...args);

/**
 * Runs `auditgraph worker` as its own process with `env`, gives it one job of `events`, waits
 * until it is done, then stops it with SIGTERM: its exit code and everything it printed.
 */
async function workerRun(config: Config, env: NodeJS.ProcessEnv, events: unknown[]) {
  const child = spawn(process.execPath, [CLI_BIN, "worker"], { env, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout.on("data", (b: Buffer) => (out += b.toString()));
  child.stderr.on("data", (b: Buffer) => (out += b.toString()));
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  const queue = new Queue(config.queueName, { connection: config.redis });
  try {
    await queue.add(BATCH_JOB_NAME, { events });
    await waitUntilIdle(queue);
    child.kill("SIGTERM");
    return { code: await exited, out };
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    await queue.obliterate({ force: true }).catch(() => undefined);
    await queue.close();
  }
}

describe("auditgraph CLI", () => {
  it("worker: records jobs, then on SIGTERM finishes and exits 0; verify: OK, then names a flipped record", { timeout: 240_000 }, async () => {
    const config = await isolatedConfig();
    const events = sampleTrace();
    const { code, out } = await workerRun(config, cliEnvOf(config), events);
    expect(code).toBe(0);
    expect(out).toMatch(/SIGTERM[\s\S]*stopped/);
    const records = await readAll(new SegmentLedger(config.ledgerDir));
    expect(records).toHaveLength(events.length);

    const ok = await cli(config, "verify");
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain(`OK: ${events.length} events in 1 streams`);

    // Flip one byte inside the fourth record's text: its ciphertext, as the worker seals payloads.
    const path = new SegmentLedger(config.ledgerDir).segmentPath(records[3]!.streamId);
    const bytes = await readFile(path);
    const lineStart = bytes.toString("utf8").split("\n").slice(0, 3).join("\n").length + 1;
    expect(bytes.indexOf('"add"')).toBe(-1);
    const at = bytes.indexOf('"ciphertext":"', lineStart) + '"ciphertext":"'.length;
    bytes[at] = bytes[at]! ^ 0x01;
    await writeFile(path, bytes);
    const bad = await cli(config, "verify");
    expect(bad.code).toBe(1);
    expect(bad.stdout).toContain(`position 3, event ${records[3]!.event.eventId}: edited`);
  });

  // Several CLI processes and a worker: on a busy machine this takes a while.
  it("keygen, a signing worker, prove and verify-proof: a third party checks an event with the public key alone", { timeout: 240_000 }, async () => {
    const config = await isolatedConfig();
    const keysDir = join(config.ledgerDir, "..", "keys");
    const keygen = await cli(config, "keygen", "--out", keysDir);
    expect(keygen.code).toBe(0);
    const env = { ...cliEnvOf(config), AUDITGRAPH_SIGNING_KEY: join(keysDir, "checkpoint-signing-key.pem") };
    const events = sampleTrace();
    expect((await workerRun(config, env, events)).code).toBe(0);

    const verified = await run(process.execPath, [CLI_BIN, "verify"], { env });
    expect(verified.stdout).toMatch(/OK: 6 events in 1 streams\n.*root [0-9a-f]{64}, 1 signed checkpoints verified/);

    const proof = await run(process.execPath, [CLI_BIN, "prove", events[2]!.eventId], { env });
    const file = join(config.ledgerDir, "..", "proof.json");
    await writeFile(file, proof.stdout);
    const publicKey = join(keysDir, "checkpoint-public-key.pem");
    const ok = await cli(config, "verify-proof", file, "--public-key", publicKey);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain(`OK: event ${events[2]!.eventId} is record 2 of the 6`);

    const forged = JSON.parse(proof.stdout);
    forged.record.event.occurredAt = new Date(0).toISOString();
    await writeFile(file, JSON.stringify(forged));
    const refused = await cli(config, "verify-proof", file, "--public-key", publicKey);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/inclusion|root/i);
  });

  it("verify on the PostgreSQL ledger: OK with count and root, then names a record edited behind the triggers' back", async () => {
    const config = await isolatedConfig();
    const url = process.env.AUDITGRAPH_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
    const schema = `cli_${randomUUID().replace(/-/g, "").slice(0, 12)}`;
    const env = { ...cliEnvOf(config), AUDITGRAPH_LEDGER_URL: url, AUDITGRAPH_LEDGER_SCHEMA: schema };
    const verify = () =>
      run(process.execPath, [CLI_BIN, "verify"], { env }).then(
        (r) => ({ code: 0, ...r }),
        (e: { code: number; stdout: string }) => e,
      );
    // `auditgraph ledger init`'s work, done as the tests' superuser.
    await PostgresLedger.init({ connectionString: url, schema });
    const ledger = await PostgresLedger.open({ connectionString: url, schema });
    const db = new pg.Client({ connectionString: url });
    await db.connect();
    try {
      const events = sampleTrace();
      const { records } = await ledger.append("tenant-a", events);
      const expected = await ledger.verify();
      if (!expected.ok) throw new Error("the fresh ledger does not verify");

      const ok = await verify();
      expect(ok.code).toBe(0);
      expect(ok.stdout).toContain(`OK: ${events.length} events in 1 streams`);
      expect(ok.stdout).toContain(`tenant-a: ${events.length} events, root ${expected.streams[0]!.root}`);

      // As a superuser can: switch the append-only triggers off, edit, switch them back on.
      const table = `"${schema}".ledger_records`;
      await db.query(`ALTER TABLE ${table} DISABLE TRIGGER USER`);
      const edited = await db.query(
        `UPDATE ${table} SET record_text = replace(record_text, '"output":"3"', '"output":"4"') WHERE stream_id = $1 AND position = $2`,
        ["tenant-a", 4],
      );
      await db.query(`ALTER TABLE ${table} ENABLE TRIGGER USER`);
      expect(edited.rowCount).toBe(1);
      const bad = await verify();
      expect(bad.code).toBe(1);
      expect(bad.stdout).toContain(`FAILED: stream tenant-a, position 4, event ${records[4]!.event.eventId}: edited`);
    } finally {
      await ledger.close();
      await db.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await db.end();
    }
  });

  it("names the variable of a bad setting and exits 2", async () => {
    const config = await isolatedConfig();
    const { code, stderr } = await run(process.execPath, [CLI_BIN, "verify"], {
      env: { ...cliEnvOf(config), NEO4J_URI: "http://nope", AUDITGRAPH_REDIS_URL: "not a url" },
    }).then(
      () => ({ code: 0, stderr: "" }),
      (e: { code: number; stderr: string }) => e,
    );
    expect(code).toBe(2);
    expect(stderr).toMatch(/invalid configuration: .*AUDITGRAPH_REDIS_URL.*NEO4J_URI: must be a bolt/);
  });

  it("query: runs a named investigation as JSON, and names what is wrong with a bad call", async () => {
    const config = await isolatedConfig();
    const ok = await cli(config, "query", "user-activity", "--param", "tenantId=nobody-here", "--param", "userId=u1", "--json");
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.stdout)).toEqual([]);
    const unknown = await cli(config, "query", "everything");
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('no investigation "everything"; there are: on-behalf-of, blast-radius, user-activity');
    const bad = await cli(config, "query", "blast-radius", "--param", "tenantId=t");
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/modelVersion/);
  });

  it("trace: prints a lineage as JSON, and says so when the id is unknown", async () => {
    const config = await isolatedConfig();
    const missing = await cli(config, "trace", "no-such-id");
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('no output or trace with id "no-such-id"');
  });
});
