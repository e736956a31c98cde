/**
 * Errors that say the ledger's storage cannot take writes *now* (a full or read-only disk, a
 * lost writer lock, a PostgreSQL that is full, read-only or unreachable), as against an error
 * in what was given to it. Waiting and trying again is the answer to these: the batch in hand
 * is not at fault, and failing it would spend its retries while the disk stays full.
 */
const FILE_CODES: Record<string, string> = {
  ENOSPC: "no space left on the ledger's disk",
  EDQUOT: "the ledger's disk quota is used up",
  EROFS: "the ledger's file system is read-only",
  EACCES: "the ledger's files cannot be written (permission denied)",
  EPERM: "the ledger's files cannot be written (operation not permitted)",
  EIO: "the ledger's disk reported an I/O error",
  EMFILE: "this process has too many open files",
  ENFILE: "the system has too many open files",
  ECOMPROMISED: "the ledger's writer lock was lost",
  ECONNREFUSED: "the ledger's database refused the connection",
  ECONNRESET: "the ledger's database dropped the connection",
  ETIMEDOUT: "the ledger's database did not answer",
};

/** PostgreSQL SQLSTATEs of the same kind: insufficient resources (53), read-only, connection lost or shut down. */
const SQL_STATES: [RegExp, string][] = [
  [/^53/, "the ledger's database is out of resources (disk full, out of memory or connections)"],
  [/^25006$/, "the ledger's database is read-only"],
  [/^08/, "the ledger's database connection failed"],
  [/^57P0[1-3]$/, "the ledger's database is shutting down or starting"],
];

/** Why the ledger cannot be written now (`"ENOSPC: no space left …"`), or undefined for any other error. */
export function ledgerUnavailable(error: unknown): string | undefined {
  for (let e = error, depth = 0; e instanceof Error && depth < 8; e = e.cause, depth += 1) {
    const code = (e as { code?: unknown }).code;
    if (typeof code !== "string") continue;
    const file = FILE_CODES[code];
    if (file) return `${code}: ${file}`;
    const sql = SQL_STATES.find(([pattern]) => pattern.test(code));
    if (sql) return `SQLSTATE ${code}: ${sql[1]}`;
  }
  return undefined;
}
