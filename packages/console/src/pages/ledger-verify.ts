import type { FastifyReply } from "fastify";
import { z } from "zod";
import type { Ledger } from "@auditgraph/ledger";
import type { ConsoleContext } from "../context.js";

/** The last verify of a stream, kept in Redis so every console instance (and a restart) shows it. */
export const VerifyResultSchema = z.object({
  time: z.string(),
  ok: z.boolean(),
  /** Records checked. */
  count: z.number().int().nonnegative(),
  signaturesVerified: z.number().int().nonnegative(),
  /** The first failure; `streamId`: which of a tenant's streams (shards) it is in. */
  failure: z
    .object({ streamId: z.string().optional(), position: z.number().int(), eventId: z.string().nullable(), reason: z.string(), detail: z.string() })
    .nullable(),
  /** Who ran it (an account id) and how it was signed in. */
  by: z.string(),
});
export type VerifyResult = z.infer<typeof VerifyResultSchema>;

/** The last verify of one stream (a shard), shown on its row. */
export const verifyKey = (streamId: string) => `auditgraph:console:verify:${streamId}`;
/** The last verify of all of a tenant's streams (by its base stream), what a late listener is told. */
export const tenantVerifyKey = (baseStreamId: string) => `auditgraph:console:verify-tenant:${baseStreamId}`;

async function readResult(ctx: ConsoleContext, key: string): Promise<VerifyResult | null> {
  const text = await ctx.redis.get(key);
  if (text === null) return null;
  const parsed = VerifyResultSchema.safeParse(JSON.parse(text));
  return parsed.success ? parsed.data : null;
}

export const lastVerify = (ctx: ConsoleContext, streamId: string): Promise<VerifyResult | null> => readResult(ctx, verifyKey(streamId));

/** How many records a stream holds: its latest checkpoint's size, and the records appended since (read from there). */
export async function streamSize(ledger: Ledger, streamId: string): Promise<number> {
  const latest = await ledger.latestCheckpoint(streamId);
  let size = latest?.treeSize ?? 0;
  for await (const _ of ledger.readStream(streamId, size)) size++;
  return size;
}

type Message =
  | { event: "progress"; data: { verified: number; total: number } }
  | { event: "done"; data: VerifyResult & { position?: number; reason?: string; detail?: string } }
  | { event: "idle"; data: Record<string, never> };

interface VerifyRun {
  total: number;
  verified: number;
  /** Records checked so far per stream: a tenant's streams are verified one after another. */
  byStream: Map<string, number>;
  result: VerifyResult | null;
  listeners: Set<(m: Message) => void>;
}

const doneMessage = (r: VerifyResult): Message => ({
  event: "done",
  data: { ...r, ...(r.failure ? { position: r.failure.position, reason: r.failure.reason, detail: r.failure.detail } : {}) },
});

/**
 * Verify runs of this console process, one per tenant at a time over all its streams (shards);
 * their progress goes to whoever listens (the SSE route), their result to Redis, per stream and
 * for the tenant. Starting a verify of a tenant that is being verified joins the run under way.
 * Runs are keyed by the tenant's base stream.
 */
export class VerifyRuns {
  private readonly runs = new Map<string, VerifyRun>();

  constructor(private readonly ctx: ConsoleContext) {}

  running(key: string): boolean {
    const run = this.runs.get(key);
    return run !== undefined && run.result === null;
  }

