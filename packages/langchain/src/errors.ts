import { AuditgraphError } from "@auditgraph/core";
import { PolicyRefusal } from "@auditgraph/policy";

/** Stable codes of the handler's deliberate refusals (`error.code`). */
export const AUDIT_REFUSAL_CODES = {
  /** Strict mode: a run had no user identity, so it was refused. */
  identityRequired: "AUDITGRAPH_E_IDENTITY_REQUIRED",
  /** Fail-closed tool: its audit event could not be made durable, so the call was refused. */
  notDurable: "AUDITGRAPH_E_AUDIT_NOT_DURABLE",
} as const;
export type AuditRefusalCode = (typeof AUDIT_REFUSAL_CODES)[keyof typeof AUDIT_REFUSAL_CODES];

/**
 * A refusal the handler means to raise into the agent, as opposed to its own failure: strict
 * identity (`AUDITGRAPH_E_IDENTITY_REQUIRED`) or a fail-closed tool whose event could not be made
 * durable (`AUDITGRAPH_E_AUDIT_NOT_DURABLE`).
 */
export class AuditRefusal extends AuditgraphError {
  override readonly name = "AuditRefusal";
  declare readonly code: AuditRefusalCode;
  constructor(code: AuditRefusalCode, message: string) {
    super(code, message);
  }
}

/**
 * The inline policies' refusal of a tool or model call (a `block` rule, a denied or timed-out
 * `hold`, or policies that could not be evaluated): `PolicyRefusal` of `@auditgraph/policy`,
 * `code` `AUDITGRAPH_E_POLICY_REFUSED`.
 */
export { PolicyRefusal };

/** True for the errors the handler throws on purpose: they always reach the agent. */
export const isRefusal = (error: unknown): error is AuditRefusal | PolicyRefusal => error instanceof AuditRefusal || error instanceof PolicyRefusal;
