import type { FastifyInstance, FastifyRequest } from "fastify";
import cookie from "@fastify/cookie";
import session from "@fastify/session";
import csrf from "@fastify/csrf-protection";
import type { Cluster, Redis } from "ioredis";
import type { ConsoleContext } from "./context.js";

export const SESSION_KEY_PREFIX = "auditgraph:console:session:";
export const SESSION_COOKIE = "auditgraph_session";

declare module "fastify" {
  interface Session {
    /** The signed-in account; absent before login. */
    accountId?: string;
    via?: "password" | "oidc";
    /** The CSRF secret (@fastify/csrf-protection's sessionKey). */
    _csrf?: string;
    /** An OIDC login under way: checked at the callback, then dropped. */
    oidc?: { state: string; nonce: string; codeVerifier: string; next: string };
  }
}

type Callback = (error?: unknown) => void;

/**
 * Sessions in Redis, one key each, expiring with the session: a restarted or second console
 * process keeps everyone signed in, and a destroyed session is gone for every process at once.
 */
export class RedisSessionStore {
  constructor(
    private readonly redis: Redis | Cluster,
    private readonly ttlSeconds: number,
  ) {}

  static keyOf(sessionId: string): string {
    return SESSION_KEY_PREFIX + sessionId;
  }

  set(sessionId: string, data: unknown, callback: Callback): void {
    this.redis.set(RedisSessionStore.keyOf(sessionId), JSON.stringify(data), "EX", this.ttlSeconds).then(() => callback(), callback);
  }

  get(sessionId: string, callback: (error: unknown, result?: never | null) => void): void {
    this.redis.get(RedisSessionStore.keyOf(sessionId)).then(
      (text) => {
        let value = null;
        try {
          value = text === null ? null : JSON.parse(text);
        } catch {
          // A key that is not JSON is no session: the request starts a new one.
        }
        callback(null, value as never);
      },
      (error: unknown) => callback(error),
    );
  }

  destroy(sessionId: string, callback: Callback): void {
    this.redis.del(RedisSessionStore.keyOf(sessionId)).then(() => callback(), callback);
  }
}

/** Cookies, sessions (Redis) and CSRF tokens bound to the session. */
export async function registerSessions(app: FastifyInstance, ctx: ConsoleContext): Promise<void> {
  const { options } = ctx;
  // Secure cookies whenever people reach the console over https (directly or through a TLS proxy);
  // plain http is for a local console (http://127.0.0.1), where a Secure cookie would never come back.
  const secure = options.publicUrl?.startsWith("https:") ?? false;
  await app.register(cookie);
  await app.register(session, {
    secret: options.sessionSecret,
    cookieName: SESSION_COOKIE,
    store: new RedisSessionStore(ctx.redis, options.sessionTtlSeconds),
    saveUninitialized: false,
    rolling: false,
    cookie: { httpOnly: true, sameSite: "lax", secure, path: "/", maxAge: options.sessionTtlSeconds * 1000 },
  });
  await app.register(csrf, { sessionPlugin: "@fastify/session", sessionKey: "_csrf", logLevel: "debug" });
}

/** Only a path on this console: an absolute or protocol-relative `next` would make login an open redirect. */
export const safeNext = (next: unknown): string => (typeof next === "string" && /^\/(?![/\\])/.test(next) ? next : "/");

/** A new session id for the signed-in account: an id planted before login (session fixation) is worth nothing after it. */
export async function signIn(request: FastifyRequest, accountId: string, via: "password" | "oidc"): Promise<void> {
  await request.session.regenerate();
  request.session.accountId = accountId;
  request.session.via = via;
}
