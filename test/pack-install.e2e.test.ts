import { spawn, type ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Graph } from "@auditgraph/graph";
import { loadConfig } from "@auditgraph/cli";

/**
 * The packages as a new user gets them: every workspace packed with `npm pack`, the tarballs
 * installed beside `langchain` into a fresh app outside the repository, an agent run there and
 * the worker and CLI run from there. Needs the npm registry (langchain, @langchain/core,
 * typescript, @types/node, zod and the packages' dependencies; the npm cache makes it quick).
 */

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const PACKAGES = ["core", "redaction", "policy", "ledger", "graph", "langchain", "otel", "witness", "worker", "replay", "console", "cli"] as const;
const LONG = 360_000;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * The environment without what `npm test` says about the repository (npm_config_local_prefix
 * would send a child npm back to it) and without the suite's AUDITGRAPH_* settings; npm's own
 * configuration (registry, cache, cafile) is kept.
 */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  const repoScoped = /^(npm_config_local_prefix|npm_config_workspaces?|npm_package_.*|npm_lifecycle_.*|INIT_CWD|AUDITGRAPH_.*)$/i;
  for (const [k, v] of Object.entries(process.env)) if (!repoScoped.test(k)) env[k] = v;
  // The Redis the rest of the suite uses, if the environment names one.
  if (process.env.AUDITGRAPH_REDIS_URL) env.AUDITGRAPH_REDIS_URL = process.env.AUDITGRAPH_REDIS_URL;
  return { ...env, ...extra };
}

