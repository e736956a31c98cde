import { z } from "zod";
import {
  AuditgraphError,
  SEVERITIES,
  ValidationError,
  canonicalJson,
  parseWith,
  sha256Hex,
  type AuditEvent,
  type EventType,
  type FieldIssue,
  type PolicyAction,
  type Severity,
} from "@auditgraph/core";
import { compileCondition } from "./condition.js";
import {
  CONDITION_BRANCHES,
  PolicyFileSchema,
  conditionBranch,
  type Hold,
  type PolicyDefinition,
  type PolicyDefinitionInput,
  type PolicyFileInput,
} from "./definition.js";
import { FindingSchema, concernKindOf, type Finding } from "./finding.js";
import type { PolicyCheck, PolicyFunction, PolicyHit } from "./function.js";
import { InMemoryPolicyState, scopedState, type PolicyState } from "./state.js";
import { BUILTIN_POLICY_FUNCTIONS } from "./builtins/index.js";

/** A loaded policy, as callers may inspect it. */
export interface PolicyInfo {
  readonly id: string;
  readonly version: string;
  readonly severity: Severity;
  readonly action: PolicyAction;
  readonly hold: Hold | undefined;
  readonly eventTypes: ReadonlySet<EventType>;
}

interface LoadedPolicy extends PolicyInfo {
  readonly check: PolicyCheck;
  readonly concerns: Finding["concerns"]["kind"] | undefined;
}

const isPolicyFunction = (v: unknown): boolean =>
  typeof v === "object" && v !== null && typeof (v as PolicyFunction).name === "string" && typeof (v as PolicyFunction).create === "function";

export const PolicySetOptionsSchema = z.strictObject({
  /** Functions registered besides the built-ins; a name may be registered once. */
  functions: z
    .array(z.custom<PolicyFunction>(isPolicyFunction, "must be a policy function (definePolicyFunction({ name, version, params, eventTypes, create }))"))
    .readonly()
    .optional(),
});
export type PolicySetOptions = z.input<typeof PolicySetOptionsSchema>;

export interface EvaluationContext {
  /** Counters for the stateful policies (default: the set's own, in memory; the worker passes a shared one). */
  state?: PolicyState;
  /** Evaluate only the policies with these actions (the agent process: `block` and `hold`). */
  actions?: readonly PolicyAction[];
  /** Evaluate only the policies of this severity or above (the agent process's urgency screen). */
  minSeverity?: Severity;
}

/** Some policies failed on an event. The others' findings are kept; the error names policies, never event content. */
export class PolicyEvaluationError extends AuditgraphError {
  override readonly name = "PolicyEvaluationError";
  constructor(
    readonly failures: ReadonlyArray<{ policyId: string; error: string }>,
    readonly findings: Finding[],
  ) {
    super("AUDITGRAPH_E_POLICY_EVALUATION", `policy evaluation failed: ${failures.map((f) => `${f.policyId} (${f.error})`).join(", ")}`);
  }
}

const SUBJECT = "policy set";

/** Issues with the paths zod reports, a union's narrowed to the option the input meant (see `conditionBranch`). */
function explain(issues: readonly z.core.$ZodIssue[], root: unknown, base: readonly PropertyKey[] = []): FieldIssue[] {
  const out: FieldIssue[] = [];
  for (const issue of issues) {
    const path = [...base, ...issue.path];
    if (issue.code === "invalid_union" && issue.errors.length === CONDITION_BRANCHES) {
      const branch = conditionBranch(valueAt(root, path));
      const chosen = branch === undefined ? undefined : issue.errors[branch];
      if (chosen) {
        out.push(...explain(chosen, root, path));
        continue;
      }
    }
    out.push({ path: path.map(String).join("."), message: issue.message });
  }
  return out;
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let value = root;
  for (const key of path) {
    if (typeof value !== "object" || value === null) return undefined;
    value = (value as Record<PropertyKey, unknown>)[key];
  }
  return value;
}

const round = (n: number): number => Math.round(n * 1e9) / 1e9;

/**
 * A loaded, validated set of policies with its version hash. The hash is SHA-256 over the
 * canonical JSON of the definitions sorted by id (parameters as their function parsed them) and
 * of the name and version of every function they use: reordering the file leaves it alone;
 * editing a rule, its parameters, or the code of a function (its version) changes it.
 */
export class PolicySet {
  readonly hash: string;
  readonly policies: readonly PolicyInfo[];
  private readonly loaded: readonly LoadedPolicy[];
  private readonly state = new InMemoryPolicyState();

  private constructor(loaded: LoadedPolicy[], hash: string) {
    this.loaded = loaded;
    this.policies = loaded;
    this.hash = hash;
  }

