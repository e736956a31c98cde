/**
 * Every error auditgraph throws on purpose carries a stable `code` (`AUDITGRAPH_E_...`), listed
 * with its meaning in docs/errors.md, so a caller branches on the code and never on the message,
 * which may be reworded. A test fails when a code in the source is missing from that page.
 */
export type ErrorCode = `AUDITGRAPH_E_${string}` | LegacyErrorCode;

/**
 * Codes given out before the `AUDITGRAPH_E_` convention, kept as they are because callers, log
 * searches and tests match on them (the worker logs `AUDITGRAPH_PROJECTION_FOREIGN`, say).
 * No new code joins this list.
 */
export const LEGACY_ERROR_CODES = [
  "AUDITGRAPH_AMBIGUOUS_ID",
  "AUDITGRAPH_GRAPH_NOT_MIGRATED",
  "AUDITGRAPH_LEDGER_NOT_INITIALISED",
  "AUDITGRAPH_MIGRATION_LOCKED",
  "AUDITGRAPH_PROJECTION_FOREIGN",
  "AUDITGRAPH_REPLAY_SUBJECT_MISSING",
  "AUDITGRAPH_SNAPSHOT_UNREADABLE",
  "AUDITGRAPH_WORKER_CLOSING",
] as const;
export type LegacyErrorCode = (typeof LEGACY_ERROR_CODES)[number];

export class AuditgraphError extends Error {
  override name = "AuditgraphError";
  constructor(
    readonly code: ErrorCode,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** True when `error` is an auditgraph error, optionally with the given code. */
export function isAuditgraphError(error: unknown, code?: ErrorCode): error is AuditgraphError {
  return error instanceof AuditgraphError && (code === undefined || error.code === code);
}
