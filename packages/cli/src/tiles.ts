import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { mkdir, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { InvalidArgumentError, type Command } from "commander";
import { canonicalJson } from "@auditgraph/core";
import {
  TILE_WIDTH,
  TileReader,
  entryBundle,
  parseTilePath,
  tileIn,
  tilePath,
  tilesOf,
  type Checkpoint,
  type Ledger,
  type TiledLedger,
} from "@auditgraph/ledger";
import { loadConfig } from "./config.js";
import { usageError } from "./errors.js";
import { openLedger } from "./ledger.js";

type TiledOpenLedger = Ledger & TiledLedger & { close?: () => Promise<void> };

/** The configured ledger, read only (no signer: serving and exporting sign nothing). */
async function openTiled(): Promise<TiledOpenLedger> {
  const ledger = await openLedger({ ...loadConfig(), signingKeyPath: undefined });
  if (!("tiles" in ledger) || typeof ledger.tiles !== "function") {
    await ledger.close?.();
    throw usageError("tiles: this ledger keeps no tiles");
  }
  return ledger as TiledOpenLedger;
}

/** The latest checkpoint of a stream, which must carry its signed note: that note is the tlog checkpoint. */
async function latestNote(ledger: Ledger, streamId: string): Promise<(Checkpoint & { note: string }) | undefined> {
  const latest = await ledger.latestCheckpoint(streamId);
  return latest?.note === undefined ? undefined : { ...latest, note: latest.note };
}

/** Entry bundles of a tree of `size`: each record's canonical JSON, 256 to a bundle; bundles reaching into expired records are left out. */
async function* entryBundles(
  ledger: Ledger,
  streamId: string,
  size: number,
  firstLive: number,
): AsyncGenerator<{ index: number; width: number; bundle: Buffer }> {
  const from = Math.ceil(firstLive / TILE_WIDTH) * TILE_WIDTH;
  let entries: Buffer[] = [];
  for await (const record of ledger.readStream(streamId, from, size)) {
    entries.push(Buffer.from(canonicalJson(record), "utf8"));
    if (entries.length === TILE_WIDTH || record.position === size - 1) {
      yield { index: Math.floor(record.position / TILE_WIDTH), width: entries.length, bundle: entryBundle(entries) };
      entries = [];
    }
  }
}

/**
 * `tiles export`: the stream's latest signed checkpoint and its tree's tiles (and, with
 * `entries`, its records as entry bundles) as files in the tlog-tiles layout under `out`, to be
 * served as they are. Tiles over expired records that are not kept are left out (a pruned log's
 * tiles). Returns what was written.
 */
export async function exportTiles(
  ledger: Ledger & TiledLedger,
  streamId: string,
  out: string,
  entries: boolean,
): Promise<{ treeSize: number; tiles: number; bundles: number }> {
  const checkpoint = await latestNote(ledger, streamId);
  if (!checkpoint)
    throw usageError(`tiles export: stream ${streamId} has no signed checkpoint with a note (the ledger signs them when AUDITGRAPH_SIGNING_KEY is set)`);
  const { store, firstLive } = await ledger.tiles(streamId);
  const reader = new TileReader(store, firstLive);
  const put = async (path: string, bytes: Buffer | string) => {
    await mkdir(dirname(join(out, path)), { recursive: true });
    await writeFile(join(out, path), bytes);
  };
  let tiles = 0;
  for (const t of tilesOf(checkpoint.treeSize)) {
    const hashes = await reader.tile(t.level, t.index, t.width).catch(() => undefined);
    if (hashes) {
      await put(tilePath(t.level, t.index, t.width), hashes);
      tiles += 1;
    }
  }
  let bundles = 0;
  if (entries) {
    for await (const b of entryBundles(ledger, streamId, checkpoint.treeSize, firstLive)) {
      await put(tilePath("entries", b.index, b.width), b.bundle);
      bundles += 1;
    }
  }
  // The checkpoint last: a mirror that has it has the tiles it needs.
  await put("checkpoint", checkpoint.note);
  return { treeSize: checkpoint.treeSize, tiles, bundles };
}

const IMMUTABLE = "public, max-age=31536000, immutable";
const SHORT = "public, max-age=5";

/**
 * The handler of `tiles serve`: GET `/<streamId>/checkpoint` and `/<streamId>/tile/...` of every
 * stream, read from the ledger as asked. Tiles are served up to the stream's latest signed
 * checkpoint (it and the list of streams read again at most once a second), nothing beyond what it signs.
 */
export function tileHandler(ledger: Ledger & TiledLedger, options: { entries: boolean }): (req: IncomingMessage, res: ServerResponse) => void {
  const latest = new Map<string, { at: number; checkpoint: Promise<(Checkpoint & { note: string }) | undefined> }>();
  const checkpointOf = (streamId: string) => {
    const known = latest.get(streamId);
    if (known && Date.now() - known.at < 1000) return known.checkpoint;
    const checkpoint = latestNote(ledger, streamId);
    latest.set(streamId, { at: Date.now(), checkpoint });
    return checkpoint;
  };
  let known: { at: number; streams: Promise<string[]> } | undefined;
  const streams = () => {
    if (!known || Date.now() - known.at >= 1000) known = { at: Date.now(), streams: ledger.streams() };
    return known.streams;
  };
  const send = (res: ServerResponse, status: number, body: Buffer | string, headers: Record<string, string> = {}) => {
    res.writeHead(status, { "Content-Length": String(Buffer.byteLength(body)), ...headers });
    res.end(body);
  };
  const notFound = (res: ServerResponse) => send(res, 404, "not found\n", { "Content-Type": "text/plain; charset=utf-8" });

  const serve = async (req: IncomingMessage, res: ServerResponse) => {
    if (req.method !== "GET") return send(res, 405, "method not allowed\n", { Allow: "GET", "Content-Type": "text/plain; charset=utf-8" });
    const path = new URL(req.url ?? "/", "http://localhost").pathname;
    const slash = path.indexOf("/", 1);
    if (slash < 0) return notFound(res);
    const streamId = decodeURIComponent(path.slice(1, slash));
    const rest = path.slice(slash + 1);
    if (!(await streams()).includes(streamId)) return notFound(res);
    const checkpoint = await checkpointOf(streamId);
    if (!checkpoint) return notFound(res);
    if (rest === "checkpoint") return send(res, 200, checkpoint.note, { "Content-Type": "text/plain; charset=utf-8", "Cache-Control": "no-cache, max-age=0" });
    const tile = parseTilePath(rest);
    if (!tile) return notFound(res);
    const headers = { "Content-Type": "application/octet-stream", "Cache-Control": tile.width === TILE_WIDTH ? IMMUTABLE : SHORT };
    const { store, firstLive } = await ledger.tiles(streamId);
    if (tile.level === "entries") {
      const from = tile.index * TILE_WIDTH;
      if (!options.entries || from < firstLive || from + tile.width > checkpoint.treeSize) return notFound(res);
      const entries: Buffer[] = [];
      for await (const record of ledger.readStream(streamId, from, from + tile.width)) entries.push(Buffer.from(canonicalJson(record), "utf8"));
      return entries.length === tile.width ? send(res, 200, entryBundle(entries), headers) : notFound(res);
    }
    const there = tileIn(checkpoint.treeSize, tile.level, tile.index);
    if (!there || there.width < tile.width) return notFound(res);
    const hashes = await new TileReader(store, firstLive).tile(tile.level, tile.index, tile.width).catch(() => undefined);
    return hashes ? send(res, 200, hashes, headers) : notFound(res);
  };
  return (req, res) => {
    serve(req, res).catch(() => {
      if (!res.headersSent) send(res, 500, "internal error\n", { "Content-Type": "text/plain; charset=utf-8" });
      else res.destroy();
    });
  };
}

function port(value: string): number {
  const n = Number(value);
  if (!/^\d{1,5}$/.test(value) || n > 65535) throw new InvalidArgumentError(`must be a port number (0 to 65535), got ${JSON.stringify(value)}`);
  return n;
}

function streamId(value: string): string {
  // A shard's stream is its tenant's base stream then `.<shard>` (see docs/sharding.md).
  if (!/^[A-Za-z0-9_-]{1,128}(\.[1-9][0-9]{0,2})?$/.test(value))
    throw new InvalidArgumentError("must be a stream id ([A-Za-z0-9_-]{1,128}, then .<shard> for a shard past 0)");
  return value;
}

export function registerTiles(program: Command): void {
  const tiles = program
    .command("tiles")
    .description("a stream's Merkle tree as C2SP tlog-tiles: static files any tlog-tiles client verifies with `auditgraph vkey`'s key (see docs/tiles.md)");

  tiles
    .command("export")
    .description("write a stream's latest signed checkpoint and its hash tiles (tile/<L>/<N>[.p/<W>]) to a directory, to be served as static files")
    .requiredOption("--stream <id>", "the stream to export", streamId)
    .requiredOption("--out <dir>", "the directory to write (made if missing)")
    .option("--entries", "also write the records as entry bundles (tile/entries/...): they carry the audit records themselves")
    .option("--json", "print what was written as JSON")
    .action(async (opts: { stream: string; out: string; entries?: boolean; json?: boolean }) => {
      const ledger = await openTiled();
      try {
        if (!(await ledger.streams()).includes(opts.stream)) throw usageError(`tiles export: no stream ${opts.stream} in the ledger`);
        const done = await exportTiles(ledger, opts.stream, opts.out, opts.entries ?? false);
        console.log(
          opts.json
            ? JSON.stringify({ streamId: opts.stream, out: opts.out, ...done }, null, 2)
            : `exported stream ${opts.stream} at tree size ${done.treeSize}: ${done.tiles} tiles${opts.entries ? `, ${done.bundles} entry bundles` : ""} to ${opts.out}`,
        );
      } finally {
        await ledger.close?.();
      }
    });

  tiles
    .command("serve")
    .description("serve every stream's checkpoint and tiles read-only over HTTP at /<streamId>/checkpoint and /<streamId>/tile/... (GET only)")
    .requiredOption("--port <port>", "the port to listen on (0: any free one, printed)", port)
    .option("--host <host>", "the address to listen on", "127.0.0.1")
    .option("--entries", "also serve the records as entry bundles (tile/entries/...): they carry the audit records themselves")
    .action(async (opts: { port: number; host: string; entries?: boolean }) => {
      const ledger = await openTiled();
      const server = createServer(tileHandler(ledger, { entries: opts.entries ?? false }));
      await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen(opts.port, opts.host, resolve);
      });
      const address = server.address();
      const bound = typeof address === "object" && address ? address.port : opts.port;
      console.log(`serving tiles at http://${opts.host.includes(":") ? `[${opts.host}]` : opts.host}:${bound}/<streamId>/`);
      await new Promise<void>((resolve) => {
        const stop = () => {
          server.close(() => resolve());
          server.closeAllConnections();
        };
        process.once("SIGINT", stop);
        process.once("SIGTERM", stop);
      });
      await ledger.close?.();
    });
}
