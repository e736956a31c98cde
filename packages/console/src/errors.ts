import { AuditgraphError } from "@auditgraph/core";

/** Coded console errors: the code is stable (tests and clients match on it), the message is for people. */
export const CONSOLE_ERROR_CODES = {
  AUDITGRAPH_E_CONSOLE_NOT_FOUND: 404,
  AUDITGRAPH_E_CONSOLE_FORBIDDEN: 403,
  AUDITGRAPH_E_CONSOLE_UNAUTHENTICATED: 401,
  AUDITGRAPH_E_CONSOLE_BAD_REQUEST: 400,
  AUDITGRAPH_E_CONSOLE_CONFLICT: 409,
} as const satisfies Record<string, number>;
export type ConsoleErrorCode = keyof typeof CONSOLE_ERROR_CODES;

export class ConsoleError extends AuditgraphError {
  override readonly name = "ConsoleError";
  declare readonly code: ConsoleErrorCode;
  readonly statusCode: number;
  constructor(code: ConsoleErrorCode, message: string) {
    super(code, message);
    this.statusCode = CONSOLE_ERROR_CODES[code];
  }
}

/** The same answer for "no such id" and "another tenant's id", so ids cannot be probed across tenants. */
export const notFound = (what: string) => new ConsoleError("AUDITGRAPH_E_CONSOLE_NOT_FOUND", `${what}: not found`);
export const forbidden = (what: string) => new ConsoleError("AUDITGRAPH_E_CONSOLE_FORBIDDEN", `${what}: your role does not allow it`);
