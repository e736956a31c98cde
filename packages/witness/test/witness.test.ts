import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, verify } from "node:crypto";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CheckpointSigner, consistencyProof, formatNote, generateSigningKey, leafHash, parseNote, rootOf } from "@auditgraph/ledger";
import { Witness, WitnessState, originHash, witnessServer } from "../src/index.js";

// The logs' checkpoints, made as an auditgraph ledger makes them: origin `<log origin>/<stream>`.
const LOG = "log.example/test";
const logKey = generateSigningKey();
const signer = new CheckpointSigner(logKey.privateKeyPem, { origin: LOG });
const WITNESS = "witness.example/w1";
const witnessKey = generateSigningKey();

const leaves = (n: number, tag = "main") => Array.from({ length: n }, (_, i) => leafHash(`${tag} ${i}`));
const rootHex = (hashes: Buffer[]) => rootOf(hashes).toString("hex");

/** A checkpoint note of stream `stream` over `hashes`, signed by `by` (the log's signer unless told). */
function note(stream: string, hashes: Buffer[], by = signer): string {
  return by.sign({ streamId: stream, treeSize: hashes.length, rootHash: rootHex(hashes), time: new Date().toISOString() }).note!;
}

const body = (old: number, proof: Buffer[], checkpoint: string) => `old ${old}\n${proof.map((h) => `${h.toString("base64")}\n`).join("")}\n${checkpoint}`;

/**
 * An independent cosignature/v1 check, from the spec alone (https://c2sp.org/tlog-cosignature):
 * key id = SHA-256(name || "\n" || 0x04 || 32-byte key)[:4]; signature = u64 big-endian timestamp
 * || Ed25519 over "cosignature/v1\ntime <t>\n" + the checkpoint's text. Nothing of ours is used.
 */
function independentlyVerify(line: string, checkpointText: string, name: string, publicKeyPem: string): number {
  const prefix = `\u2014 ${name} `;
  expect(line.startsWith(prefix)).toBe(true);
  const bytes = Buffer.from(line.slice(prefix.length), "base64");
  const raw = Buffer.from(createPublicKey(publicKeyPem).export({ format: "jwk" }).x as string, "base64url");
  const keyId = createHash("sha256")
    .update(Buffer.concat([Buffer.from(`${name}\n`), Buffer.from([0x04]), raw]))
    .digest()
    .subarray(0, 4);
  expect(bytes.subarray(0, 4).equals(keyId)).toBe(true);
  expect(bytes.length).toBe(4 + 8 + 64);
  const time = Number(bytes.readBigUInt64BE(4));
  expect(time).toBeGreaterThan(0);
  const message = Buffer.from(`cosignature/v1\ntime ${time}\n${checkpointText}`);
  expect(verify(null, message, createPublicKey(publicKeyPem), bytes.subarray(12))).toBe(true);
  return time;
}

let dir: string;
let state: WitnessState;
let url: string;
let close: () => Promise<void>;

async function start(): Promise<void> {
  state = await WitnessState.open(dir);
  const witness = new Witness({ name: WITNESS, privateKey: witnessKey.privateKeyPem, logs: [signer.verifierKey], state });
  const app = witnessServer({ witness, state });
  url = await app.listen({ port: 0, host: "127.0.0.1" });
  close = async () => {
    await app.close();
    await state.close();
  };
}

async function post(text: string | Buffer) {
  const response = await fetch(`${url}/add-checkpoint`, { method: "POST", body: text });
  return { status: response.status, type: response.headers.get("content-type"), text: await response.text() };
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "witness-"));
  await start();
});
afterAll(async () => close());