  async start(key: string, streamIds: readonly string[], by: string, publicKeyPem: string | undefined): Promise<void> {
    if (this.running(key)) return;
    const sizes = await Promise.all(streamIds.map((s) => streamSize(this.ctx.ledger, s)));
    const run: VerifyRun = { total: sizes.reduce((a, b) => a + b, 0), verified: 0, byStream: new Map(), result: null, listeners: new Set() };
    this.runs.set(key, run);
    const emit = (m: Message) => {
      for (const l of run.listeners) l(m);
    };
    const keep = (redisKey: string, result: VerifyResult) =>
      this.ctx.redis
        .set(redisKey, JSON.stringify(result))
        .catch((error: unknown) => this.ctx.log.error({ err: { message: (error as Error).message }, key: redisKey }, "verify result not kept"));
    const finish = async (result: VerifyResult, perStream: [string, VerifyResult][]) => {
      // Kept before anyone is told: a page loaded after "done" shows the same result.
      await Promise.all([...perStream.map(([streamId, r]) => keep(verifyKey(streamId), r)), keep(tenantVerifyKey(key), result)]);
      run.result = result;
      emit(doneMessage(result));
      run.listeners.clear();
    };
    void this.ctx.ledger
      .verify(publicKeyPem, [], {
        streamIds,
        onProgress: (p) => {
          run.byStream.set(p.streamId, p.verified);
          run.verified = [...run.byStream.values()].reduce((a, b) => a + b, 0);
          run.total = Math.max(run.total, run.verified);
          emit({ event: "progress", data: { verified: run.verified, total: run.total } });
        },
      })
      .then((report) => {
        const time = new Date().toISOString();
        const failure = report.ok
          ? null
          : {
              streamId: report.failure.streamId,
              position: report.failure.position,
              eventId: report.failure.eventId,
              reason: report.failure.reason,
              detail: report.failure.detail,
            };
        // Streams are verified in turn and the first failure ends it: the ones summarised are intact.
        const perStream: [string, VerifyResult][] = report.streams.map((s) => [
          s.streamId,
          { time, ok: true, count: s.count, signaturesVerified: s.signaturesVerified, failure: null, by },
        ]);
        if (failure) perStream.push([failure.streamId, { time, ok: false, count: failure.position, signaturesVerified: 0, failure, by }]);
        const summarised = report.streams.reduce((n, s) => n + s.count, 0);
        return finish(
          {
            time,
            ok: report.ok,
            count: report.ok ? report.count : summarised + report.failure.position,
            signaturesVerified: report.streams.reduce((n, s) => n + s.signaturesVerified, 0),
            failure,
            by,
          },
          perStream,
        );
      })
      .catch((error: unknown) => {
        this.ctx.log.error({ err: { message: (error as Error).message, code: (error as { code?: unknown }).code }, streamIds }, "verify failed to run");
        const result: VerifyResult = {
          time: new Date().toISOString(),
          ok: false,
          count: run.verified,
          signaturesVerified: 0,
          failure: { position: run.verified, eventId: null, reason: "error", detail: "the verify could not run (see the console's log)" },
          by,
        };
        return finish(
          result,
          streamIds.map((s) => [s, result]),
        );
      });
  }

  /** Streams a tenant's verify (by `key`, its base stream) to one SSE client: where it is now, then its progress, then its result. */
  async stream(key: string, reply: FastifyReply): Promise<void> {
    reply.hijack();
    const raw = reply.raw;
    raw.writeHead(200, {
      ...(reply.getHeaders() as Record<string, string>),
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-store",
      connection: "keep-alive",
    });
    const send = (m: Message) => raw.write(`event: ${m.event}\ndata: ${JSON.stringify(m.data)}\n\n`);
    const run = this.runs.get(key);
    if (!run || run.result !== null) {
      // A verify kept from before tenants had shards is the base stream's own.
      const result = run?.result ?? (await readResult(this.ctx, tenantVerifyKey(key))) ?? (await lastVerify(this.ctx, key));
      send(result ? doneMessage(result) : { event: "idle", data: {} });
      raw.end();
      return;
    }
    send({ event: "progress", data: { verified: run.verified, total: run.total } });
    const listener = (m: Message) => {
      send(m);
      if (m.event === "done") raw.end();
    };
    run.listeners.add(listener);
    raw.on("close", () => run.listeners.delete(listener));
  }
}
