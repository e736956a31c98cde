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
  failure: z.object({ position: z.number().int(), eventId: z.string().nullable(), reason: z.string(), detail: z.string() }).nullable(),
  /** Who ran it (an account id) and how it was signed in. */
  by: z.string(),
});
export type VerifyResult = z.infer<typeof VerifyResultSchema>;

export const verifyKey = (streamId: string) => `auditgraph:console:verify:${streamId}`;

export async function lastVerify(ctx: ConsoleContext, streamId: string): Promise<VerifyResult | null> {
  const text = await ctx.redis.get(verifyKey(streamId));
  if (text === null) return null;
  const parsed = VerifyResultSchema.safeParse(JSON.parse(text));
  return parsed.success ? parsed.data : null;
}

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
  result: VerifyResult | null;
  listeners: Set<(m: Message) => void>;
}

const doneMessage = (r: VerifyResult): Message => ({
  event: "done",
  data: { ...r, ...(r.failure ? { position: r.failure.position, reason: r.failure.reason, detail: r.failure.detail } : {}) },
});

/**
 * Verify runs of this console process, one per stream at a time; their progress goes to whoever
 * listens (the SSE route), their result to Redis. Starting a verify of a stream that is being
 * verified joins the run under way.
 */
export class VerifyRuns {
  private readonly runs = new Map<string, VerifyRun>();

  constructor(private readonly ctx: ConsoleContext) {}

  running(streamId: string): boolean {
    const run = this.runs.get(streamId);
    return run !== undefined && run.result === null;
  }

  async start(streamId: string, by: string, publicKeyPem: string | undefined): Promise<void> {
    if (this.running(streamId)) return;
    const run: VerifyRun = { total: await streamSize(this.ctx.ledger, streamId), verified: 0, result: null, listeners: new Set() };
    this.runs.set(streamId, run);
    const emit = (m: Message) => {
      for (const l of run.listeners) l(m);
    };
    const finish = async (result: VerifyResult) => {
      // Kept before anyone is told: a page loaded after "done" shows the same result.
      await this.ctx.redis
        .set(verifyKey(streamId), JSON.stringify(result))
        .catch((error: unknown) => this.ctx.log.error({ err: { message: (error as Error).message }, streamId }, "verify result not kept"));
      run.result = result;
      emit(doneMessage(result));
      run.listeners.clear();
    };
    void this.ctx.ledger
      .verify(publicKeyPem, [], {
        streamIds: [streamId],
        onProgress: (p) => {
          run.verified = p.verified;
          run.total = Math.max(run.total, p.verified);
          emit({ event: "progress", data: { verified: run.verified, total: run.total } });
        },
      })
      .then((report) => {
        const summary = report.streams.find((s) => s.streamId === streamId);
        return finish({
          time: new Date().toISOString(),
          ok: report.ok,
          count: report.ok ? report.count : (summary?.count ?? report.failure.position),
          signaturesVerified: summary?.signaturesVerified ?? 0,
          failure: report.ok
            ? null
            : { position: report.failure.position, eventId: report.failure.eventId, reason: report.failure.reason, detail: report.failure.detail },
          by,
        });
      })
      .catch((error: unknown) => {
        this.ctx.log.error({ err: { message: (error as Error).message, code: (error as { code?: unknown }).code }, streamId }, "verify failed to run");
        return finish({
          time: new Date().toISOString(),
          ok: false,
          count: run.verified,
          signaturesVerified: 0,
          failure: { position: run.verified, eventId: null, reason: "error", detail: "the verify could not run (see the console's log)" },
          by,
        });
      });
  }

  /** Streams a stream's verify to one SSE client: where it is now, then its progress, then its result. */
  async stream(streamId: string, reply: FastifyReply): Promise<void> {
    reply.hijack();
    const raw = reply.raw;
    raw.writeHead(200, {
      ...(reply.getHeaders() as Record<string, string>),
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-store",
      connection: "keep-alive",
    });
    const send = (m: Message) => raw.write(`event: ${m.event}\ndata: ${JSON.stringify(m.data)}\n\n`);
    const run = this.runs.get(streamId);
    if (!run || run.result !== null) {
      const result = run?.result ?? (await lastVerify(this.ctx, streamId));
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
