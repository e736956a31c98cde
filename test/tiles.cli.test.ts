import { spawn, type ChildProcess } from "node:child_process";
import { createHash, createPublicKey, randomUUID, verify } from "node:crypto";
import { createServer, type Server } from "node:http";
import { mkdtemp, readdir, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SCHEMA_VERSION, newEventId, type AuditEvent } from "@auditgraph/core";
import { CheckpointSigner, SegmentLedger, generateSigningKey } from "@auditgraph/ledger";
import { CLI_BIN, cliEnvOf, isolatedConfig, runCli } from "./helpers.js";

const SLOW = { timeout: 240_000 };
const ORIGIN = "tiles.example.com/log";

const event = (n: number): AuditEvent => ({
  eventId: newEventId(),
  schemaVersion: SCHEMA_VERSION,
  type: "text",
  occurredAt: new Date().toISOString(),
  traceId: `trace-${n % 7}`,
  runId: `run-${n}`,
  parentRunId: null,
  sessionId: null,
  identity: { user: { id: "u", tenantId: "t" }, agent: { id: "a", name: "A", version: "1" } },
  payload: { text: `record ${n}` },
});

// ---------------------------------------------------------------------------------------------
// A third party's minimal tlog-tiles client, written from the specs (C2SP signed-note,
// tlog-checkpoint, tlog-tiles; RFC 9162), sharing no code with auditgraph.

const sha256 = (...parts: Uint8Array[]) => createHash("sha256").update(Buffer.concat(parts)).digest();
const node = (l: Buffer, r: Buffer) => sha256(Buffer.from([1]), l, r);

/** Opens a signed note with a vkey (`<name>+<hex id>+<base64(0x01 || key)>`); returns the checkpoint it says. */
function openCheckpoint(note: string, vkey: string): { origin: string; size: number; root: Buffer } {
  // The key's base64 may hold '+' too: the name and the id end at the first two.
  const [, name, id, key] = /^([^+]+)\+([0-9a-f]{8})\+(.+)$/.exec(vkey) as unknown as [string, string, string, string];
  const raw = Buffer.from(key, "base64");
  expect(raw[0]).toBe(1);
  const publicKey = createPublicKey({ key: Buffer.concat([Buffer.from("302a300506032b6570032100", "hex"), raw.subarray(1)]), format: "der", type: "spki" });
  expect(
    sha256(Buffer.from(`${name}\n`), raw)
      .subarray(0, 4)
      .toString("hex"),
  ).toBe(id);
  const split = note.indexOf("\n\n");
  const text = note.slice(0, split + 1);
  const ok = note
    .slice(split + 2)
    .split("\n")
    .filter(Boolean)
    .some((line) => {
      const [dash, who, b64] = line.split(" ");
      const sig = Buffer.from(b64 ?? "", "base64");
      return dash === "—" && who === name && sig.subarray(0, 4).toString("hex") === id && verify(null, Buffer.from(text), publicKey, sig.subarray(4));
    });
  expect(ok, "the note carries a signature of the vkey").toBe(true);
  const [origin, size, root] = text.split("\n");
  return { origin: origin!, size: Number(size), root: Buffer.from(root!, "base64") };
}

/** N of a tile path: 3-digit groups, x before all but the last. */
function indexPath(n: number): string {
  const groups: string[] = [];
  do {
    groups.unshift(String(n % 1000).padStart(3, "0"));
    n = Math.floor(n / 1000);
  } while (n > 0);
  return groups.map((g, i) => (i < groups.length - 1 ? `x${g}` : g)).join("/");
}

