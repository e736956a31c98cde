import type { FastifyInstance, FastifyRequest } from "fastify";
import type { Cluster, Redis } from "ioredis";
import type { Logger } from "pino";
import type { Ledger } from "@auditgraph/ledger";
import type { Graph } from "@auditgraph/graph";
import { isStreamOfTenant, openRecords, type AccessAction, type AccessSubject, type LedgerRecord, type SubjectKeyStore } from "@auditgraph/core";
import { recordAccess, type AccessInput } from "@auditgraph/worker";
import { buildConsoleApp } from "./app.js";
import type { AccountStore } from "./accounts.js";
import type { ConsoleContext } from "./context.js";
import { ConsoleOptionsSchema, type ConsoleOptionsInput } from "./options.js";
import type { Viewer } from "./viewer.js";

export interface ConsoleDeps {
  options: ConsoleOptionsInput;
  ledger: Ledger;
  graph: Graph;
  redis: Redis | Cluster;
  accounts: AccountStore;
  log: Logger;
  /** Opens sealed records for readers (the worker's key store); without it sealed content reads as erased. */
  keyStore?: Pick<SubjectKeyStore, "byId">;
}

export type { AccessInput };

export interface RunningConsole {
  /** Where people open it: the public URL when one is set, else the address it listens on. */
  url: string;
  port: number;
  app: FastifyInstance;
  ctx: ConsoleContext;
  /** Stops listening (requests in flight are finished). The stores in `deps` are the caller's to close. */
  close(): Promise<void>;
}

/** The access event of one request: the viewer as actor, the client's address (behind a trusted proxy, the forwarded one). */
export function accessOf(request: FastifyRequest, viewer: Viewer, access: { tenantId: string; action: AccessAction; subject: AccessSubject }): AccessInput {
  const userAgent = request.headers["user-agent"];
  return {
    ...access,
    actor: { id: viewer.accountId, name: viewer.name, via: viewer.via },
    from: { ip: request.ip, ...(userAgent ? { userAgent: userAgent.slice(0, 512) } : {}) },
  };
}

/** The console's context over its stores: what every route reads, and how reads are appended as access events. */
export function consoleContext(deps: ConsoleDeps): ConsoleContext {
  const options = ConsoleOptionsSchema.parse(deps.options);
  return {
    options,
    ledger: deps.ledger,
    graph: deps.graph,
    redis: deps.redis,
    accounts: deps.accounts,
    log: deps.log,
    async readTrace(tenantId, traceId) {
      // Every stream of the tenant: a trace is in one shard, which depends on the shard count when it was written.
      const records = (await deps.ledger.readTrace(traceId, { tenantId })).filter((r) => isStreamOfTenant(r.streamId, tenantId));
      if (!deps.keyStore) return records;
      return (await openRecords(records, deps.keyStore)).map((o): LedgerRecord => o.record);
    },
    async recordAccess(request, viewer, access) {
      // Appended to the ledger before this returns (a failure throws: the content is then not served).
      await recordAccess(deps.ledger, deps.graph, accessOf(request, viewer, access));
    },
  };
}

/** Builds the console over its stores and listens (port 0: a free one). */
export async function startConsole(deps: ConsoleDeps): Promise<RunningConsole> {
  const ctx = consoleContext(deps);
  const app = await buildConsoleApp(ctx);
  await app.listen({ port: ctx.options.port, host: ctx.options.host });
  const address = app.server.address();
  const port = typeof address === "object" && address ? address.port : ctx.options.port;
  const host = ctx.options.host.includes(":") ? `[${ctx.options.host}]` : ctx.options.host;
  const url = ctx.options.publicUrl ?? `http://${host === "0.0.0.0" || host === "[::]" ? "127.0.0.1" : host}:${port}`;
  return { url: url.replace(/\/$/, ""), port, app, ctx, close: () => app.close() };
}
