import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import Fastify, { type FastifyError, type FastifyInstance } from "fastify";
import helmet from "@fastify/helmet";
import formbody from "@fastify/formbody";
import type { ConsoleContext } from "./context.js";
import { ConsoleError } from "./errors.js";
import { html } from "./html.js";
import { page } from "./layout.js";
import { authRoutes } from "./auth.js";
import { inboxRoutes } from "./pages/inbox.js";
import { tracesRoutes } from "./pages/traces.js";
import { reviewsRoutes } from "./pages/reviews.js";
import { ledgerRoutes } from "./pages/ledger.js";

const require = createRequire(import.meta.url);
const publicFile = (name: string) => new URL(`../public/${name}`, import.meta.url);
const withoutSourceMap = (file: string) => Buffer.from(readFileSync(file, "utf8").replace(/\n\/\/# sourceMappingURL=\S*\s*$/, "\n"));

/** Scripts and styles ship in the package (no CDN): read once, served from memory. */
const ASSETS: Record<string, { type: string; body: Buffer }> = {
  "htmx.min.js": { type: "text/javascript", body: readFileSync(require.resolve("htmx.org/dist/htmx.min.js")) },
  "sse.js": { type: "text/javascript", body: readFileSync(require.resolve("htmx-ext-sse/dist/sse.min.js")) },
  "console.js": { type: "text/javascript", body: readFileSync(publicFile("console.js")) },
  "console.css": { type: "text/css", body: readFileSync(publicFile("console.css")) },
  // The inbox's countdown of held calls.
  "inbox.js": { type: "text/javascript", body: readFileSync(publicFile("inbox.js")) },
  // The trace page's lineage view: Cytoscape.js and its dagre layout (which bundles dagre), source-map comments cut.
  "cytoscape.min.js": { type: "text/javascript", body: withoutSourceMap(require.resolve("cytoscape/dist/cytoscape.min.js")) },
  "cytoscape-dagre.min.js": {
    type: "text/javascript",
    body: withoutSourceMap(join(dirname(require.resolve("cytoscape-dagre/package.json")), "dist/cytoscape-dagre.min.js")),
  },
  "lineage.js": { type: "text/javascript", body: readFileSync(publicFile("lineage.js")) },
  "ledger.js": { type: "text/javascript", body: readFileSync(publicFile("ledger.js")) },
};

const wantsHtml = (accept: string | undefined) => (accept ?? "").includes("text/html");

/** How often the ledger's trace index catches up in the background (see keepTraceIndexWarm). */
const TRACE_INDEX_WARM_MS = 2_000;
/** No trace has this id: looking it up only brings every stream's trace index up to date. */
const NO_TRACE = "auditgraph:warm-trace-index";

/**
 * A page's first trace lookup after a quiet spell would otherwise read everything the worker
 * appended meanwhile (about 320 ms per 40,000 records): the lookups catch up in the background
 * instead, at start and every TRACE_INDEX_WARM_MS, and a page finds the index nearly current.
 */
function keepTraceIndexWarm(app: FastifyInstance, ctx: ConsoleContext): void {
  const warm = () => void ctx.ledger.readTrace(NO_TRACE).catch(() => undefined);
  const timer = setInterval(warm, TRACE_INDEX_WARM_MS);
  timer.unref();
  warm();
  app.addHook("onClose", async () => clearInterval(timer));
}

/** The console's HTTP app: security headers, auth, then the pages. Listening is the caller's (see `startConsole`). */
export async function buildConsoleApp(ctx: ConsoleContext): Promise<FastifyInstance> {
  const app = Fastify({ logger: false, trustProxy: ctx.options.trustProxy });
  keepTraceIndexWarm(app, ctx);
  // A strict CSP: this origin's scripts and styles only, no inline script, no framing.
  await app.register(helmet, {
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        defaultSrc: ["'self'"],
        scriptSrc: ["'self'"],
        styleSrc: ["'self'"],
        imgSrc: ["'self'", "data:"],
        connectSrc: ["'self'"],
        objectSrc: ["'none'"],
        baseUri: ["'none'"],
        frameAncestors: ["'none'"],
        formAction: ["'self'"],
      },
    },
  });
  await app.register(formbody);
  app.get<{ Params: { name: string } }>("/assets/:name", async (request, reply) => {
    const asset = Object.hasOwn(ASSETS, request.params.name) ? ASSETS[request.params.name] : undefined;
    if (!asset) throw new ConsoleError("AUDITGRAPH_E_CONSOLE_NOT_FOUND", `asset ${request.params.name}: not found`);
    return reply.type(asset.type).header("cache-control", "public, max-age=3600").send(asset.body);
  });
  app.setErrorHandler((error: FastifyError | ConsoleError, request, reply) => {
    const status = error instanceof ConsoleError ? error.statusCode : error.statusCode && error.statusCode < 500 ? error.statusCode : 500;
    const code =
      error instanceof ConsoleError
        ? error.code
        : status === 403 && /csrf/i.test(error.message)
          ? "AUDITGRAPH_E_CONSOLE_FORBIDDEN"
          : (error.code ?? "AUDITGRAPH_E_CONSOLE_INTERNAL");
    const message = status >= 500 ? "internal error" : error.message;
    if (status >= 500) ctx.log.error({ err: { message: error.message, code: error.code }, url: request.routeOptions.url }, "console request failed");
    if (status === 401 && request.method === "GET" && wantsHtml(request.headers.accept))
      return reply.redirect(`/login?next=${encodeURIComponent(request.url)}`);
    if (wantsHtml(request.headers.accept))
      return reply
        .code(status)
        .type("text/html")
        .send(page({ title: `${status}`, viewer: null }, html`<p class="error">${code}: ${message}</p>`).toString());
    return reply.code(status).send({ code, message });
  });
  await authRoutes(app, ctx);
  await inboxRoutes(app, ctx);
  await tracesRoutes(app, ctx);
  await reviewsRoutes(app, ctx);
  await ledgerRoutes(app, ctx);
  return app;
}
