import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { SCHEMA_VERSION, newEventId, streamIdFor, type AuditEvent } from "@auditgraph/core";
import { CheckpointSigner, SegmentLedger, checkpointExporter } from "@auditgraph/ledger";
import { runCli } from "./helpers.js";

const DAY = 86_400_000;

const cli = (env: Record<string, string>, ...args: string[]) => runCli({ ...process.env, ...env }, ...args);

const event = (tenantId: string, user: string, n: number): AuditEvent => ({
  eventId: newEventId(),
  schemaVersion: SCHEMA_VERSION,
  type: "text",
  occurredAt: new Date().toISOString(),
  traceId: `trace-${n}`,
  runId: `run-${n}`,
  parentRunId: null,
  sessionId: null,
  identity: { user: { id: user, tenantId }, agent: { id: "a", name: "A", version: "1" } },
  payload: { text: `record ${n}` },
});

describe("auditgraph hold / expire / prove-consistency", () => {
  // A dozen CLI processes: on a busy machine this takes a while.
  it("expires old segments whose checkpoints were exported, stops at a legal hold, and verify reports the expired range", { timeout: 240_000 }, async () => {
    const root = await mkdtemp(join(tmpdir(), "cli-retention-"));
    const keyDir = join(root, "keys");
    const tenant = "globex";
    const stream = streamIdFor(tenant);
    expect((await cli({}, "keygen", "--out", keyDir)).code).toBe(0);
    const env = {
      AUDITGRAPH_LEDGER_DIR: join(root, "ledger"),
      AUDITGRAPH_SIGNING_KEY: join(keyDir, "checkpoint-signing-key.pem"),
      AUDITGRAPH_PUBLIC_KEY: join(keyDir, "checkpoint-public-key.pem"),
      AUDITGRAPH_CHECKPOINT_FILE: join(root, "kept-checkpoints.jsonl"),
      AUDITGRAPH_RETENTION: JSON.stringify({ days: 30 }),
    };
    const signer = new CheckpointSigner(await readFile(env.AUDITGRAPH_SIGNING_KEY, "utf8"));
    const ledger = new SegmentLedger(env.AUDITGRAPH_LEDGER_DIR, {
      signer,
      onCheckpoint: checkpointExporter({ file: env.AUDITGRAPH_CHECKPOINT_FILE }),
      maxSegmentBytes: 1,
    });
    // Three 90-day-old segments, the middle one with carol's records, then a fresh one.
    for (const [b, user] of ["dave", "carol", "dave", "dave"].entries()) {
      const recordedAt = new Date(Date.now() - (b < 3 ? 90 : 1) * DAY).toISOString();
      await ledger.append(
        stream,
        [0, 1].map((i) => event(tenant, user, b * 2 + i)),
        recordedAt,
      );
    }
    await ledger.close();

    const missing = await cli({ ...env, AUDITGRAPH_RETENTION: "{days:" }, "expire");
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toMatch(/AUDITGRAPH_RETENTION/);

    const hold = await cli(env, "hold", "--tenant", tenant, "--user", "carol", "--reason", "matter 7");
    expect(hold.code).toBe(0);
    const holdId = /legal hold (\S+) placed/.exec(hold.stdout)?.[1];
    expect(holdId).toBeDefined();
    expect(hold.stdout).not.toContain("carol");

    const dry = await cli(env, "expire", "--dry-run");
    expect(dry.stdout).toMatch(
      new RegExp(`${stream}: would expire positions 0..1 \\(1 segments\\); kept from there: segment 1: position 2 is under legal hold ${holdId}`),
    );
    const held = await cli(env, "expire", "--json");
    expect(JSON.parse(held.stdout)[0].expired).toHaveLength(1);

    expect((await cli(env, "release-hold", holdId!)).stdout).toMatch(/released at/);
    expect((await cli(env, "holds")).stdout).toMatch(new RegExp(`${holdId}  released`));
    const released = await cli(env, "expire");
    expect(released.stdout).toMatch(new RegExp(`${stream}: expired positions 0..5 \\(2 segments\\)`));

    const verify = await cli(env, "verify", "--checkpoints", env.AUDITGRAPH_CHECKPOINT_FILE);
    expect(verify.code).toBe(0);
    expect(verify.stdout).toMatch(new RegExp(`${stream}: 2 events, root [0-9a-f]{64}, \\d+ signed checkpoints verified; positions 0..5 expired by retention`));

    const proofFile = join(root, "consistency.json");
    const proof = await cli(env, "prove-consistency", stream, "6");
    expect(proof.code).toBe(0);
    await writeFile(proofFile, proof.stdout);
    const checked = await cli(env, "verify-proof", proofFile, "--public-key", env.AUDITGRAPH_PUBLIC_KEY);
    expect(checked.stdout).toMatch(new RegExp(`OK: in stream ${stream}, the 8 records signed at \\S+ extend the 6 signed at`));
    const tooEarly = await cli(env, "prove-consistency", stream, "2");
    expect(tooEarly.stderr).toMatch(/up to position 6 have expired/);
    const bad = await cli(env, "prove-consistency", stream, "zero");
    expect(bad.stderr).toMatch(/fromSize must be a positive integer/);
  });
});