  /**
   * Validates and compiles a set: a policy file's content or its `policies` list. Throws a
   * ValidationError naming every offending field (`policies.2.params.maxTokens`).
   */
  static create(input: PolicyFileInput | readonly PolicyDefinitionInput[], options: PolicySetOptions = {}): PolicySet {
    const { functions: registered = [] } = parseWith(PolicySetOptionsSchema, options, "policy set options");
    const file: unknown = Array.isArray(input) ? { policies: input } : input;
    const parsed = PolicyFileSchema.safeParse(file);
    if (!parsed.success) throw new ValidationError(SUBJECT, explain(parsed.error.issues, file));

    const registry = new Map<string, PolicyFunction>(BUILTIN_POLICY_FUNCTIONS.map((fn) => [fn.name, fn]));
    for (const fn of registered) {
      if (registry.has(fn.name)) throw new ValidationError(SUBJECT, [{ path: "functions", message: `policy function ${fn.name} is registered twice` }]);
      registry.set(fn.name, fn);
    }

    const issues: FieldIssue[] = [];
    const loaded: LoadedPolicy[] = [];
    const hashed: Array<{ definition: PolicyDefinition; params?: unknown }> = [];
    const used = new Map<string, string>();
    parsed.data.policies.forEach((definition, i) => {
      const info = { id: definition.id, version: definition.version, severity: definition.severity, action: definition.action, hold: definition.hold };
      if (definition.kind === "rule") {
        const matcher = compileCondition(definition.when);
        const reason = definition.reason ?? definition.description ?? `rule ${definition.id} matched`;
        loaded.push({
          ...info,
          eventTypes: new Set(definition.eventTypes),
          concerns: definition.concerns,
          check: (event) => {
            const fields = matcher(event);
            return fields === undefined ? undefined : { reason, fields, measures: { matches: fields.length } };
          },
        });
        hashed.push({ definition });
        return;
      }
      const fn = registry.get(definition.function);
      if (!fn) {
        issues.push({
          path: `policies.${i}.function`,
          message: `no policy function named ${definition.function} (registered: ${[...registry.keys()].sort().join(", ")})`,
        });
        return;
      }
      const params = fn.params.safeParse(definition.params);
      if (!params.success) {
        issues.push(...explain(params.error.issues, definition.params, ["policies", i, "params"]));
        return;
      }
      used.set(fn.name, fn.version);
      loaded.push({
        ...info,
        eventTypes: new Set(definition.eventTypes ?? fn.eventTypes),
        concerns: undefined,
        check: fn.create(params.data),
      });
      hashed.push({ definition, params: params.data });
    });
    if (issues.length > 0) throw new ValidationError(SUBJECT, issues);

    const policies = hashed
      .map(({ definition, params }) => (params === undefined ? definition : { ...definition, params }))
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    const functions = [...used].map(([name, version]) => ({ name, version })).sort((a, b) => (a.name < b.name ? -1 : 1));
    const hash = sha256Hex(canonicalJson({ format: "auditgraph.policy-set/1", policies, functions }));
    return new PolicySet(loaded, hash);
  }

  /** Whether any policy with one of `actions` (default: any) looks at events of `type`. */
  appliesTo(type: EventType, actions?: readonly PolicyAction[]): boolean {
    return this.loaded.some((p) => p.eventTypes.has(type) && (!actions || actions.includes(p.action)));
  }

  /**
   * The findings of every policy that looks at this event's type. Stateful policies count the
   * event as they go, so each event is to be evaluated once per state, in the order of its trace.
   * A policy that throws does not hide the others: they all run, then a PolicyEvaluationError
   * carries their findings and names the failed ones.
   */
  async evaluate(event: AuditEvent, context: EvaluationContext = {}): Promise<Finding[]> {
    if (event.type === "policy.flag") return [];
    const state = context.state ?? this.state;
    const findings: Finding[] = [];
    const failures: Array<{ policyId: string; error: string }> = [];
    for (const policy of this.loaded) {
      if (!policy.eventTypes.has(event.type) || (context.actions && !context.actions.includes(policy.action))) continue;
      if (context.minSeverity && SEVERITIES.indexOf(policy.severity) < SEVERITIES.indexOf(context.minSeverity)) continue;
      try {
        const hit = await policy.check(event, { state: scopedState(state, policy.id), action: policy.action });
        if (hit) findings.push(this.finding(policy, event, hit));
      } catch (error) {
        // The error's name only: its message may quote the event.
        failures.push({ policyId: policy.id, error: error instanceof Error ? error.name : "Error" });
      }
    }
    if (failures.length > 0) throw new PolicyEvaluationError(failures, findings);
    return findings;
  }

  private finding(policy: LoadedPolicy, event: AuditEvent, hit: PolicyHit): Finding {
    const measures: Record<string, number> = {};
    for (const [key, value] of Object.entries(hit.measures ?? {})) measures[key] = round(value);
    return parseWith(
      FindingSchema,
      {
        policyId: policy.id,
        policyVersion: policy.version,
        policySetHash: this.hash,
        severity: policy.severity,
        action: policy.action,
        concerns: {
          eventId: event.eventId,
          runId: event.runId,
          traceId: event.traceId,
          kind: hit.kind ?? policy.concerns ?? concernKindOf(event.type),
        },
        reason: hit.reason,
        evidence: { fields: [...new Set(hit.fields ?? [])], measures },
      } satisfies Finding,
      `finding of policy ${policy.id}`,
    );
  }
}
