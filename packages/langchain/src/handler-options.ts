import type { Logger } from "pino";
import { z } from "zod";
import { AgentIdentitySchema, SEVERITIES, UserIdentitySchema, type AuditEvent } from "@auditgraph/core";
import type { HoldDecider, PolicySet, PolicyState } from "@auditgraph/policy";

/** Price of a model per million tokens. */
export const PriceSchema = z.strictObject({
  input: z.number().nonnegative(),
  output: z.number().nonnegative(),
  /** Price of input tokens read from the provider's cache; defaults to `input`. */
  cachedInput: z.number().nonnegative().optional(),
  currency: z.string().length(3).default("USD"),
});

/** What the handler needs of a redactor: `Redactor` from this package, or one's own. */
export interface EventRedactor {
  redactEvent(event: AuditEvent): AuditEvent;
}

const isFunctionOf = (value: unknown, name: string): boolean =>
  typeof value === "object" && value !== null && typeof (value as Record<string, unknown>)[name] === "function";

/** Inline policies: see `inlinePolicies` below. */
export const InlinePoliciesSchema = z.strictObject({
  set: z.custom<PolicySet>((v) => isFunctionOf(v, "evaluate") && isFunctionOf(v, "appliesTo"), "must be a PolicySet (PolicySet.create or loadPolicyFile)"),
  decider: z.custom<HoldDecider>((v) => isFunctionOf(v, "decide"), "must be a HoldDecider (an object with decide(finding, signal))").optional(),
  state: z.custom<PolicyState>((v) => isFunctionOf(v, "add") && isFunctionOf(v, "get"), "must be a PolicyState (add and get)").optional(),
  escalateAt: z.enum(SEVERITIES, { error: `must be one of ${SEVERITIES.join(", ")}` }).optional(),
});

export const HandlerOptionsSchema = z.strictObject({
  /** The agent that acts: required, an agent is the one thing a handler always knows. */
  agent: AgentIdentitySchema.strict(),
  /** Default user; per invocation `auditgraph_user_id` / `auditgraph_tenant_id` in metadata win. */
  user: UserIdentitySchema.strict().optional(),
  sessionId: z.string().min(1).optional(),
  /** Refuse (throw from the callback, failing the run) any run without a user identity. */
  strict: z.boolean().default(false),
  /**
   * One `llm.token` event per streamed token (otherwise tokens are only counted and timed). With
   * redaction on (the default) a token's text stays in the process: a secret split across tokens
   * would pass a per-token check, so the events carry the index only and `llm.end` the whole,
   * redacted output.
   */
  captureTokens: z.boolean().default(false),
  /** Prices by model name (served version first, then requested name), for the cost on `llm.end`. */
  prices: z.record(z.string(), PriceSchema).default({}),
  /**
   * Fail-closed tools: their `tool.start` returns only once the event is in Redis or the
   * spool on disk, and fails the tool call if it cannot be recorded.
   */
  highImpactTools: z.array(z.string().min(1)).default([]),
  /** Rethrow the handler's own errors into the agent (default: count and log them, never break the agent). */
  raiseError: z.boolean().default(false),
  /**
   * Applied to every event before it leaves the handler. Default: `new Redactor()`, which replaces
   * secrets (API keys, bearer tokens, private keys, JWTs, password-like fields); PII as well with
   * `new Redactor({ pii: true })` (see docs/redaction.md). `false` sends everything in clear.
   */
  redactor: z
    .union([z.literal(false), z.custom<EventRedactor>((v) => isFunctionOf(v, "redactEvent"))], {
      error: "must be a Redactor (new Redactor({ ... })), an object with redactEvent(event), or false to send events unredacted",
    })
    .optional(),
  logger: z.custom<Logger>((v) => isFunctionOf(v, "warn"), "must be a pino logger").optional(),
  /**
   * Policies enforced in this process, before a tool or model call runs: its `block` rules fail
   * the call, its `hold` rules make it wait for `decider` (required when there are any). Each
   * finding is recorded as a `policy.flag` event. `flag` and `escalate` rules are the worker's.
   * `state` holds the counters (budgets, tool errors) of this process; default: in memory.
   * `escalateAt` (escalation-first): an event on which a `flag`/`escalate` rule of this severity
   * or above finds something, or a call a hold rule of that severity holds, is sent at once and
   * ahead of ordinary events (`Transport.expedite`), so its escalation opens without waiting in line.
   */
  inlinePolicies: InlinePoliciesSchema.optional(),
});
export type HandlerOptions = z.input<typeof HandlerOptionsSchema>;
