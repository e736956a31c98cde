import Fastify, { type FastifyBaseLogger, type FastifyInstance } from "fastify";
import { WitnessResponse } from "./protocol.js";
import type { WitnessState } from "./state.js";
import type { Witness } from "./witness.js";

export interface WitnessServerOptions {
  witness: Witness;
  state: WitnessState;
  /** A pino logger (fastify logs each request through it: method, path, status; never bodies). */
  logger?: FastifyBaseLogger;
}

/** A request body is a checkpoint and at most 63 hashes: anything much larger is not one. */
const BODY_LIMIT = 64 * 1024;

/**
 * The witness over HTTP (https://c2sp.org/tlog-witness): `POST /add-checkpoint`, and the
 * monitoring read `GET /<origin hash>/checkpoint` of the latest checkpoint cosigned per log.
 */
export function witnessServer({ witness, state, logger }: WitnessServerOptions): FastifyInstance {
  const app = Fastify({ bodyLimit: BODY_LIMIT, ...(logger ? { loggerInstance: logger } : {}) });
  // Bodies are read as bytes whatever their content type: the protocol's body is plain lines.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser("*", { parseAs: "buffer" }, (_request, body, done) => done(null, body));

  const send = (reply: import("fastify").FastifyReply, response: WitnessResponse) =>
    reply.code(response.status).header("content-type", response.contentType).send(response.body);

  app.post("/add-checkpoint", async (request, reply) => {
    const body = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
    return send(reply, await witness.addCheckpoint(body));
  });

  app.get<{ Params: { hash: string } }>("/:hash/checkpoint", async (request, reply) => {
    const held = await state.getByHash(request.params.hash);
    if (!held) return send(reply, new WitnessResponse(404, "no checkpoint cosigned for that origin\n"));
    return send(reply, new WitnessResponse(200, held.note));
  });

  app.setErrorHandler((error: { statusCode?: number; message: string }, request, reply) => {
    const status = error.statusCode && error.statusCode >= 400 && error.statusCode < 500 ? error.statusCode : 500;
    if (status === 500) request.log.error({ err: error }, "witness request failed");
    return send(reply, new WitnessResponse(status, status === 500 ? "internal error\n" : `${error.message}\n`));
  });
  return app;
}