/** Verifies record `index` of the log at `base` with `vkey` alone, from the checkpoint, its tiles and the entry bundle. */
async function thirdPartyVerifies(base: string, vkey: string, index: number) {
  const fetched: string[] = [];
  const get = async (path: string) => {
    fetched.push(path);
    const res = await fetch(`${base}/${path}`);
    expect(res.status, path).toBe(200);
    return Buffer.from(await res.arrayBuffer());
  };
  const checkpoint = openCheckpoint((await get("checkpoint")).toString("utf8"), vkey);
  const size = checkpoint.size;
  const tiles = new Map<string, Promise<Buffer>>();
  const tile = (level: number, n: number) => {
    const width = Math.min(256, Math.floor(size / 256 ** level) - n * 256);
    const path = `tile/${level}/${indexPath(n)}${width < 256 ? `.p/${width}` : ""}`;
    if (!tiles.has(path)) tiles.set(path, get(path));
    return tiles.get(path)!;
  };
  /** MTH of the aligned perfect subtree of height h at i, from the one tile holding its hashes. */
  const perfect = async (h: number, i: number): Promise<Buffer> => {
    const level = Math.floor(h / 8);
    const span = 2 ** (h % 8);
    const first = i * span;
    const t = await tile(level, Math.floor(first / 256));
    let row = Array.from({ length: span }, (_, j) => t.subarray(((first % 256) + j) * 32, ((first % 256) + j + 1) * 32));
    while (row.length > 1) row = Array.from({ length: row.length / 2 }, (_, j) => node(row[2 * j]!, row[2 * j + 1]!));
    return row[0]!;
  };
  const mth = async (start: number, end: number): Promise<Buffer> => {
    const n = end - start;
    if ((n & (n - 1)) === 0 && start % n === 0) return perfect(Math.log2(n), start / n);
    const k = 2 ** Math.floor(Math.log2(n - 1));
    return node(await mth(start, start + k), await mth(start + k, end));
  };
  const path = async (m: number, start: number, end: number): Promise<Buffer[]> => {
    if (end - start === 1) return [];
    const k = 2 ** Math.floor(Math.log2(end - start - 1));
    return m < start + k
      ? [...(await path(m, start, start + k)), await mth(start + k, end)]
      : [...(await path(m, start + k, end)), await mth(start, start + k)];
  };
  const proof = await path(index, 0, size);
  // The record itself, from its entry bundle: its leaf is in the level-0 tile.
  const bundleWidth = Math.min(256, size - Math.floor(index / 256) * 256);
  const bundle = await get(`tile/entries/${indexPath(Math.floor(index / 256))}${bundleWidth < 256 ? `.p/${bundleWidth}` : ""}`);
  let at = 0;
  for (let j = 0; j < index % 256; j++) at += 2 + bundle.readUInt16BE(at);
  const entry = bundle.subarray(at + 2, at + 2 + bundle.readUInt16BE(at));
  const leaf = sha256(Buffer.from([0]), entry);
  expect(leaf.equals((await tile(0, Math.floor(index / 256))).subarray((index % 256) * 32, ((index % 256) + 1) * 32))).toBe(true);
  // RFC 9162 2.1.3.2.
  let fn = index;
  let sn = size - 1;
  let r = leaf;
  for (const p of proof) {
    if (fn % 2 === 1 || fn === sn) {
      r = node(p, r);
      while (fn % 2 === 0 && fn !== 0) [fn, sn] = [fn / 2, Math.floor(sn / 2)];
    } else r = node(r, p);
    [fn, sn] = [Math.floor(fn / 2), Math.floor(sn / 2)];
  }
  expect(sn).toBe(0);
  expect(r.equals(checkpoint.root), "the path from the record's leaf gives the signed root").toBe(true);
  return {
    checkpoint,
    entry: JSON.parse(entry.toString("utf8")) as { position: number; streamId: string },
    tilesFetched: fetched.filter((p) => p.startsWith("tile/") && !p.startsWith("tile/entries")),
  };
}

// ---------------------------------------------------------------------------------------------

