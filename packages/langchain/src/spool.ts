import { mkdirSync, appendFileSync, openSync, fsyncSync, closeSync } from "node:fs";
import { open, readFile, writeFile, truncate, stat, rename } from "node:fs/promises";
import { join } from "node:path";
import { AuditgraphError, lockDir, type AuditEvent } from "@auditgraph/core";

export interface SpooledBatch {
  jobId: string;
  events: AuditEvent[];
  /** Holds an event that needs a human: queued with the urgent priority, also when forwarded later. */
  urgent?: boolean;
  /** The shard count the batch was grouped by (absent in spools written before shards). */
  shards?: number;
}

/**
 * A local append-only file of batches that could not reach Redis, forwarded in order later,
 * also by the next process that opens the same directory. `forwarded` (a byte offset, in a
 * file of its own) says how far forwarding got; re-sending past it is harmless, since the
 * job id of a batch and the event ids inside it are fixed.
 */
export class Spool {
  private readonly file: string;
  private readonly offsetFile: string;
  private release: (() => Promise<void>) | undefined;
  /** Bytes appended and not yet forwarded; 0 means the spool is empty. */
  private backlog = 0;

  private constructor(readonly dir: string) {
    this.file = join(dir, "spool.jsonl");
    this.offsetFile = join(dir, "spool.offset");
  }

  /** Opens (and locks: one process per directory) a spool, taking over what an earlier process left. */
  static async open(dir: string): Promise<Spool> {
    const spool = new Spool(dir);
    mkdirSync(dir, { recursive: true });
    try {
      spool.release = await lockDir(dir, { name: "spool" });
    } catch (error) {
      throw new AuditgraphError(
        "AUDITGRAPH_E_SPOOL_IN_USE",
        `spool directory ${dir} is in use by another process; give each process its own spoolDir (${(error as Error).message})`,
      );
    }
    const size = await stat(spool.file).then(
      (s) => s.size,
      () => 0,
    );
    spool.backlog = size - (await spool.readOffset());
    return spool;
  }

  get empty(): boolean {
    return this.backlog <= 0;
  }

  /** Synchronous and fsynced: a batch given to the spool survives the process dying right after. */
  append(batch: SpooledBatch): void {
    const line = `${JSON.stringify(batch)}\n`;
    const fd = openSync(this.file, "a");
    try {
      appendFileSync(fd, line);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    this.backlog += Buffer.byteLength(line);
  }

  /**
   * Hands the unforwarded batches, oldest first, `chunk` at a time, to `send` (one round trip to
   * Redis per chunk); stops at the first chunk that fails (it is tried again next time). The
   * offset is written once per chunk: a crash re-sends at most one chunk, which is harmless.
   * Empties the file once everything is through.
   */
  async forward(send: (batches: SpooledBatch[]) => Promise<void>, chunk = 20): Promise<number> {
    if (this.empty) return 0;
    let offset = await this.readOffset();
    const handle = await open(this.file, "r");
    let sent = 0;
    try {
      const size = (await handle.stat()).size;
      const buffer = Buffer.alloc(size - offset);
      await handle.read(buffer, 0, buffer.length, offset);
      let start = 0;
      while (start < buffer.length) {
        const batches: SpooledBatch[] = [];
        let end = start;
        for (let nl = buffer.indexOf(10, end); nl !== -1 && batches.length < chunk; nl = buffer.indexOf(10, end)) {
          batches.push(JSON.parse(buffer.subarray(end, nl).toString("utf8")) as SpooledBatch);
          end = nl + 1;
        }
        if (batches.length === 0) break;
        await send(batches);
        sent += batches.reduce((n, b) => n + b.events.length, 0);
        offset += end - start;
        this.backlog -= end - start;
        start = end;
        await this.writeOffset(offset);
      }
      if (offset >= size) {
        await truncate(this.file, 0);
        await this.writeOffset(0);
        this.backlog = 0;
      }
    } finally {
      await handle.close();
    }
    return sent;
  }

  private async readOffset(): Promise<number> {
    const text = await readFile(this.offsetFile, "utf8").catch(() => "0");
    const n = Number(text.trim());
    return Number.isInteger(n) && n >= 0 ? n : 0;
  }

  private async writeOffset(offset: number): Promise<void> {
    // Write-then-rename: a crash leaves the old offset or the new one, never half of one.
    const tmp = `${this.offsetFile}.tmp`;
    await writeFile(tmp, String(offset));
    await rename(tmp, this.offsetFile);
  }

  async close(): Promise<void> {
    await this.release?.();
    this.release = undefined;
  }
}
