import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomUUID } from "node:crypto";
import { beforeAll, describe, expect, it } from "vitest";
import { streamIdFor } from "@auditgraph/core";
import { CheckpointSigner, SegmentLedger, generateSigningKey, openCheckpointNote, parseNote, verifyCheckpointSignature } from "@auditgraph/ledger";
import { cliEnvOf, isolatedConfig, runCli, sampleTrace } from "./helpers.js";

const lines = (text: string) => text.split("\n").filter(Boolean);

// Each CLI run is a process of its own: on a busy machine a test of several takes a while.
const SLOW = { timeout: 240_000 };

const ORIGIN = "audit.example.com/test";

/** One line on stderr, exit 2, nothing on stdout. */
function expectRefused(result: { code: number; stdout: string; stderr: string }, pattern: RegExp) {
  expect(result.code).toBe(2);
  expect(result.stdout).toBe("");
  expect(lines(result.stderr)).toHaveLength(1);
  expect(result.stderr).toMatch(pattern);
}

describe("auditgraph checkpoint and vkey: checkpoints as C2SP signed notes", () => {
  const tenant = `note-${randomUUID().slice(0, 8)}`;
  const oldTenant = `note-old-${randomUUID().slice(0, 8)}`;
  /** A tenant with two streams: its base stream and shard 3. */
  const sharded = `note-sharded-${randomUUID().slice(0, 8)}`;
  let env: NodeJS.ProcessEnv;
  let publicKeyPem: string;

  beforeAll(async () => {
    const config = await isolatedConfig();
    const root = await mkdtemp(join(tmpdir(), "checkpoint-note-cli-"));
    const pair = generateSigningKey();
    publicKeyPem = pair.publicKeyPem;
    await writeFile(join(root, "signing.pem"), pair.privateKeyPem, { mode: 0o600 });
    await writeFile(join(root, "public.pem"), pair.publicKeyPem);
    env = {
      ...cliEnvOf(config),
      AUDITGRAPH_SIGNING_KEY: join(root, "signing.pem"),
      AUDITGRAPH_PUBLIC_KEY: join(root, "public.pem"),
      AUDITGRAPH_LOG_ORIGIN: ORIGIN,
    };
    // The tests choose these.
    delete env.AUDITGRAPH_CHECKPOINT_FILE;
    delete env.AUDITGRAPH_LEDGER_URL;

    // An old ledger's stream: its checkpoint signed before checkpoints carried a note.
    const ledger = new SegmentLedger(config.ledgerDir, { signer: new CheckpointSigner(pair.privateKeyPem) });
    await ledger.append(streamIdFor(oldTenant), sampleTrace(oldTenant));
    await ledger.close();
    const signing = new SegmentLedger(config.ledgerDir, { signer: new CheckpointSigner(pair.privateKeyPem, { origin: ORIGIN }) });
    await signing.append(streamIdFor(sharded), sampleTrace(sharded).slice(0, 2));
    await signing.append(streamIdFor(sharded, 3), sampleTrace(sharded));
    await signing.close();
    const file = join(config.ledgerDir, "streams", streamIdFor(oldTenant), "checkpoints.jsonl");
    const stripped = lines(await readFile(file, "utf8")).map((line) => {
      const { note: _note, ...old } = JSON.parse(line) as Record<string, unknown>;
      return JSON.stringify(old);
    });
    await writeFile(file, `${stripped.join("\n")}\n`);
  });

  it("a command appending through the configured ledger signs a note that `checkpoint` prints and `vkey`'s key verifies", SLOW, async () => {
    for (const version of ["1.0.0", "1.1.0"]) {
      const deployed = await runCli(env, "deploy", "--tenant", tenant, "--agent", "agent-n", "--agent-version", version, "--json");
      expect(deployed.code, deployed.stderr).toBe(0);
    }
    const printed = await runCli(env, "checkpoint", "--tenant", tenant);
    expect(printed.code, printed.stderr).toBe(0);
    const vkey = await runCli(env, "vkey");
    expect(vkey.code, vkey.stderr).toBe(0);
    expect(lines(vkey.stdout)).toHaveLength(1);
    expect(vkey.stdout).toMatch(/^audit\.example\.com\/test\+[0-9a-f]{8}\+[A-Za-z0-9+/]{44}\n$/);

    // The note exactly as printed: text, blank line, one signature line under the log origin.
    const note = printed.stdout;
    expect(note).toMatch(new RegExp(`^${ORIGIN}/${streamIdFor(tenant)}\\n2\\n[A-Za-z0-9+/]{43}=\\n\\n— ${ORIGIN} [A-Za-z0-9+/]+=*\\n$`));
    expect(parseNote(note).signatures.map((s) => s.name)).toEqual([ORIGIN]);
    const opened = openCheckpointNote(note, vkey.stdout.trim());
    expect(opened).toMatchObject({ origin: `${ORIGIN}/${streamIdFor(tenant)}`, treeSize: 2, signers: [ORIGIN] });

    const json = await runCli(env, "checkpoint", "--tenant", tenant, "--json");
    expect(json.code, json.stderr).toBe(0);
    const checkpoint = JSON.parse(json.stdout);
    expect(checkpoint).toMatchObject({ streamId: streamIdFor(tenant), treeSize: 2, rootHash: opened.rootHash, note, origin: opened.origin });
    expect(verifyCheckpointSignature(checkpoint, publicKeyPem)).toBe(true);
    expect(JSON.parse((await runCli(env, "vkey", "--json")).stdout)).toEqual({ origin: ORIGIN, vkey: vkey.stdout.trim() });

    // The ledger, the old stream without notes included, verifies.
    const verified = await runCli(env, "verify", "--json");
    expect(verified.code, verified.stderr).toBe(0);
    expect(JSON.parse(verified.stdout)).toMatchObject({ ok: true, signatures: "verified" });
  });

  it("refuses with 2 and one line: no checkpoint, one without a note, no --tenant among several streams", SLOW, async () => {
    expectRefused(await runCli(env, "checkpoint", "--tenant", `nobody-${randomUUID().slice(0, 8)}`), /--tenant "nobody-.*": no signed checkpoint/);
    expectRefused(await runCli(env, "checkpoint", "--tenant", oldTenant), /signed before checkpoints carried a signed note/);
    expectRefused(await runCli(env, "checkpoint"), /give --tenant/);
    expectRefused(await runCli(env, "checkpoint", "--tenant", ""), /--tenant.*must not be empty/);
  });

  it("--shard picks one of a tenant's streams; a tenant with several needs it, and a shard it has not is refused", SLOW, async () => {
    const third = await runCli(env, "checkpoint", "--tenant", sharded, "--shard", "3", "--json");
    expect(third.code, third.stderr).toBe(0);
    expect(JSON.parse(third.stdout)).toMatchObject({ streamId: streamIdFor(sharded, 3), treeSize: 6, origin: `${ORIGIN}/${streamIdFor(sharded, 3)}` });
    const base = await runCli(env, "checkpoint", "--tenant", sharded, "--shard", "0", "--json");
    expect(base.code, base.stderr).toBe(0);
    expect(JSON.parse(base.stdout)).toMatchObject({ streamId: streamIdFor(sharded), treeSize: 2 });

    expectRefused(
      await runCli(env, "checkpoint", "--tenant", sharded),
      new RegExp(`--tenant "${sharded}": the tenant has 2 streams \\(${streamIdFor(sharded)}, ${streamIdFor(sharded, 3)}\\).*give --shard <n> \\(0, 3\\)`),
    );
    expectRefused(
      await runCli(env, "checkpoint", "--tenant", sharded, "--shard", "2"),
      new RegExp(`--shard 2: tenant "${sharded}" has no stream ${streamIdFor(sharded, 2)}`),
    );
    for (const bad of ["-1", "1.5"]) expectRefused(await runCli(env, "checkpoint", "--tenant", sharded, "--shard", bad), /--shard <n>.*must be a shard number/);
  });

  it("refuses a bad AUDITGRAPH_LOG_ORIGIN naming it, and vkey with no key", SLOW, async () => {
    for (const origin of ["two words", "a+b"])
      expectRefused(await runCli({ ...env, AUDITGRAPH_LOG_ORIGIN: origin }, "vkey"), /invalid configuration: AUDITGRAPH_LOG_ORIGIN: must be printable ASCII/);
    const { AUDITGRAPH_SIGNING_KEY: _s, AUDITGRAPH_PUBLIC_KEY: _p, ...keyless } = env;
    expectRefused(await runCli(keyless, "vkey"), /AUDITGRAPH_PUBLIC_KEY: not set/);
  });
});
