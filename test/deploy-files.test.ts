import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { ShardsSchema } from "@auditgraph/core";

/**
 * The deployment files, checked where no Docker engine runs: docker-compose.yml parsed as YAML
 * (the worker service, its health check and what it waits for; health checks for every service),
 * and the Dockerfile's shape (multi-stage, non-root, health check, entrypoint). The Dockerfile's
 * build and start commands themselves are run by hand (see the issue notes).
 */

const root = (path: string) => fileURLToPath(new URL(`../${path}`, import.meta.url));

interface Service {
  build?: { context: string; dockerfile: string };
  environment?: Record<string, string>;
  volumes?: string[];
  ports?: string[];
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test: string[]; interval?: string; retries?: number };
}

describe("docker-compose.yml", async () => {
  const compose = parse(await readFile(root("docker-compose.yml"), "utf8")) as { services: Record<string, Service>; volumes: Record<string, unknown> };

  it("has a worker built from the Dockerfile, on the stack's services, with its ledger on a named volume", () => {
    const worker = compose.services.worker!;
    expect(worker.build).toEqual({ context: ".", dockerfile: "Dockerfile" });
    expect(worker.environment).toMatchObject({
      AUDITGRAPH_REDIS_URL: "redis://redis:6379",
      NEO4J_URI: "bolt://neo4j:7687",
      AUDITGRAPH_LEDGER_DIR: "/data/ledger",
      AUDITGRAPH_WORKER_HTTP_PORT: "9464",
    });
    const volume = worker.volumes!.map((v) => v.split(":")).find(([, target]) => target === "/data");
    expect(volume).toBeDefined();
    expect(Object.keys(compose.volumes)).toContain(volume![0]);
    // It waits for a healthy Redis, not for Neo4j (it starts while Neo4j is down).
    expect(worker.depends_on).toMatchObject({ redis: { condition: "service_healthy" }, neo4j: { condition: "service_started" } });
    expect(worker.healthcheck!.test.join(" ")).toMatch(/127\.0\.0\.1:9464\/(healthz|readyz)/);
    expect(worker.ports).toContain("127.0.0.1:9464:9464");
  });

  it("passes the shard count through to the worker, one shard unless the host sets it", () => {
    const shards = String(compose.services.worker!.environment!.AUDITGRAPH_SHARDS);
    // Compose's own substitution syntax, not a template: the host's value, else 1.
    expect(shards).toBe(["$", "{AUDITGRAPH_SHARDS:-1}"].join(""));
    // What compose substitutes when the host leaves it unset is a count the worker takes.
    expect(ShardsSchema.parse(shards.match(/:-(.*)\}$/)![1])).toMatchObject({ fallback: 1 });
  });

  it("gives every service a health check", () => {
    for (const name of ["neo4j", "redis", "postgres", "worker"]) {
      expect(compose.services[name], name).toBeDefined();
      expect(compose.services[name]!.healthcheck?.test.length, `${name} healthcheck`).toBeGreaterThan(0);
    }
    expect(compose.services.redis!.healthcheck!.test.join(" ")).toContain("redis-cli ping");
    expect(compose.services.postgres!.healthcheck!.test.join(" ")).toContain("pg_isready");
  });
});

describe("Dockerfile", async () => {
  const dockerfile = await readFile(root("Dockerfile"), "utf8");
  const instructions = dockerfile
    .replace(/\\\n/g, " ")
    .split("\n")
    .filter((l) => l.trim() && !l.trim().startsWith("#"));
  const stages = instructions.filter((l) => /^FROM /.test(l));

  it("builds in one stage and runs from another, on Node 20", () => {
    expect(stages).toHaveLength(2);
    for (const from of stages) expect(from).toMatch(/^FROM node:20[-\w.]*/);
    const runtime = instructions.slice(instructions.indexOf(stages[1]!));
    // The runtime copies what the build made; it installs and compiles nothing itself.
    expect(runtime.filter((l) => l.startsWith("COPY")).every((l) => l.includes("--from=build"))).toBe(true);
    expect(runtime.join("\n")).not.toMatch(/npm (ci|install)|tsc/);
    expect(instructions.join("\n")).toMatch(/npm prune --omit=dev/);
  });

  it("runs as a non-root user, with the CLI as entrypoint, the worker by default, and a health check on /healthz", () => {
    const user = instructions.filter((l) => l.startsWith("USER "));
    expect(user.at(-1)).toMatch(/^USER (?!root|0\b)\w+/);
    expect(instructions.find((l) => l.startsWith("ENTRYPOINT"))).toContain("packages/cli/bin/auditgraph.js");
    expect(instructions.find((l) => l.startsWith("CMD"))).toBe('CMD ["worker"]');
    expect(instructions.find((l) => l.startsWith("HEALTHCHECK"))).toMatch(/\/healthz/);
    expect(instructions.find((l) => l.startsWith("EXPOSE"))).toBe("EXPOSE 9464");
  });

  it("is built from a context without local installs, builds or secrets", async () => {
    const ignored = (await readFile(root(".dockerignore"), "utf8")).split("\n").map((l) => l.trim());
    for (const pattern of ["**/node_modules", "**/dist", ".git", ".auditgraph", ".env", "**/*.pem"]) expect(ignored).toContain(pattern);
  });
});
