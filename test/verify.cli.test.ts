import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomUUID } from "node:crypto";
import { beforeAll, describe, expect, it } from "vitest";
import { streamIdFor } from "@auditgraph/core";
import { CheckpointSigner, SegmentLedger, checkpointExporter, generateSigningKey } from "@auditgraph/ledger";
import { runCli, sampleTrace } from "./helpers.js";

const cli = (env: Record<string, string>, ...args: string[]) => {
  const base = { ...process.env };
  // The tests choose which of these are set.
  for (const name of ["AUDITGRAPH_PUBLIC_KEY", "AUDITGRAPH_SIGNING_KEY", "AUDITGRAPH_CHECKPOINT_FILE", "AUDITGRAPH_LEDGER_URL"]) delete base[name];
  return runCli({ ...base, ...env }, ...args);
};

const lines = (text: string) => text.split("\n").filter(Boolean);

// Each CLI run is a process of its own: on a busy machine a test of several takes a while.
const SLOW = { timeout: 240_000 };

/** A signed ledger of two appends of one tenant, its checkpoints also exported to a file. */
async function signedLedger() {
  const root = await mkdtemp(join(tmpdir(), "verify-cli-"));
  const paths = {
    root,
    ledgerDir: join(root, "ledger"),
    publicKey: join(root, "checkpoint-public-key.pem"),
    signingKey: join(root, "checkpoint-signing-key.pem"),
    exported: join(root, "exported-checkpoints.jsonl"),
  };
  const pair = generateSigningKey();
  await writeFile(paths.signingKey, pair.privateKeyPem);
  await writeFile(paths.publicKey, pair.publicKeyPem);
  const tenantId = `verify-${randomUUID().slice(0, 8)}`;
  const ledger = new SegmentLedger(paths.ledgerDir, {
    signer: new CheckpointSigner(await readFile(paths.signingKey, "utf8")),
    onCheckpoint: checkpointExporter({ file: paths.exported }),
  });
  const first = sampleTrace(tenantId);
  await ledger.append(streamIdFor(tenantId), first);
  await ledger.append(streamIdFor(tenantId), sampleTrace(tenantId));
  const segment = ledger.segmentPath(streamIdFor(tenantId));
  await ledger.close();
  return {
    ...paths,
    tenantId,
    streamId: streamIdFor(tenantId),
    segment,
    checkpoints: join(paths.ledgerDir, "streams", streamIdFor(tenantId), "checkpoints.jsonl"),
    firstCount: first.length,
  };
}

