import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";

export interface SinkStats {
  requests: number;
  bytes: number;
  /** Requests by method and path (query string cut), e.g. "POST /runs/batch". */
  byRoute: Map<string, { requests: number; bytes: number }>;
}

export interface Sink {
  /** http://127.0.0.1:<port>, no trailing slash. */
  url: string;
  stats: SinkStats;
  /** Requests and bytes whose route matches `pattern`. */
  count(pattern: RegExp): { requests: number; bytes: number };
  close(): Promise<void>;
}

/**
 * A stand-in for the peers' collectors, on 127.0.0.1 only: reads every request body to the
 * end (so the clients finish their uploads), counts it, and answers `{}` — 202 to
 * POST/PUT/PATCH, 200 to anything else (the LangSmith client may GET /info first). It parses
 * nothing, so the little CPU it costs the benchmark's process is the HTTP plumbing.
 */
export async function startSink(): Promise<Sink> {
  const stats: SinkStats = { requests: 0, bytes: 0, byRoute: new Map() };
  const server: Server = createServer((req, res) => {
    let bytes = 0;
    req.on("data", (chunk: Buffer) => (bytes += chunk.length));
    req.on("end", () => {
      const route = `${req.method ?? "?"} ${(req.url ?? "/").split("?")[0]}`;
      const entry = stats.byRoute.get(route) ?? { requests: 0, bytes: 0 };
      entry.requests += 1;
      entry.bytes += bytes;
      stats.byRoute.set(route, entry);
      stats.requests += 1;
      stats.bytes += bytes;
      const write = req.method === "POST" || req.method === "PUT" || req.method === "PATCH";
      res.writeHead(write ? 202 : 200, { "content-type": "application/json", "content-length": "2" });
      res.end("{}");
    });
  });
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    stats,
    count(pattern) {
      let requests = 0;
      let bytes = 0;
      for (const [route, entry] of stats.byRoute) {
        if (pattern.test(route)) {
          requests += entry.requests;
          bytes += entry.bytes;
        }
      }
      return { requests, bytes };
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
