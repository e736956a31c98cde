import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { createWriteStream, existsSync, readFileSync, type WriteStream } from "node:fs";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { freePort } from "./redis-process.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const MODULE = join(ROOT, "scripts/neo4j");
const CLASSES = join(MODULE, "target/classes");
const CP_FILE = join(MODULE, "target/classpath.txt");
const MAIN_CLASS = "dev.auditgraph.Neo4jLauncher";

/** The JVM flags of scripts/neo4j-start.sh, with a heap of the caller's. */
const jvmArgs = (heap: string) => [
  `-Xmx${heap}`,
  "-XX:+ExitOnOutOfMemoryError",
  "--add-opens=java.base/java.nio=ALL-UNNAMED",
  "--add-opens=java.base/java.io=ALL-UNNAMED",
  "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED",
  "-Dio.netty.tryReflectionSetAccessible=true",
  MAIN_CLASS,
];

/**
 * The launcher's class path, built first if need be (scripts/neo4j-build.sh: once, with Maven;
 * a no-op when built): a Neo4j that already answered on 7687 means neo4j-start.sh never built it.
 */
function launcherClasspath(): string {
  execFileSync(join(ROOT, "scripts/neo4j-build.sh"), { stdio: ["ignore", "ignore", "inherit"] });
  const deps = existsSync(CP_FILE) ? readFileSync(CP_FILE, "utf8").trim() : "";
  if (!existsSync(CLASSES) || deps === "") throw new Error(`scripts/neo4j-build.sh left no launcher: ${CLASSES} or ${CP_FILE} is missing or empty`);
  return `${CLASSES}:${deps}`;
}

function portOpen(port: number, host = "127.0.0.1"): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ port, host });
    const done = (open: boolean) => {
      socket.destroy();
      resolve(open);
    };
    socket.setTimeout(1_000, () => done(false));
    socket.once("connect", () => done(true));
    socket.once("error", () => done(false));
  });
}

/** Launchers still running when this process exits are killed, so a failed test leaves no JVM behind. */
const running = new Set<ChildProcess>();
let exitHook = false;
function track(child: ChildProcess): void {
  running.add(child);
  child.once("exit", () => running.delete(child));
  if (exitHook) return;
  exitHook = true;
  process.once("exit", () => {
    for (const c of running) c.kill("SIGKILL");
  });
}

export interface Neo4jProcessOptions {
  /** Bolt port on 127.0.0.1 (default: a free one). */
  port?: number;
  /** The store (default: `data` in a new temporary directory; server logs go beside it, in `logs`). */
  dataDir?: string;
  /** Password of user neo4j (at least 8 characters). */
  password?: string;
  /** JVM heap (-Xmx), e.g. "768m". */
  heap?: string;
  /** Longest wait for the ready line and the Bolt port (ms). */
  startTimeoutMs?: number;
}

/**
 * A real Neo4j of the test's own (the embedded launcher of scripts/neo4j-start.sh, same class
 * path and JVM flags) on a free port and a temporary store, which the test can stop (SIGTERM, a
 * clean shutdown) and start again on the same store and port. The shared server on 7687 is never
 * touched. Its output goes to `launcher.log` beside the store.
 */
export class Neo4jProcess {
  readonly port: number;
  readonly dataDir: string;
  readonly password: string;
  private readonly heap: string;
  private readonly startTimeoutMs: number;
  private child: ChildProcess | undefined;
  private log: WriteStream | undefined;
  /** The last output of the running (or last) launcher, for error messages. */
  private tail = "";
  /** Starts so far (a restart is the second). */
  starts = 0;

  private constructor(
    port: number,
    dataDir: string,
    options: Neo4jProcessOptions,
    /** The temporary directory `create` made, deleted by `remove`. */
    private readonly ownedDir: string | undefined,
  ) {
    this.port = port;
    this.dataDir = dataDir;
    this.password = options.password ?? "auditgraph-test-outage";
    if (this.password.length < 8) throw new RangeError("Neo4jProcess: the password must have at least 8 characters");
    this.heap = options.heap ?? "768m";
    this.startTimeoutMs = options.startTimeoutMs ?? 240_000;
  }

  /** A server on a free port with a store in a new temporary directory (not started yet). */
  static async create(options: Neo4jProcessOptions = {}): Promise<Neo4jProcess> {
    launcherClasspath(); // fail before anything else when the launcher is not built
    const ownedDir = options.dataDir === undefined ? await mkdtemp(join(tmpdir(), "auditgraph-neo4j-")) : undefined;
    const dataDir = options.dataDir ?? join(ownedDir!, "data");
    return new Neo4jProcess(options.port ?? (await freePort()), dataDir, options, ownedDir);
  }

