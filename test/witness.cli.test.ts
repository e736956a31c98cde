import { execFile, spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { streamIdFor } from "@auditgraph/core";
import { CheckpointSigner, SegmentLedger, cosign, formatNote, generateSigningKey, parseNote } from "@auditgraph/ledger";
import { textEvent } from "../packages/ledger/test/text-event.js";

// The CLI as a user runs it (built: `npx tsc -b` first), each command a process of its own.
const CLI_BIN = fileURLToPath(new URL("../packages/cli/bin/auditgraph.js", import.meta.url));
const SLOW = { timeout: 240_000 };
const ORIGIN = "audit.example.com/witnessed";
const TENANT = "t";

async function runCli(env: NodeJS.ProcessEnv, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [CLI_BIN, ...args], { env });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

interface RunningWitness {
  url: string;
  child: ChildProcess;
  /** SIGTERM, and the exit code it stopped with. */
  stop(): Promise<number | null>;
}

/** Starts `auditgraph witness` on a free port; resolves once its log line says where it listens. */
function startWitness(env: NodeJS.ProcessEnv, ...args: string[]): Promise<RunningWitness> {
  const child = spawn(process.execPath, [CLI_BIN, "witness", "--port", "0", ...args], { env, stdio: ["ignore", "pipe", "pipe"] });
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  let stderr = "";
  child.stderr!.on("data", (chunk) => (stderr += String(chunk)));
  return new Promise((resolve, reject) => {
    void exited.then((code) => reject(new Error(`witness exited ${code}: ${stderr}`)));
    createInterface({ input: child.stdout! }).on("line", (line) => {
      const entry = JSON.parse(line) as { msg?: string; url?: string };
      if (entry.msg === "witness listening")
        resolve({
          url: entry.url!,
          child,
          stop: () => {
            child.kill("SIGTERM");
            return exited;
          },
        });
    });
  });
}

describe("auditgraph witness, checkpoint --witness and k-of-n cosignature checks", () => {
  let root: string;
  let env: NodeJS.ProcessEnv;
  let ledger: SegmentLedger;
  let logVkey: string;
  const witnesses: Record<"a" | "b", { name: string; keyFile: string; state: string; vkey: string; run?: RunningWitness }> = {} as never;
  const eventIds: string[] = [];

  async function append(n: number) {
    const events = Array.from({ length: n }, (_, i) => textEvent(eventIds.length + i));
    eventIds.push(...events.map((e) => e.eventId));
    await ledger.append(streamIdFor(TENANT), events);
  }

  const start = (w: "a" | "b") =>
    startWitness(env, "--state", witnesses[w].state, "--name", witnesses[w].name, "--key", witnesses[w].keyFile, "--log", logVkey).then(
      (run) => (witnesses[w].run = run),
    );

  /** `prove` of an event, written to a file for `verify-proof`. */
  async function proofFile(eventId: string): Promise<{ path: string; bundle: { checkpoint: { note: string; treeSize: number } } }> {
    const proved = await runCli(env, "prove", eventId);
    expect(proved.code, proved.stderr).toBe(0);
    const path = join(root, `proof-${eventId}.json`);
    await writeFile(path, proved.stdout);
    return { path, bundle: JSON.parse(proved.stdout) };
  }

  const keys = (...w: ("a" | "b")[]) => w.flatMap((x) => ["--witness-key", witnesses[x].vkey]);

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), "witness-cli-"));
    const log = generateSigningKey();
    await writeFile(join(root, "log.pem"), log.privateKeyPem, { mode: 0o600 });
    await writeFile(join(root, "log.pub"), log.publicKeyPem);
    env = {
      ...process.env,
      AUDITGRAPH_LEDGER_DIR: join(root, "ledger"),
      AUDITGRAPH_SIGNING_KEY: join(root, "log.pem"),
      AUDITGRAPH_PUBLIC_KEY: join(root, "log.pub"),
      AUDITGRAPH_LOG_ORIGIN: ORIGIN,
      AUDITGRAPH_COSIGNATURE_DIR: join(root, "cosignatures"),
    };
    for (const name of [
      "AUDITGRAPH_CHECKPOINT_FILE",
      "AUDITGRAPH_LEDGER_URL",
      "AUDITGRAPH_WITNESSES",
      "AUDITGRAPH_WITNESS_KEY",
      "AUDITGRAPH_CHECKPOINT_WEBHOOK",
    ])
      delete env[name];
    ledger = new SegmentLedger(join(root, "ledger"), { signer: new CheckpointSigner(log.privateKeyPem, { origin: ORIGIN }) });
    await append(3);
    const vkey = await runCli(env, "vkey");
    expect(vkey.code, vkey.stderr).toBe(0);
    logVkey = vkey.stdout.trim();
    for (const w of ["a", "b"] as const) {
      const keyFile = join(root, `witness-${w}.pem`);
      await writeFile(keyFile, generateSigningKey().privateKeyPem, { mode: 0o600 });
      const name = `witness.example/${w}`;
      const printed = await runCli(env, "witness", "vkey", "--name", name, "--key", keyFile);
      expect(printed.code, printed.stderr).toBe(0);
      witnesses[w] = { name, keyFile, state: join(root, `state-${w}`), vkey: printed.stdout.trim() };
      expect(witnesses[w].vkey).toMatch(new RegExp(`^witness\\.example/${w}\\+[0-9a-f]{8}\\+[A-Za-z0-9+/]{44}$`));
    }
    await Promise.all([start("a"), start("b")]);
  }, SLOW.timeout);

  afterAll(async () => {
    await ledger?.close();
    for (const w of Object.values(witnesses)) await w.run?.stop();
  });

  it("cosigns through two witnesses; prove carries both cosignatures; verify-proof wants 2 of 2 and gets them", SLOW, async () => {
    const done = await runCli(env, "checkpoint", "--tenant", TENANT, "--witness", witnesses.a.run!.url, "--witness", witnesses.b.run!.url);
    expect(done.code, done.stderr).toBe(0);
    expect(parseNote(done.stdout).signatures.map((s) => s.name)).toEqual([ORIGIN, witnesses.a.name, witnesses.b.name]);
    // Without --witness, `checkpoint` prints the stored cosigned note.
    expect((await runCli(env, "checkpoint", "--tenant", TENANT)).stdout).toBe(done.stdout);

    const { path, bundle } = await proofFile(eventIds[0]!);
    expect(bundle.checkpoint.note).toBe(done.stdout);
    const both = await runCli(env, "verify-proof", path, ...keys("a", "b"), "--witnesses-required", "2");
    expect(both.code, both.stderr).toBe(0);
    expect(both.stdout).toMatch(/WITNESSED: .* cosigned by witness\.example\/a, witness\.example\/b \(2 required\)/);
    // Old bundles and notes read as ever: no witness flag, no cosignature asked.
    expect((await runCli(env, "verify-proof", path)).code).toBe(0);
    const verified = await runCli(env, "verify", "--json", ...keys("a", "b"));
    expect(verified.code, verified.stderr).toBe(0);
    expect(JSON.parse(verified.stdout)).toMatchObject({ ok: true, witnesses: { required: 2, streams: [{ ok: true, treeSize: 3, missing: [] }] } });
  });

  it("with one witness's cosignature, 2 required fails with exit 3 naming the missing one; 1 required passes", SLOW, async () => {
    await append(2);
    const onlyA = await runCli(env, "checkpoint", "--tenant", TENANT, "--witness", witnesses.a.run!.url);
    expect(onlyA.code, onlyA.stderr).toBe(0);
    expect(parseNote(onlyA.stdout).signatures.map((s) => s.name)).toEqual([ORIGIN, witnesses.a.name]);
    const { path } = await proofFile(eventIds[4]!);
    const two = await runCli(env, "verify-proof", path, ...keys("a", "b"), "--witnesses-required", "2");
    expect(two.code).toBe(3);
    expect(two.stderr).toMatch(/missing cosignatures: .*cosigned by witness\.example\/a; missing witness\.example\/b \(2 required\)/);
    expect((await runCli(env, "verify-proof", path, ...keys("a", "b"), "--witnesses-required", "1")).code).toBe(0);
    // Default: every key listed.
    expect((await runCli(env, "verify-proof", path, ...keys("a", "b"))).code).toBe(3);
    const verify = await runCli(env, "verify", ...keys("a", "b"));
    expect(verify.code).toBe(3);
    expect(verify.stderr).toMatch(/missing witness\.example\/b/);

    // B catches up from the size it last cosigned (3), with a consistency proof: 2 of 2 again.
    const b = await runCli(env, "checkpoint", "--tenant", TENANT, "--witness", witnesses.b.run!.url);
    expect(b.code, b.stderr).toBe(0);
    expect(parseNote(b.stdout).signatures.map((s) => s.name)).toEqual([ORIGIN, witnesses.a.name, witnesses.b.name]);
    const again = await proofFile(eventIds[4]!);
    expect((await runCli(env, "verify-proof", again.path, ...keys("a", "b"), "--witnesses-required", "2")).code).toBe(0);
    expect((await runCli(env, "verify", ...keys("a", "b"))).code).toBe(0);
    // prove-consistency's later checkpoint carries them too.
    const consistency = await runCli(env, "prove-consistency", streamIdFor(TENANT), "3");
    expect(consistency.code, consistency.stderr).toBe(0);
    await writeFile(join(root, "consistency.json"), consistency.stdout);
    expect((await runCli(env, "verify-proof", join(root, "consistency.json"), ...keys("a", "b"))).code).toBe(0);
  });

  it("a listed witness's bad cosignature counts as missing; an unlisted key's is ignored", SLOW, async () => {
    const { path, bundle } = await proofFile(eventIds[4]!);
    const note = parseNote(bundle.checkpoint.note);
    const stranger = cosign(note.text, { name: "witness.example/c", privateKey: generateSigningKey().privateKeyPem }, 1_700_000_000);
    const tampered = note.signatures.map((s) => (s.name === witnesses.b.name ? { ...s, signature: Buffer.from(s.signature).fill(1, 8) } : s));
    const file = join(root, "tampered.json");
    const withNote = (signatures: typeof note.signatures) => ({
      ...bundle,
      checkpoint: { ...bundle.checkpoint, note: formatNote({ text: note.text, signatures }) },
    });
    await writeFile(file, JSON.stringify(withNote([...tampered, stranger])));
    const two = await runCli(env, "verify-proof", file, ...keys("a", "b"));
    expect(two.code).toBe(3);
    expect(two.stderr).toMatch(/missing witness\.example\/b/);
    expect((await runCli(env, "verify-proof", file, ...keys("a", "b"), "--witnesses-required", "1")).code).toBe(0);
    await writeFile(file, JSON.stringify(withNote([...note.signatures, stranger])));
    expect((await runCli(env, "verify-proof", file, ...keys("a", "b"))).code).toBe(0);
    expect((await runCli(env, "verify-proof", path, ...keys("a", "b"))).code).toBe(0);
  });

  it("a restarted witness keeps its state: a client that forgot answers 409, retries from the size returned, and is cosigned", SLOW, async () => {
    expect(await witnesses.a.run!.stop()).toBe(0);
    // Two witnesses on one state directory: the second is refused.
    await start("a");
    const second = await startWitness(env, "--state", witnesses.a.state, "--name", "x", "--key", witnesses.a.keyFile, "--log", logVkey).catch(
      (error: Error) => error,
    );
    expect(String(second)).toMatch(/locked by another writer/);
    await append(1);
    // A fresh cosignature store: the log no longer knows what A cosigned, and submits from 0.
    const forgetful = { ...env, AUDITGRAPH_COSIGNATURE_DIR: join(root, "forgotten") };
    const done = await runCli(forgetful, "checkpoint", "--tenant", TENANT, "--witness", witnesses.a.run!.url, "--json");
    expect(done.code, done.stderr).toBe(0);
    expect(JSON.parse(done.stdout)).toMatchObject({ treeSize: 6 });
    expect(parseNote(JSON.parse(done.stdout).note).signatures.map((s) => s.name)).toEqual([ORIGIN, witnesses.a.name]);
  });

  it("a witness that refuses makes checkpoint exit 1 naming it; env AUDITGRAPH_WITNESSES is read", SLOW, async () => {
    // A witness of another log: 404 for our origin.
    const other = generateSigningKey();
    await writeFile(join(root, "other.pem"), other.privateKeyPem);
    const otherVkey = new CheckpointSigner(other.privateKeyPem, { origin: "other.example" }).verifierKey;
    const stranger = await startWitness(env, "--state", join(root, "state-c"), "--name", "witness.example/c", "--key", witnesses.a.keyFile, "--log", otherVkey);
    try {
      const exported = { ...env, AUDITGRAPH_CHECKPOINT_FILE: join(root, "exported.jsonl") };
      const done = await runCli({ ...exported, AUDITGRAPH_WITNESSES: `${witnesses.b.run!.url}, ${stranger.url}` }, "checkpoint", "--tenant", TENANT);
      expect(done.code).toBe(1);
      expect(done.stderr).toContain(`witness ${stranger.url} did not cosign: HTTP 404`);
      expect(parseNote(done.stdout).signatures.map((s) => s.name)).toContain(witnesses.b.name);
      // The export carries the cosigned note, and the ledger still verifies against it.
      const lines = (await readFile(exported.AUDITGRAPH_CHECKPOINT_FILE, "utf8")).split("\n").filter(Boolean);
      expect(lines).toHaveLength(1);
      expect(JSON.parse(lines[0]!)).toMatchObject({ treeSize: 6, note: done.stdout });
      const verified = await runCli(exported, "verify", "--json");
      expect(verified.code, verified.stderr).toBe(0);
      expect(JSON.parse(verified.stdout)).toMatchObject({ ok: true, checkpointFiles: [exported.AUDITGRAPH_CHECKPOINT_FILE] });
    } finally {
      expect(await stranger.stop()).toBe(0);
    }
  });

  it("refuses unknown flags and bad witness settings with exit 2, naming them", SLOW, async () => {
    const refused = async (pattern: RegExp, ...args: string[]) => {
      const r = await runCli(env, ...args);
      expect(r.code, r.stdout).toBe(2);
      expect(r.stderr).toMatch(pattern);
    };
    await refused(/unknown option '--bogus'/, "witness", "--bogus");
    await refused(/unknown option '--witnes'/, "checkpoint", "--witnes", "http://x");
    await refused(/unknown option '--witness-keys'/, "verify-proof", "f.json", "--witness-keys", witnesses.a.vkey);
    await refused(/--witness.*not an http\(s\) URL/, "checkpoint", "--witness", "ftp://x");
    await refused(/--witnesses-required 3: only 2 witness keys given/, "verify", ...keys("a", "b"), "--witnesses-required", "3");
    await refused(/--witnesses-required.*whole number/, "verify", ...keys("a"), "--witnesses-required", "0");
    await refused(/--witness-key .*it is a log key/, "verify-proof", "f.json", "--witness-key", logVkey);
    await refused(/required option '--state <dir>'/, "witness", "--name", "w", "--log", logVkey);
    await refused(/give --key <file> or set AUDITGRAPH_WITNESS_KEY/, "witness", "--state", join(root, "s"), "--name", "w", "--log", logVkey);
    // No secret in what the witness logs: its key file's content never appears on stdout.
    const pem = await readFile(witnesses.a.keyFile, "utf8");
    const body = pem.split("\n")[1]!;
    const listening = await startWitness(env, "--state", join(root, "state-d"), "--name", "w", "--key", witnesses.a.keyFile, "--log", logVkey);
    let out = "";
    listening.child.stdout!.on("data", (c) => (out += String(c)));
    expect(await listening.stop()).toBe(0);
    expect(out).toMatch(/witness stopped/);
    expect(out).not.toContain(body);
  });
});