describe("auditgraph verify: exit 0 verified, 1 an integrity failure, 2 could not verify", () => {
  let l: Awaited<ReturnType<typeof signedLedger>>;
  beforeAll(async () => {
    l = await signedLedger();
  });

  it("verifies the signatures with AUDITGRAPH_PUBLIC_KEY, and says so (text and JSON)", SLOW, async () => {
    const env = { AUDITGRAPH_LEDGER_DIR: l.ledgerDir, AUDITGRAPH_PUBLIC_KEY: l.publicKey };
    const ok = await cli(env, "verify");
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(new RegExp(`${l.streamId}: 12 events, root [0-9a-f]{64}, 2 signed checkpoints verified`));
    const json = await cli(env, "verify", "--json");
    expect(json.code).toBe(0);
    const report = JSON.parse(json.stdout);
    expect(report).toMatchObject({ ok: true, count: 12, signatures: "verified", publicKey: "AUDITGRAPH_PUBLIC_KEY" });
    expect(report.streams[0]).toMatchObject({ count: 12, checkpoints: 2, signaturesVerified: 2 });
  });

  it("refuses with 2, naming AUDITGRAPH_PUBLIC_KEY, when signed checkpoints are there and no key is", SLOW, async () => {
    const refused = await cli({ AUDITGRAPH_LEDGER_DIR: l.ledgerDir }, "verify");
    expect(refused.code).toBe(2);
    expect(refused.stdout).toBe("");
    expect(lines(refused.stderr)).toHaveLength(1);
    expect(refused.stderr).toMatch(/AUDITGRAPH_PUBLIC_KEY is not set.*--skip-signatures/);
  });

  it("--skip-signatures verifies the rest and says plainly that signatures were not checked", SLOW, async () => {
    const env = { AUDITGRAPH_LEDGER_DIR: l.ledgerDir };
    const text = await cli(env, "verify", "--skip-signatures");
    expect(text.code).toBe(0);
    expect(text.stdout).not.toContain("verified");
    expect(text.stdout).toContain("2 checkpoint roots match, signatures NOT checked");
    expect(text.stdout).toMatch(/WARNING: signatures NOT checked \(--skip-signatures\)/);
    const json = JSON.parse((await cli(env, "verify", "--skip-signatures", "--json")).stdout);
    expect(json).toMatchObject({ ok: true, signatures: "not-checked", publicKey: null });
    expect(json.warning).toMatch(/signatures NOT checked/);
    expect(json.streams[0]).toMatchObject({ checkpoints: 2, signaturesVerified: 0 });
  });

  it("a garbage signature: 1 with the public key, never 'verified' without it", SLOW, async () => {
    const bad = await signedLedger();
    const text = await readFile(bad.checkpoints, "utf8");
    await writeFile(bad.checkpoints, text.replace(/"signature":"[^"]+"/, '"signature":"Z2FyYmFnZQ=="'));
    const withKey = await cli({ AUDITGRAPH_LEDGER_DIR: bad.ledgerDir, AUDITGRAPH_PUBLIC_KEY: bad.publicKey }, "verify");
    expect(withKey.code).toBe(1);
    expect(withKey.stdout).toMatch(new RegExp(`FAILED: stream ${bad.streamId}, position 5, event \\(none\\): bad-signature`));
    const noKey = await cli({ AUDITGRAPH_LEDGER_DIR: bad.ledgerDir }, "verify");
    expect(noKey.code).toBe(2);
    expect(noKey.stdout).not.toContain("verified");
    const skipped = await cli({ AUDITGRAPH_LEDGER_DIR: bad.ledgerDir }, "verify", "--skip-signatures");
    expect(skipped.code).toBe(0);
    expect(skipped.stdout).not.toContain("verified");
    expect(skipped.stdout).toContain("signatures NOT checked");
  });

  it("a ledger directory that does not exist is 2, naming AUDITGRAPH_LEDGER_DIR", SLOW, async () => {
    const nowhere = join(l.root, "no-such-ledger");
    const missing = await cli({ AUDITGRAPH_LEDGER_DIR: nowhere, AUDITGRAPH_PUBLIC_KEY: l.publicKey }, "verify");
    expect(missing.code).toBe(2);
    expect(missing.stdout).toBe("");
    expect(missing.stderr).toContain(`AUDITGRAPH_LEDGER_DIR: no ledger at ${nowhere}`);
    expect(lines(missing.stderr)).toHaveLength(1);
  });

  it("an unreadable AUDITGRAPH_PUBLIC_KEY is 2, naming it", SLOW, async () => {
    const bad = await cli({ AUDITGRAPH_LEDGER_DIR: l.ledgerDir, AUDITGRAPH_PUBLIC_KEY: join(l.root, "nope.pem") }, "verify");
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/AUDITGRAPH_PUBLIC_KEY: cannot read/);
    await writeFile(join(l.root, "not-a-key.pem"), "hello");
    const notKey = await cli({ AUDITGRAPH_LEDGER_DIR: l.ledgerDir, AUDITGRAPH_PUBLIC_KEY: join(l.root, "not-a-key.pem") }, "verify");
    expect(notKey.code).toBe(2);
    expect(notKey.stderr).toMatch(/AUDITGRAPH_PUBLIC_KEY: .* is not a public key/);
  });

  it("checks AUDITGRAPH_CHECKPOINT_FILE without a flag: a cut tail with its local checkpoints is caught", SLOW, async () => {
    const cut = await signedLedger();
    // Cut the second append and its checkpoint: what the ledger holds is consistent on its own.
    const segment = await readFile(cut.segment, "utf8");
    await writeFile(cut.segment, `${lines(segment).slice(0, cut.firstCount).join("\n")}\n`);
    await writeFile(cut.checkpoints, `${lines(await readFile(cut.checkpoints, "utf8"))[0]}\n`);
    const env = { AUDITGRAPH_LEDGER_DIR: cut.ledgerDir, AUDITGRAPH_PUBLIC_KEY: cut.publicKey };
    const alone = await cli(env, "verify");
    expect(alone.code).toBe(0);
    expect(alone.stdout).toContain(`${cut.streamId}: 6 events`);
    const caught = await cli({ ...env, AUDITGRAPH_CHECKPOINT_FILE: cut.exported }, "verify", "--json");
    expect(caught.code).toBe(1);
    expect(JSON.parse(caught.stdout)).toMatchObject({ ok: false, failure: { streamId: cut.streamId, reason: "truncated" }, checkpointFiles: [cut.exported] });
    const gone = await cli({ ...env, AUDITGRAPH_CHECKPOINT_FILE: join(cut.root, "missing.jsonl") }, "verify");
    expect(gone.code).toBe(2);
    expect(gone.stderr).toMatch(/AUDITGRAPH_CHECKPOINT_FILE: cannot read/);
  });
});