  get uri(): string {
    return `bolt://127.0.0.1:${this.port}`;
  }

  /** A `Config["neo4j"]` for this server. */
  get config(): { uri: string; user: string; password: string; database: string } {
    return { uri: this.uri, user: "neo4j", password: this.password, database: "neo4j" };
  }

  /** The environment that points the CLI at this server. */
  get env(): Record<string, string> {
    return { NEO4J_URI: this.uri, NEO4J_USER: "neo4j", NEO4J_PASSWORD: this.password, NEO4J_DATABASE: "neo4j" };
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** The directory holding the store, the server logs and launcher.log. */
  get root(): string {
    return dirname(this.dataDir);
  }

  /** Starts the launcher and resolves once it printed its ready line and Bolt accepts connections. */
  async start(): Promise<void> {
    if (this.running) throw new Error(`neo4j on port ${this.port} is already running (pid ${this.pid})`);
    const classpath = launcherClasspath();
    if (await portOpen(this.port)) throw new Error(`port ${this.port} is taken by another process: cannot start a test Neo4j on it`);
    await mkdir(this.dataDir, { recursive: true });
    this.starts += 1;
    this.tail = "";
    this.log = createWriteStream(join(this.root, "launcher.log"), { flags: "a" });
    this.log.write(`--- start ${this.starts} at ${new Date().toISOString()}\n`);
    const child = spawn("java", jvmArgs(this.heap), {
      env: { ...process.env, CLASSPATH: classpath, NEO4J_BOLT_ADDRESS: `127.0.0.1:${this.port}`, NEO4J_DATA_DIR: this.dataDir, NEO4J_PASSWORD: this.password },
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.child = child;
    track(child);
    let ready = false;
    let out = "";
    const onOutput = (chunk: Buffer) => {
      const text = chunk.toString("utf8");
      this.log?.write(text);
      this.tail = (this.tail + text).slice(-4_000);
      if (!ready) {
        out += text;
        if (/^neo4j ready/m.test(out)) ready = true;
      }
    };
    child.stdout!.on("data", onOutput);
    child.stderr!.on("data", onOutput);
    let spawnError: Error | undefined;
    child.once("error", (error) => (spawnError = error));

    const started = Date.now();
    for (;;) {
      if (spawnError) throw new Error(`could not run java (a JDK 17+ must be on PATH): ${spawnError.message}`);
      if (!this.running)
        throw new Error(
          `neo4j (port ${this.port}, store ${this.dataDir}) exited during startup (${child.exitCode ?? child.signalCode}); last output:\n${this.tail}`,
        );
      if (ready && (await portOpen(this.port))) return;
      if (Date.now() - started > this.startTimeoutMs) {
        await this.stop();
        throw new Error(`neo4j on port ${this.port} not ready after ${this.startTimeoutMs} ms; stopped it. Last output:\n${this.tail}`);
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  /** SIGTERM (Neo4j shuts down cleanly), waits for the exit; SIGKILL after `timeoutMs`. Resolves once the port is free. */
  async stop(timeoutMs = 60_000): Promise<{ code: number | null; signal: NodeJS.Signals | null; killed: boolean }> {
    const child = this.child;
    if (!child || !this.running) return { code: child?.exitCode ?? null, signal: child?.signalCode ?? null, killed: false };
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    let killed = false;
    const timer = setTimeout(() => {
      killed = true;
      child.kill("SIGKILL");
    }, timeoutMs);
    child.kill("SIGTERM");
    await exited;
    clearTimeout(timer);
    await new Promise<void>((resolve) => (this.log ? this.log.end(resolve) : resolve()));
    this.log = undefined;
    for (let i = 0; i < 50 && (await portOpen(this.port)); i++) await new Promise((r) => setTimeout(r, 100));
    return { code: child.exitCode, signal: child.signalCode, killed };
  }

  /** Stops the server and deletes the temporary directory `create` made for it (store, logs); a store of the caller's is left. */
  async remove(): Promise<void> {
    await this.stop();
    if (this.ownedDir) await rm(this.ownedDir, { recursive: true, force: true });
  }

  /** The last output of the launcher. */
  output(): string {
    return this.tail;
  }
}
