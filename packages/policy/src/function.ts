import type { z } from "zod";
import type { AuditEvent, ConcernKind, EventType, PolicyAction } from "@auditgraph/core";
import type { PolicyState } from "./state.js";

/**
 * What a policy reports when it fires; the set adds who (policy id, version, set hash), how bad
 * and what to do. Never put a value taken from the event in it: the reason is built from the
 * policy's own settings and counts, the evidence points at fields and counts.
 */
export interface PolicyHit {
  reason: string;
  /** Default: from the event type (`concernKindOf`). */
  kind?: ConcernKind;
  /** Paths of the event's fields the finding rests on. */
  fields?: string[];
  /** Counts by category, totals, limits. */
  measures?: Record<string, number>;
}

export interface PolicyContext {
  /** Counters of this policy only (its id prefixes every key). */
  state: PolicyState;
  /** What the definition does with a finding (absent when called from elsewhere): `block`/`hold` act on each call. */
  action?: PolicyAction;
}

export type PolicyCheck = (event: AuditEvent, context: PolicyContext) => PolicyHit | undefined | Promise<PolicyHit | undefined>;

/**
 * A policy written in TypeScript and registered by name. Definitions name it with
 * `kind: function` and give its parameters, which its schema checks when the set is loaded.
 */
export interface PolicyFunction<P = unknown> {
  readonly name: string;
  /** Bump it whenever the function's behaviour changes: it is part of the set hash recorded with every flag. */
  readonly version: string;
  /** Its parameters; the output must be plain JSON, as it is hashed into the set's version. */
  readonly params: z.ZodType<P>;
  /** The event types it looks at when the definition names none. */
  readonly eventTypes: readonly EventType[];
  /** Compiles the parameters once, when the set is loaded (patterns, lookups). */
  create(params: P): PolicyCheck;
}

/** Keeps `P` for `create` while the set stores every function alike. */
export const definePolicyFunction = <P>(fn: PolicyFunction<P>): PolicyFunction<P> => fn;