describe("tlog-witness add-checkpoint", () => {
  const stream = "tenant-main";
  const main = leaves(12);

  it("cosigns a first checkpoint (old 0), then one a consistency proof shows extends it; the cosignature verifies independently", async () => {
    const first = note(stream, main.slice(0, 3));
    const a = await post(body(0, [], first));
    expect(a.status, a.text).toBe(200);
    expect(a.type).toMatch(/^text\/plain/);
    expect(a.text).toMatch(/^\u2014 witness\.example\/w1 [A-Za-z0-9+/]+=*\n$/);
    independentlyVerify(a.text.slice(0, -1), parseNote(first).text, WITNESS, witnessKey.publicKeyPem);

    const second = note(stream, main.slice(0, 7));
    const b = await post(body(3, consistencyProof(main, 3, 7), second));
    expect(b.status, b.text).toBe(200);
    independentlyVerify(b.text.slice(0, -1), parseNote(second).text, WITNESS, witnessKey.publicKeyPem);
    // The note with the cosignature appended is a valid signed note: log line, then witness line.
    expect(parseNote(second + b.text).signatures.map((s) => s.name)).toEqual([LOG, WITNESS]);
  });

  it("409 with the size it holds (text/x.tlog.size) when old is not the size it last cosigned", async () => {
    for (const old of [0, 3, 5]) {
      const stale = await post(body(old, old === 0 ? [] : consistencyProof(main, old, 9), note(stream, main.slice(0, 9))));
      expect(stale).toEqual({ status: 409, type: "text/x.tlog.size", text: "7\n" });
    }
  });

  it("refuses a split view: another root at the size it holds, and a forked tree proven consistent with the fork", async () => {
    const other = leaves(7, "fork");
    const sameSize = await post(body(7, [], note(stream, other)));
    expect(sameSize.status).toBe(422);
    expect(sameSize.text).toMatch(/split view/);
    // A history that forks at leaf 5: its proof holds for the fork's own size-7 root, not the one cosigned.
    const forked = [...main.slice(0, 5), ...leaves(5, "fork")];
    const fork = await post(body(7, consistencyProof(forked, 7, 10), note(stream, forked)));
    expect(fork.status).toBe(422);
    expect(fork.text).toMatch(/consistency proof from size 7 does not verify/);
    // Refused, nothing moved: the honest next checkpoint is still cosigned from 7.
    const next = await post(body(7, consistencyProof(main, 7, 9), note(stream, main.slice(0, 9))));
    expect(next.status, next.text).toBe(200);
  });

  it("422 when the consistency proof does not verify, or one is sent with old 0", async () => {
    const proof = consistencyProof(main, 9, 12);
    proof[0] = Buffer.from(proof[0]!).fill(7);
    expect((await post(body(9, proof, note(stream, main)))).status).toBe(422);
    expect((await post(body(9, consistencyProof(main, 9, 12).slice(1), note(stream, main)))).status).toBe(422);
    const fresh = leaves(4);
    expect((await post(body(0, [fresh[0]!], note("tenant-fresh-422", fresh)))).status).toBe(422);
    // Size 0 must have the empty tree's root.
    const empty = signer.sign({ streamId: "tenant-empty", treeSize: 0, rootHash: "00".repeat(32), time: new Date().toISOString() }).note!;
    expect((await post(body(0, [], empty))).status).toBe(422);
  });

  it("403 when no trusted key signed it, or a line of the trusted key does not verify; 404 for an unknown origin", async () => {
    const impostor = new CheckpointSigner(generateSigningKey().privateKeyPem, { origin: LOG });
    const forged = await post(body(0, [], note("tenant-forged", leaves(2), impostor)));
    expect(forged.status).toBe(403);
    const good = parseNote(note("tenant-bad-line", leaves(2)));
    const bad = formatNote({ text: good.text, signatures: [{ ...good.signatures[0]!, signature: Buffer.alloc(64, 1) }] });
    expect((await post(body(0, [], bad))).status).toBe(403);
    const stranger = new CheckpointSigner(generateSigningKey().privateKeyPem, { origin: "elsewhere.example" });
    expect((await post(body(0, [], note("tenant-x", leaves(2), stranger)))).status).toBe(404);
  });

  it("400 for a malformed body", async () => {
    const ok = note("tenant-400", leaves(3));
    const cases = [
      "",
      `old 0\n${ok}`,
      `old 01\n\n${ok}`,
      `new 0\n\n${ok}`,
      `old 4\n\n${ok}`,
      `old 2\nnot-base64!\n\n${ok}`,
      `old 2\n${Buffer.alloc(31).toString("base64")}\n\n${ok}`,
      `old 0\n${`${Buffer.alloc(32).toString("base64")}\n`.repeat(64)}\n${ok}`,
      "old 0\n\nno signatures here\n",
      Buffer.from([0x6f, 0x6c, 0x64, 0x20, 0x30, 0x0a, 0x0a, 0xff, 0x0a]),
    ];
    for (const c of cases) expect((await post(c)).status, JSON.stringify(c.toString())).toBe(400);
  });

  it("serialises one origin's submissions: of two racing from the same size, one is cosigned and the other gets 409", async () => {
    const race = leaves(8);
    expect((await post(body(0, [], note("tenant-race", race.slice(0, 2))))).status).toBe(200);
    const [a, b] = await Promise.all([
      post(body(2, consistencyProof(race, 2, 5), note("tenant-race", race.slice(0, 5)))),
      post(body(2, consistencyProof(race, 2, 8), note("tenant-race", race))),
    ]);
    expect([a.status, b.status].sort()).toEqual([200, 409]);
    expect([a, b].find((r) => r.status === 409)!.text).toMatch(/^[58]\n$/);
  });

  it("serves the latest cosigned checkpoint at /<origin hash>/checkpoint, log and witness signatures on it", async () => {
    const response = await fetch(`${url}/${originHash(`${LOG}/${stream}`)}/checkpoint`);
    expect(response.status).toBe(200);
    const held = parseNote(await response.text());
    expect(held.text).toBe(parseNote(note(stream, main.slice(0, 9))).text);
    expect(held.signatures.map((s) => s.name)).toEqual([LOG, WITNESS]);
    expect((await fetch(`${url}/${"0".repeat(64)}/checkpoint`)).status).toBe(404);
  });

  it("keeps its state over a restart, and no second witness can open the state it holds", async () => {
    await expect(WitnessState.open(dir)).rejects.toMatchObject({ code: "AUDITGRAPH_E_DIR_LOCKED" });
    await close();
    await start();
    expect(await post(body(0, [], note(stream, main.slice(0, 10))))).toMatchObject({ status: 409, text: "9\n" });
    expect((await post(body(9, consistencyProof(main, 9, 12), note(stream, main)))).status).toBe(200);
  });

  it("refuses to start with no log key, a log key that is not one, or a key that is not Ed25519", async () => {
    const other = await WitnessState.open(await mkdtemp(join(tmpdir(), "witness-cfg-")));
    try {
      const base = { name: WITNESS, privateKey: witnessKey.privateKeyPem, state: other };
      expect(() => new Witness({ ...base, logs: [] })).toThrow(/at least one log key/);
      expect(() => new Witness({ ...base, logs: ["nope"] })).toThrow(/log key "nope"/);
      const rsa = generateKeyPairSync("rsa", { modulusLength: 1024 }).privateKey;
      expect(() => new Witness({ ...base, privateKey: createPrivateKey(rsa.export({ type: "pkcs8", format: "pem" })), logs: [signer.verifierKey] })).toThrow(
        /Ed25519/,
      );
    } finally {
      await other.close();
    }
  });
});