function run(cmd: string, args: string[], options: { cwd: string; env?: NodeJS.ProcessEnv; timeoutMs?: number }): Promise<Run> {
  return new Promise((done, fail) => {
    const child = spawn(cmd, args, { cwd: options.cwd, env: options.env ?? cleanEnv(), stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 120_000);
    child.on("error", fail);
    child.on("close", (code) => {
      clearTimeout(timer);
      done({ code, stdout, stderr });
    });
  });
}

async function ok(cmd: string, args: string[], options: Parameters<typeof run>[2]): Promise<Run> {
  const r = await run(cmd, args, options);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(" ")} (in ${options.cwd}) exited ${r.code}\n${r.stdout}\n${r.stderr}`);
  return r;
}

async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile()).map((e) => relative(dir, join(e.parentPath, e.name)));
}

const lock = JSON.parse(await readFile(join(ROOT, "package-lock.json"), "utf8")) as { packages: Record<string, { version?: string }> };
/** The versions the repository is tested with, so that the npm cache serves them. */
const locked = (name: string) => {
  const version = lock.packages[`node_modules/${name}`]?.version;
  if (!version) throw new Error(`${name} is not in package-lock.json`);
  return `${name}@${version}`;
};

const suffix = randomUUID().slice(0, 8);
const tenantId = `pack-${suffix}`;
const userId = `user-${suffix}`;
const answer = `Order ${suffix} ships on Tuesday.`;
let tmp: string;
let app: string;
let packs: string;
let worker: ChildProcess | undefined;
let workerLog = "";
let typechecked: Promise<Run>;
/** How long each step took, printed at the end (the issue asks how long this test takes). */
const timings: Record<string, number> = {};
const started = Date.now();
const lap = (step: string, since: number) => (timings[step] = Math.round((Date.now() - since) / 100) / 10);

/** Type-checks a strict user's file importing every package; started once installed, while the agent and worker run. */
async function typecheck(): Promise<Run> {
  await writeFile(
    join(app, "tsconfig.json"),
    JSON.stringify({
      compilerOptions: { strict: true, skipLibCheck: false, noEmit: true, module: "NodeNext", moduleResolution: "NodeNext", target: "ES2022", types: ["node"] },
      files: ["check.ts"],
    }),
  );
  await writeFile(
    join(app, "check.ts"),
    `import type { BaseCallbackHandler } from "@langchain/core/callbacks/base";
import { AuditCallbackHandler, QueueTransport } from "@auditgraph/langchain";
import { EventSchema, canonicalJson, sha256Hex, type AuditEvent } from "@auditgraph/core";
import { Redactor, type RedactionCounts } from "@auditgraph/redaction";
import { loadPolicyFile, type Finding } from "@auditgraph/policy";
import { SegmentLedger, PostgresLedger, type VerifyReport } from "@auditgraph/ledger";
import { Graph, investigate, type Lineage } from "@auditgraph/graph";
import { AuditWorker, type AuditWorkerOptions } from "@auditgraph/worker";
import { replaySnapshot, createSnapshot } from "@auditgraph/replay";
import { loadConfig, type Config } from "@auditgraph/cli";
import { handleOtlpExport, parseOtlpTokens, type OtlpOutcome } from "@auditgraph/otel";
import { Witness, WitnessState } from "@auditgraph/witness";

// The handler is a callback handler of the app's own @langchain/core (the peer dependency).
const handler: BaseCallbackHandler = new AuditCallbackHandler(
  { agent: { id: "a", name: "A", version: "1" } },
  new QueueTransport({ connection: { host: "127.0.0.1", port: 6379 } }),
);
const event: AuditEvent = EventSchema.parse({});
const digest: string = sha256Hex(canonicalJson(event));
const redacted: AuditEvent = new Redactor({ pii: true }).redactEvent(event);
const counts: RedactionCounts | undefined = redacted.redactions;
const ledger = new SegmentLedger("ledger");
const report: Promise<VerifyReport> = ledger.verify();
const pg: typeof PostgresLedger = PostgresLedger;
const graph = new Graph({ uri: "bolt://127.0.0.1:7687", user: "neo4j", password: "x" });
const rows = investigate(graph, "user-activity", { tenantId: "t", userId: "u" });
const lineage: Promise<Lineage | null> = graph.lineage("trace");
const options: AuditWorkerOptions = { connection: { host: "127.0.0.1", port: 6379 }, ledger, graph };
const worker: typeof AuditWorker = AuditWorker;
const findings: Promise<Finding[]> = loadPolicyFile("p.yaml").then((set) => set.evaluate(event));
const config: Config = loadConfig({});
const otlp: OtlpOutcome = handleOtlpExport({ contentType: "application/json", contentEncoding: undefined, authorization: undefined, body: new Uint8Array() }, parseOtlpTokens(""));
const witness: Promise<Witness> = WitnessState.open("state").then((state) => new Witness({ name: "w", privateKey: "pem", logs: [], state }));
export { handler, digest, redacted, counts, report, pg, rows, lineage, options, worker, findings, config, replaySnapshot, createSnapshot, otlp, witness };
`,
  );
  return run(join(app, "node_modules", ".bin", "tsc"), ["-p", "tsconfig.json"], { cwd: app, timeoutMs: LONG });
}

/** A port nothing listens on now (the OS picks it; it is given back at once). */
async function freePort(): Promise<number> {
  const { createServer } = await import("node:net");
  const server = createServer();
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
  const { port } = server.address() as { port: number };
  await new Promise((done) => server.close(done));
  return port;
}

beforeAll(async () => {
  let t = Date.now();
  await ok("npx", ["tsc", "-b"], { cwd: ROOT, timeoutMs: LONG });
  lap("build", t);
  t = Date.now();
  tmp = await mkdtemp(join(tmpdir(), "auditgraph-pack-install-"));
  packs = join(tmp, "packs");
  app = join(tmp, "app");
  await mkdir(packs);
  await mkdir(app);
  await ok("npm", ["pack", "--workspaces", "--pack-destination", packs], { cwd: ROOT, timeoutMs: LONG });
  await writeFile(join(app, "package.json"), JSON.stringify({ name: "pack-install-app", private: true, type: "module" }, null, 2));
  lap("pack", t);
  t = Date.now();
  const tarballs = (await readdir(packs)).filter((f) => f.endsWith(".tgz")).map((f) => join(packs, f));
  expect(tarballs).toHaveLength(PACKAGES.length);
  const registry = ["langchain", "@langchain/core", "zod", "typescript", "@types/node"].map(locked);
  await ok("npm", ["install", "--no-audit", "--no-fund", "--prefer-offline", ...tarballs, ...registry], { cwd: app, timeoutMs: LONG });
  lap("install", t);
  t = Date.now();
  typechecked = typecheck().finally(() => lap("typecheck", t));
  typechecked.catch(() => undefined); // awaited by its test
}, LONG);

afterAll(async () => {
  console.info(`pack-install: ${JSON.stringify({ ...timings, totalSeconds: Math.round((Date.now() - started) / 1000) })}`);
  if (worker?.pid !== undefined && worker.exitCode === null && worker.signalCode === null) process.kill(-worker.pid, "SIGKILL");
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

const installed = (pkg: string) => join(app, "node_modules", "@auditgraph", pkg);
// biome-ignore lint/suspicious/noExplicitAny: a package.json, read field by field.
const manifest = async (pkg: string) => JSON.parse(await readFile(join(installed(pkg), "package.json"), "utf8")) as Record<string, any>;

describe("every package, packed and installed into an app outside the repository", () => {
  it("is publishable: licensed, described, engines, its own README, and the same version for internal deps", async () => {
    const license = await readFile(join(ROOT, "LICENSE"), "utf8");
    expect(license).toContain("Apache License");
    expect(license).toContain("Version 2.0, January 2004");
    const versions = Object.fromEntries(await Promise.all(PACKAGES.map(async (p) => [`@auditgraph/${p}`, (await manifest(p)).version])));
    for (const p of PACKAGES) {
      const m = await manifest(p);
      expect(m.private, p).toBeUndefined();
      expect(m.version, p).toMatch(/^\d+\.\d+\.\d+/);
      expect(m.license, p).toBe("Apache-2.0");
      expect(await readFile(join(installed(p), "LICENSE"), "utf8"), p).toBe(license);
      expect(m.description, p).toBeTruthy();
      expect(m.keywords?.length, p).toBeGreaterThan(0);
      expect(m.repository, p).toMatchObject({ type: "git", directory: `packages/${p}` });
      expect(m.engines, p).toEqual({ node: ">=20" });
      const readme = await readFile(join(installed(p), "README.md"), "utf8");
      expect(readme, p).toContain(`npm install @auditgraph/${p}`);
      for (const [dep, range] of Object.entries({ ...m.dependencies, ...m.peerDependencies } as Record<string, string>))
        if (dep.startsWith("@auditgraph/")) expect(range, `${p} -> ${dep}`).toBe(versions[dep]);
    }
    for (const p of ["langchain", "replay"]) {
      const m = await manifest(p);
      expect(m.dependencies["@langchain/core"], p).toBeUndefined();
      expect(m.peerDependencies["@langchain/core"], p).toMatch(/^\^1\.\d+\.\d+$/);
    }
    // One copy of @langchain/core: the app's.
    const copies = (await readdir(join(app, "node_modules"), { recursive: true })).filter((f) => f.endsWith(join("@langchain", "core", "package.json")));
    expect(copies).toEqual([join("@langchain", "core", "package.json")]);
    expect((await manifest("cli")).bin).toEqual({ auditgraph: "bin/auditgraph.js" });
  });

  it("ships only what runs: no build info, every source map with its sources, the graph schema inside @auditgraph/graph", async () => {
    for (const p of PACKAGES) {
      const files = await filesUnder(installed(p));
      expect(
        files.filter((f) => f.includes("tsbuildinfo")),
        p,
      ).toEqual([]);
      expect(
        files.filter((f) => /(^|\/)(test|node_modules)\//.test(f)),
        p,
      ).toEqual([]);
      const maps = files.filter((f) => f.endsWith(".map"));
      expect(maps.length, p).toBeGreaterThan(0);
      for (const map of maps) {
        const { sources } = JSON.parse(await readFile(join(installed(p), map), "utf8")) as { sources: string[] };
        for (const source of sources) expect(existsSync(resolve(installed(p), dirname(map), source)), `${p}/${map} -> ${source}`).toBe(true);
      }
    }
    const schema = await filesUnder(join(installed("graph"), "graph-schema"));
    expect(schema).toContain("README.md");
    expect(schema.filter((f) => f.startsWith("migrations/") && f.endsWith(".cypher")).length).toBeGreaterThan(0);
    expect(schema).toContain("queries/user-activity.cypher");
    expect(schema).toContain("queries/trace-output.cypher");
  });

  it("declares no dependency its code does not use", async () => {
    for (const p of PACKAGES) {
      const m = JSON.parse(await readFile(join(ROOT, "packages", p, "package.json"), "utf8")) as { dependencies?: Record<string, string> };
      const deps = Object.keys(m.dependencies ?? {});
      const src = (await filesUnder(join(ROOT, "packages", p, "src"))).filter((f) => f.endsWith(".ts"));
      const code = (await Promise.all(src.map((f) => readFile(join(ROOT, "packages", p, "src", f), "utf8")))).join("\n");
      for (const dep of deps) {
        // @types/x is used where x is (its types reach the package's own .d.ts).
        const name = dep.startsWith("@types/") ? dep.slice("@types/".length) : dep;
        const used = code.includes(`"${name}"`) || code.includes(`"${name}/`);
        expect(used, `${p} declares ${dep} but its src never imports or resolves ${name}`).toBe(true);
        if (dep.startsWith("@types/")) expect(deps, `${p}: ${dep} without ${name}`).toContain(name);
      }
    }
  });

  it(
    "records an agent run there: worker, trace, query and verify from the app's folders",
    async () => {
      const redisUrl = new URL(process.env.AUDITGRAPH_REDIS_URL ?? "redis://127.0.0.1:6379");
      const queue = `pack-install-${suffix}`;
      const keys = join(app, "keys");
      const t = Date.now();
      await ok("npx", ["auditgraph", "keygen", "--out", keys], { cwd: app });
      const pems = await Promise.all((await readdir(keys)).map(async (f) => ({ path: join(keys, f), text: await readFile(join(keys, f), "utf8") })));
      const signingKey = pems.find((k) => k.text.includes("PRIVATE KEY"))!.path;
      const publicKey = pems.find((k) => k.text.includes("PUBLIC KEY"))!.path;
      // OpenTelemetry in: an ingest token for the tenant, and the worker's HTTP port (the receiver's).
      const otlp = JSON.parse((await ok("npx", ["auditgraph", "otlp-token", "--tenant", tenantId, "--json"], { cwd: app })).stdout) as {
        token: string;
        entry: string;
      };
      const httpPort = await freePort();
      const env = cleanEnv({
        AUDITGRAPH_QUEUE: queue,
        AUDITGRAPH_LEDGER_DIR: join(app, ".auditgraph", "ledger"),
        AUDITGRAPH_SPOOL_DIR: join(app, ".auditgraph", "spool"),
        AUDITGRAPH_SIGNING_KEY: signingKey,
        AUDITGRAPH_PUBLIC_KEY: publicKey,
        AUDITGRAPH_REDIS_URL: redisUrl.href,
        AUDITGRAPH_WORKER_HTTP_PORT: String(httpPort),
        AUDITGRAPH_OTLP_TOKENS: otlp.entry,
      });

      // The graph schema is found from the installed package, from any folder of the app.
      const nested = join(app, "src", "jobs");
      await mkdir(nested, { recursive: true });
      const migrations = (await readdir(join(installed("graph"), "graph-schema", "migrations"))).filter((f) => f.endsWith(".cypher"));
      const migrated = JSON.parse((await ok("npx", ["auditgraph", "migrate", "--json"], { cwd: nested, env })).stdout) as {
        applied: string[];
        skipped: string[];
      };
      expect([...migrated.applied, ...migrated.skipped].length).toBe(migrations.length);

      worker = spawn("npx", ["auditgraph", "worker"], { cwd: app, env, detached: true, stdio: ["ignore", "pipe", "pipe"] });
      worker.stdout!.on("data", (d: Buffer) => (workerLog += d.toString()));
      worker.stderr!.on("data", (d: Buffer) => (workerLog += d.toString()));
      const exited = new Promise<number | null>((done) => worker!.on("close", (code) => done(code)));

      await writeFile(
        join(app, "agent.mjs"),
        `import { randomUUID } from "node:crypto";
import { createAgent } from "langchain";
import { AIMessage } from "@langchain/core/messages";
import { fakeModel } from "@langchain/core/testing";
import { tool } from "@langchain/core/tools";
import { z } from "zod";
import { AuditCallbackHandler } from "@auditgraph/langchain";

const lookup = tool(({ orderId }) => JSON.stringify({ orderId, shipsOn: "Tuesday" }), {
  name: "order_lookup",
  description: "Look an order up.",
  schema: z.object({ orderId: z.string() }),
});
const model = fakeModel()
  .respond(new AIMessage({ content: "", tool_calls: [{ id: "call_1", name: "order_lookup", args: { orderId: "${suffix}" }, type: "tool_call" }] }))
  .respond(new AIMessage(${JSON.stringify(answer)}));
const agent = createAgent({ model, tools: [lookup], systemPrompt: "Answer from the order system." });

// No transport given: a QueueTransport on the same AUDITGRAPH_* variables as the worker's.
const handler = new AuditCallbackHandler({ agent: { id: "shipping-agent", name: "Shipping agent", version: "0.1.0" } });
const traceId = randomUUID();
const result = await agent.invoke(
  { messages: [{ role: "user", content: "When does order ${suffix} ship?" }] },
  { runId: traceId, callbacks: [handler], metadata: { auditgraph_user_id: ${JSON.stringify(userId)}, auditgraph_tenant_id: ${JSON.stringify(tenantId)} } },
);
await handler.close();
console.log(JSON.stringify({ traceId, answer: result.messages.at(-1).text }));
`,
      );
      const agentRun = await ok("node", ["agent.mjs"], { cwd: app, env });
      const { traceId, answer: printed } = JSON.parse(agentRun.stdout.trim().split("\n").at(-1)!) as { traceId: string; answer: string };
      expect(printed).toBe(answer);

      // The worker records and projects in the background: wait (asking Neo4j from here, which costs
      // no process start) until the whole trace is in the graph, then read it as the user would.
      const graph = new Graph(loadConfig().neo4j);
      try {
        for (const deadline = Date.now() + 120_000; ; ) {
          const lineage = await graph.lineage(traceId, { tenantId });
          if (lineage?.output.text === answer && lineage.toolCalls.length === 1) break;
          if (worker.exitCode !== null) throw new Error(`the worker exited ${worker.exitCode}:\n${workerLog}`);
          if (Date.now() > deadline) throw new Error(`trace ${traceId} not in the graph after 120 s; worker:\n${workerLog}`);
          await new Promise((r) => setTimeout(r, 500));
        }
      } finally {
        await graph.close();
      }
      const trace = await run("npx", ["auditgraph", "trace", traceId, "--tenant", tenantId], { cwd: nested, env });
      expect(trace.code, `${trace.stderr}\nworker:\n${workerLog}`).toBe(0);
      expect(trace.stdout).toContain(answer);
      expect(trace.stdout).toContain("order_lookup");

      const query = await ok("npx", ["auditgraph", "query", "user-activity", "--param", `tenantId=${tenantId}`, "--param", `userId=${userId}`, "--json"], {
        cwd: nested,
        env,
      });
      expect(query.stdout).toContain(traceId);

      // A GenAI span over OTLP/JSON to the installed worker's receiver: recorded, projected, traced.
      const otelTrace = randomUUID().replace(/-/g, "");
      const nanos = (ms: number) => `${BigInt(ms) * 1_000_000n}`;
      const span = {
        traceId: otelTrace,
        spanId: otelTrace.slice(0, 16),
        name: "chat fake-model",
        kind: 3,
        startTimeUnixNano: nanos(Date.now() - 50),
        endTimeUnixNano: nanos(Date.now()),
        attributes: [
          ["gen_ai.operation.name", "chat"],
          ["gen_ai.provider.name", "fake"],
          ["gen_ai.request.model", "fake-model"],
          ["user.id", userId],
          ["gen_ai.input.messages", JSON.stringify([{ role: "user", parts: [{ type: "text", content: "Ship date?" }] }])],
          ["gen_ai.output.messages", JSON.stringify([{ role: "assistant", parts: [{ type: "text", content: `otel ${answer}` }], finish_reason: "stop" }])],
        ].map(([key, value]) => ({ key, value: { stringValue: value } })),
      };
      const body = {
        resourceSpans: [{ resource: { attributes: [{ key: "service.name", value: { stringValue: "otel-agent" } }] }, scopeSpans: [{ spans: [span] }] }],
      };
      const post = (authorization?: string) =>
        fetch(`http://127.0.0.1:${httpPort}/v1/traces`, {
          method: "POST",
          headers: { "content-type": "application/json", ...(authorization ? { authorization } : {}) },
          body: JSON.stringify(body),
        });
      expect((await post()).status).toBe(401);
      const accepted = await post(`Bearer ${otlp.token}`);
      expect(accepted.status, await accepted.clone().text()).toBe(200);
      expect(await accepted.json()).not.toHaveProperty("partialSuccess.rejectedSpans");
      for (const deadline = Date.now() + 120_000; ; ) {
        const traced = await run("npx", ["auditgraph", "trace", otelTrace, "--tenant", tenantId, "--json"], { cwd: nested, env });
        if (traced.code === 0 && traced.stdout.includes(`otel ${answer}`)) break;
        if (Date.now() > deadline)
          throw new Error(`the OTLP span's trace is not in the graph after 120 s: ${traced.stdout}${traced.stderr}\nworker:\n${workerLog}`);
        await new Promise((r) => setTimeout(r, 1_000));
      }

      const verify = await run("npx", ["auditgraph", "verify"], { cwd: nested, env });
      expect(verify.code, verify.stdout + verify.stderr).toBe(0);

      // SIGTERM to the worker's process group (npx and the worker it runs): it finishes and exits.
      process.kill(-worker.pid!, "SIGTERM");
      const code = await Promise.race([exited, new Promise<"hung">((r) => setTimeout(() => r("hung"), 30_000))]);
      expect(code, workerLog).not.toBe("hung");
      lap("agent-worker-cli", t);
    },
    LONG,
  );

  it(
    "serves the review console from the installed package: its pages, scripts and styles, no CDN",
    async () => {
      const t = Date.now();
      const email = `admin-${suffix}@pack-install.test`;
      const env = cleanEnv({
        AUDITGRAPH_CONSOLE_DATABASE_URL: process.env.AUDITGRAPH_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/postgres",
        AUDITGRAPH_CONSOLE_SESSION_SECRET: `pack-install-session-secret-${suffix}-0123456789`,
        AUDITGRAPH_CONSOLE_ADMIN_PASSWORD: `pack-install-${suffix}-password`,
        AUDITGRAPH_LEDGER_DIR: join(app, ".auditgraph", "console-ledger"),
        AUDITGRAPH_QUEUE: `pack-install-console-${suffix}`,
      });
      await ok("npx", ["auditgraph", "console", "create-admin", "--email", email, "--name", "Pack Admin", "--tenant", `pack-${suffix}`], { cwd: app, env });
      const token = (await ok("npx", ["auditgraph", "console", "token", "--email", email, "--name", "pack-install"], { cwd: app, env })).stdout.trim();
      const server = spawn("npx", ["auditgraph", "console", "--port", "0"], { cwd: app, env, detached: true, stdio: ["ignore", "pipe", "pipe"] });
      let out = "";
      server.stderr!.on("data", (d: Buffer) => (out += d.toString()));
      try {
        const url = await new Promise<string>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`the console printed no URL in 60 s:\n${out}`)), 60_000);
          server.stdout!.on("data", (d: Buffer) => {
            out += d.toString();
            const m = /auditgraph console: (http:\/\/\S+)/.exec(out);
            if (m) {
              clearTimeout(timer);
              resolve(m[1]!);
            }
          });
          server.on("close", (code) => reject(new Error(`the console exited ${code}:\n${out}`)));
        });
        const login = await fetch(`${url}/login`);
        expect(login.status).toBe(200);
        expect(login.headers.get("content-security-policy")).toContain("script-src 'self'");
        const html = await login.text();
        // Every script and style the page loads is the console's own, served from the installed package.
        const assets = [...html.matchAll(/(?:src|href)="(\/assets\/[^"]+)"/g)].map((m) => m[1]!);
        expect(assets.length).toBeGreaterThanOrEqual(3);
        expect(html).not.toMatch(/(?:src|href)="https?:/);
        for (const asset of assets) {
          const r = await fetch(`${url}${asset}`);
          expect(r.status, asset).toBe(200);
          expect((await r.arrayBuffer()).byteLength, asset).toBeGreaterThan(100);
        }
        const inbox = await fetch(`${url}/`, { headers: { authorization: `Bearer ${token}`, accept: "text/html" } });
        expect(inbox.status, out).toBe(200);
        expect(await inbox.text()).toContain("Escalation inbox");
      } finally {
        process.kill(-server.pid!, "SIGTERM");
      }
      lap("console", t);
    },
    LONG,
  );

  it(
    "type-checks for a strict TypeScript user without skipLibCheck",
    async () => {
      const r = await typechecked;
      expect(r.stdout + r.stderr).toBe("");
      expect(r.code).toBe(0);
    },
    LONG,
  );
});