describe("auditgraph verify-proof and snapshot verify: 0 it holds, 1 it does not, 2 could not check", () => {
  it("verify-proof", SLOW, async () => {
    const l = await signedLedger();
    const env = { AUDITGRAPH_LEDGER_DIR: l.ledgerDir };
    const ledger = new SegmentLedger(l.ledgerDir);
    const bundle = await ledger.prove((await ledger.readStream(l.streamId, 2, 3)[Symbol.asyncIterator]().next()).value!.event.eventId);
    await ledger.close();
    const file = join(l.root, "proof.json");
    await writeFile(file, JSON.stringify(bundle));

    const ok = await cli(env, "verify-proof", file, "--public-key", l.publicKey, "--json");
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({ ok: true, kind: "inclusion", leafIndex: 2, treeSize: 12 });
    // The configured key serves when no --public-key is given.
    expect((await cli({ ...env, AUDITGRAPH_PUBLIC_KEY: l.publicKey }, "verify-proof", file)).code).toBe(0);

    const forged = structuredClone(bundle);
    forged.leafIndex = 3;
    forged.record.position = 3;
    await writeFile(join(l.root, "forged.json"), JSON.stringify(forged));
    const refused = await cli(env, "verify-proof", join(l.root, "forged.json"), "--public-key", l.publicKey);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^FAILED: /);

    const missing = await cli(env, "verify-proof", join(l.root, "none.json"), "--public-key", l.publicKey);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/<file>: cannot read/);
    await writeFile(join(l.root, "broken.json"), "{ not json");
    const broken = await cli(env, "verify-proof", join(l.root, "broken.json"), "--public-key", l.publicKey);
    expect(broken.code).toBe(2);
    expect(broken.stderr).toMatch(/is not JSON/);
    const noKey = await cli(env, "verify-proof", file);
    expect(noKey.code).toBe(2);
    expect(noKey.stderr).toMatch(/--public-key: no public key given.*AUDITGRAPH_PUBLIC_KEY/);
    const keyGone = await cli(env, "verify-proof", file, "--public-key", join(l.root, "nope.pem"));
    expect(keyGone.code).toBe(2);
    expect(keyGone.stderr).toMatch(/--public-key: cannot read/);
  });

  it("snapshot verify", SLOW, async () => {
    const l = await signedLedger();
    const env = { AUDITGRAPH_LEDGER_DIR: l.ledgerDir, AUDITGRAPH_KEYSTORE_DIR: join(l.root, "keystore") };
    const file = join(l.root, "snap.json");
    const created = await cli(env, "snapshot", "create", "--out", file, "--tenant", l.tenantId, "--json");
    expect(created.code).toBe(0);
    expect(JSON.parse(created.stdout)).toMatchObject({ file, manifest: { traceCount: 2, recordCount: 12 } });

    const ok = await cli(env, "snapshot", "verify", file, "--public-key", l.publicKey, "--json");
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.stdout)).toEqual({ ok: true, traces: 2, records: 12 });

    const altered = JSON.parse(await readFile(file, "utf8"));
    altered.traces[0].records[1].record.recordedAt = new Date(0).toISOString();
    await writeFile(`${file}.altered`, JSON.stringify(altered));
    const bad = await cli(env, "snapshot", "verify", `${file}.altered`, "--public-key", l.publicKey);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain(altered.traces[0].records[1].record.event.eventId);
    // Not a snapshot at all: it does not check (1), it was read.
    await writeFile(`${file}.other`, JSON.stringify({ hello: "world" }));
    expect((await cli(env, "snapshot", "verify", `${file}.other`, "--public-key", l.publicKey)).code).toBe(1);

    const missing = await cli(env, "snapshot", "verify", join(l.root, "none.json"), "--public-key", l.publicKey);
    expect(missing.code).toBe(2);
    await writeFile(`${file}.broken`, "{");
    const broken = await cli(env, "snapshot", "verify", `${file}.broken`, "--public-key", l.publicKey);
    expect(broken.code).toBe(2);
    expect(broken.stderr).toMatch(/is not JSON/);
    const noKey = await cli(env, "snapshot", "verify", file);
    expect(noKey.code).toBe(2);
    expect(noKey.stderr).toMatch(/AUDITGRAPH_PUBLIC_KEY/);
    await rm(l.root, { recursive: true, force: true });
  });
});