describe("auditgraph tiles: export and serve a stream's tree as C2SP tlog-tiles", () => {
  const a = `tiles-a-${randomUUID().slice(0, 8)}`;
  const b = `tiles-b-${randomUUID().slice(0, 8)}`;
  const edge = (n: number) => `tiles-${n}-${randomUUID().slice(0, 8)}`;
  // A few thousand (partial tiles at levels 0 and 1), 70,000 (at levels 0, 1 and 2), and the edges of a tile.
  const sizes: Record<string, number> = { [a]: 3000, [b]: 70_000, [edge(1)]: 1, [edge(255)]: 255, [edge(256)]: 256, [edge(257)]: 257, [edge(65_539)]: 65_539 };
  let env: NodeJS.ProcessEnv;
  let vkey: string;
  let server: ChildProcess | undefined;
  let base: string;
  let staticServer: Server | undefined;

  beforeAll(async () => {
    const config = await isolatedConfig();
    const root = await mkdtemp(join(tmpdir(), "tiles-cli-"));
    const pair = generateSigningKey();
    await writeFile(join(root, "signing.pem"), pair.privateKeyPem, { mode: 0o600 });
    env = { ...cliEnvOf(config), AUDITGRAPH_SIGNING_KEY: join(root, "signing.pem"), AUDITGRAPH_LOG_ORIGIN: ORIGIN };
    delete env.AUDITGRAPH_LEDGER_URL;
    const ledger = new SegmentLedger(config.ledgerDir, { signer: new CheckpointSigner(pair.privateKeyPem, { origin: ORIGIN }) });
    for (const [stream, size] of Object.entries(sizes))
      for (let n = 0; n < size; n += 2500)
        await ledger.append(
          stream,
          Array.from({ length: Math.min(2500, size - n) }, (_, i) => event(n + i)),
        );
    await ledger.close();
    vkey = (await runCli(env, "vkey")).stdout.trim();

    server = spawn(process.execPath, [CLI_BIN, "tiles", "serve", "--port", "0", "--entries"], { env, stdio: ["ignore", "pipe", "inherit"] });
    const first = await new Promise<string>((resolve) => createInterface({ input: server!.stdout! }).once("line", resolve));
    base = /^serving tiles at (http:\/\/127\.0\.0\.1:\d+)\//.exec(first)![1]!;
  }, 240_000);

  afterAll(async () => {
    if (server && server.exitCode === null) {
      const exited = new Promise((resolve) => server!.once("exit", resolve));
      server.kill("SIGTERM");
      await exited;
    }
    await new Promise((resolve) => (staticServer ? staticServer.close(resolve) : resolve(undefined)));
  });

  it("a third party verifies records of each stream served by `tiles serve`, with the vkey alone, fetching O(log n) tiles", SLOW, async () => {
    for (const [stream, size] of Object.entries(sizes)) {
      for (const index of new Set([0, 255, 256, 257, Math.floor(size / 3), size - 1].filter((i) => i < size))) {
        const { checkpoint, entry, tilesFetched } = await thirdPartyVerifies(`${base}/${stream}`, vkey, index);
        expect(checkpoint).toMatchObject({ origin: `${ORIGIN}/${stream}`, size });
        expect(entry).toMatchObject({ position: index, streamId: stream });
        expect(tilesFetched.length).toBeLessThanOrEqual(2 * Math.ceil(Math.log2(size) / 8) + 1);
      }
    }
    // 70,000: partial tiles at three levels (112, 17, 1), as the spec's example.
    for (const path of ["tile/0/273.p/112", "tile/1/001.p/17", "tile/2/000.p/1"]) expect((await fetch(`${base}/${b}/${path}`)).status, path).toBe(200);
  });

  it("serves GET only, 404 for what it does not have, and caches full tiles for ever and the rest briefly", SLOW, async () => {
    const full = await fetch(`${base}/${a}/tile/0/000`);
    expect(full.status).toBe(200);
    expect(full.headers.get("cache-control")).toBe("public, max-age=31536000, immutable");
    expect(full.headers.get("content-type")).toBe("application/octet-stream");
    expect((await full.arrayBuffer()).byteLength).toBe(8192);
    const partial = await fetch(`${base}/${a}/tile/0/011.p/184`);
    expect(partial.headers.get("cache-control")).toMatch(/max-age=5$/);
    const checkpoint = await fetch(`${base}/${a}/checkpoint`);
    expect(checkpoint.headers.get("content-type")).toBe("text/plain; charset=utf-8");
    expect(checkpoint.headers.get("cache-control")).toMatch(/max-age=0/);
    for (const method of ["POST", "PUT", "DELETE", "HEAD"]) {
      const res = await fetch(`${base}/${a}/checkpoint`, { method });
      expect(res.status, method).toBe(405);
      expect(res.headers.get("allow")).toBe("GET");
    }
    for (const path of [
      `${a}/tile/0/012`,
      `${a}/tile/0/11`,
      `${a}/tile/0/011.p/185`,
      `${a}/tile/3/000`,
      `${a}/nothing`,
      "no-such-stream/checkpoint",
      "checkpoint",
      "",
    ])
      expect((await fetch(`${base}/${path}`)).status, path).toBe(404);
  });

  it("`tiles export` writes the checkpoint and every tile (entries only with --entries); a static file server of it verifies the same", SLOW, async () => {
    const out = await mkdtemp(join(tmpdir(), "tiles-export-"));
    const done = await runCli(env, "tiles", "export", "--stream", a, "--out", out);
    expect(done.code, done.stderr).toBe(0);
    expect((await readdir(out)).sort()).toEqual(["checkpoint", "tile"]);
    expect((await readdir(join(out, "tile"))).sort()).toEqual(["0", "1"]);
    expect(await readFile(join(out, "checkpoint"), "utf8")).toBe(await (await fetch(`${base}/${a}/checkpoint`)).text());
    expect((await readFile(join(out, "tile/1/000.p/11"))).equals(Buffer.from(await (await fetch(`${base}/${a}/tile/1/000.p/11`)).arrayBuffer()))).toBe(true);

    const withEntries = await mkdtemp(join(tmpdir(), "tiles-export-"));
    expect((await runCli(env, "tiles", "export", "--stream", a, "--out", withEntries, "--entries")).code).toBe(0);
    expect((await readdir(join(withEntries, "tile/entries"))).length).toBeGreaterThan(10);
    staticServer = createServer((req, res) => {
      readFile(join(withEntries, new URL(req.url!, "http://x").pathname)).then(
        (bytes) => res.end(bytes),
        () => res.writeHead(404).end(),
      );
    });
    await new Promise<void>((resolve) => staticServer!.listen(0, "127.0.0.1", resolve));
    const port = (staticServer.address() as { port: number }).port;
    const { entry } = await thirdPartyVerifies(`http://127.0.0.1:${port}`, vkey, 1234);
    expect(entry.position).toBe(1234);
  });

  it("refuses unknown flags and missing ones with exit 2", SLOW, async () => {
    const unknown = await runCli(env, "tiles", "export", "--stream", a, "--out", "/tmp/x", "--bogus");
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/unknown option '--bogus'/);
    const missing = await runCli(env, "tiles", "serve");
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/--port/);
    const noStream = await runCli(env, "tiles", "export", "--stream", "nope", "--out", "/tmp/x");
    expect(noStream.code).toBe(2);
    expect(noStream.stderr).toMatch(/no stream nope/);
  });
});
