import { existsSync } from "node:fs";
import { readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import lockfile from "proper-lockfile";
import { backoffMs } from "./backoff.js";
import { AuditgraphError } from "./errors.js";
import { setTimeout as sleep } from "node:timers/promises";

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
};

export interface DirLockOptions {
  /** Lock name: `<name>.lock` (the lock) and `<name>.pid` (its holder) inside `dir`. */
  name: string;
  /** How long to keep trying while a live process holds it (0: fail at once). */
  waitMs?: number;
  /**
   * Called if the lock is lost while held (its refresh failed, or it went stale because this
   * process stalled): the holder must stop writing. Without it proper-lockfile throws from a timer.
   */
  onCompromised?: (error: Error) => void;
}

/**
 * An exclusive lock on a directory shared by processes on this machine (proper-lockfile),
 * that a process which died holding it does not keep: its pid is recorded, and a lock whose
 * holder is gone is taken over at once instead of after the stale timeout.
 */
export async function lockDir(dir: string, { name, waitMs = 0, onCompromised }: DirLockOptions): Promise<() => Promise<void>> {
  const lockfilePath = join(dir, `${name}.lock`);
  const pidFile = join(dir, `${name}.pid`);
  const deadline = Date.now() + waitMs;
  for (let attempt = 0; ; attempt++) {
    try {
      const release = await lockfile.lock(dir, { lockfilePath, stale: 10_000, ...(onCompromised ? { onCompromised } : {}) });
      // A full or read-only disk can refuse the pid file: give the lock back, or this process
      // would wait on itself at the next try.
      await writeFile(pidFile, String(process.pid)).catch(async (error: unknown) => {
        await release().catch(() => undefined);
        throw error;
      });
      // This waiter is served; another still waiting writes it again at its next try.
      await rm(wantedPath(dir, name), { force: true }).catch(() => undefined);
      return release;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ELOCKED") throw error;
      const holder = Number(await readFile(pidFile, "utf8").catch(() => ""));
      if (Number.isInteger(holder) && holder > 0 && holder !== process.pid && !alive(holder)) {
        await rm(lockfilePath, { recursive: true, force: true });
        continue;
      }
      if (Date.now() >= deadline) {
        await rm(wantedPath(dir, name), { force: true }).catch(() => undefined);
        throw new AuditgraphError("AUDITGRAPH_E_DIR_LOCKED", `${dir} is locked by another writer (pid ${holder || "unknown"})`, { cause: error });
      }
      // Says a writer waits, so a holder that keeps its lock between batches (a lease) lets go now (see `lockWanted`).
      if (waitMs > 0) await writeFile(wantedPath(dir, name), String(process.pid)).catch(() => undefined);
      // 5, 10, 20, 40, then 50 ms: a holder on this machine lets go within milliseconds.
      await sleep(backoffMs(attempt + 1, { minMs: 5, maxMs: 50 }));
    }
  }
}

const wantedPath = (dir: string, name: string) => join(dir, `${name}.wanted`);

/**
 * Whether another writer waits for the lock `name` on `dir` (it leaves `<name>.wanted` while it
 * does): a holder that keeps the lock across batches gives it up after its batch, so N processes
 * writing one directory take turns batch by batch instead of waiting out each other's lease.
 * Synchronous, one `stat`: it is asked after every batch.
 */
export function lockWanted(dir: string, name: string): boolean {
  return existsSync(wantedPath(dir, name));
}
