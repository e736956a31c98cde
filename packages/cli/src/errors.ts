import { CommanderError } from "commander";
import { ValidationError } from "@auditgraph/core";

/**
 * The CLI's exit codes: 0 done, 1 a runtime failure (or, for `verify`, `snapshot verify` and
 * `verify-proof`, an integrity failure found), 2 the command could not run as asked: a usage
 * error, a bad setting, or (for the verifying commands) nothing that could be verified.
 */
export const EXIT = { ok: 0, failure: 1, usage: 2 } as const;

/**
 * Codes of the errors the CLI exits 2 for, older than the `AUDITGRAPH_E_` convention and kept
 * as they are (scripts and tests match on them):
 * - `AUDITGRAPH_USAGE`: a flag or argument is missing, unknown or malformed.
 * - `AUDITGRAPH_CONFIG`: a setting (an AUDITGRAPH_* variable or a configuration file) is invalid.
 * - `AUDITGRAPH_CANNOT_VERIFY`: a verifying command found nothing it could verify.
 * The CLI's other deliberate errors are `AuditgraphError`s (`AUDITGRAPH_E_...`) and exit 1.
 */
export type CliErrorCode = "AUDITGRAPH_USAGE" | "AUDITGRAPH_CONFIG" | "AUDITGRAPH_CANNOT_VERIFY";

/** An error the CLI exits 2 for; its message names the flag, argument or variable to fix. */
export class CliError extends Error {
  override readonly name = "CliError";
  constructor(
    message: string,
    readonly code: CliErrorCode,
  ) {
    super(message);
  }
}

export const usageError = (message: string) => new CliError(message, "AUDITGRAPH_USAGE");
export const configError = (message: string) => new CliError(message, "AUDITGRAPH_CONFIG");
export const cannotVerify = (message: string) => new CliError(message, "AUDITGRAPH_CANNOT_VERIFY");

// Subjects of the ValidationErrors that check what the user typed or set (not data read at run time).
const USER_INPUT_SUBJECT = /^(configuration$|parameters of |review thresholds$|--|.* arguments$|.* <id>$)/;

/** The exit code of an error a command threw. */
export function exitCodeOf(error: unknown): number {
  if (error instanceof CommanderError) return error.exitCode === 0 ? EXIT.ok : EXIT.usage;
  if (error instanceof CliError) return EXIT.usage;
  if (error instanceof ValidationError && USER_INPUT_SUBJECT.test(error.subject)) return EXIT.usage;
  return EXIT.failure;
}

/** Commander's message on one line, as the CLI's other errors are (its "Did you mean" hint kept). */
export const oneLine = (text: string) =>
  text
    .trim()
    .split("\n")
    .map((line) => line.trim())
    .filter(Boolean)
    .join(" ");
