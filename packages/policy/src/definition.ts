import { z } from "zod";
import { ConcernKindSchema, EventSchema, PolicyActionSchema, SeveritySchema, type EventType } from "@auditgraph/core";
import { FieldPathSchema } from "./paths.js";
import { RegexFlagsSchema, checkRegex } from "./regex.js";

/** Every event type of the schema. */
export const EVENT_TYPES: readonly EventType[] = EventSchema.options.map((option) => option.shape.type.value);

// Flags are not evaluated: a policy over flags could raise a flag on its own flag, without end.
const POLICY_EVENT_TYPES = EVENT_TYPES.filter((type): type is Exclude<EventType, "policy.flag"> => type !== "policy.flag");
export const PolicyEventTypeSchema = z.enum(POLICY_EVENT_TYPES as [Exclude<EventType, "policy.flag">, ...Exclude<EventType, "policy.flag">[]]);

/**
 * One test on the values at a field path; it holds when any value there passes (so a `*` path
 * asks "does any element"). `equals` and `in` compare JSON values; `matches` (a regular
 * expression, searched, not anchored) only strings; `gt`/`gte`/`lt`/`lte` only numbers;
 * `exists` holds for any value but null.
 */
export const PredicateSchema = z.discriminatedUnion("op", [
  z.strictObject({ field: FieldPathSchema, op: z.literal("equals"), value: z.json() }),
  z.strictObject({ field: FieldPathSchema, op: z.literal("in"), values: z.array(z.json()).min(1) }),
  z.strictObject({ field: FieldPathSchema, op: z.literal("matches"), pattern: z.string().min(1), flags: RegexFlagsSchema }).superRefine(checkRegex),
  z.strictObject({ field: FieldPathSchema, op: z.enum(["gt", "gte", "lt", "lte"]), value: z.number() }),
  z.strictObject({ field: FieldPathSchema, op: z.literal("exists") }),
]);
export type Predicate = z.infer<typeof PredicateSchema>;

/** A predicate, or `all` / `any` of conditions, or `not` one. */
export const ConditionSchema = z.union([
  PredicateSchema,
  z.strictObject({
    get all() {
      return z.array(ConditionSchema).min(1);
    },
  }),
  z.strictObject({
    get any() {
      return z.array(ConditionSchema).min(1);
    },
  }),
  z.strictObject({
    get not() {
      return ConditionSchema;
    },
  }),
]);
export type Condition = z.infer<typeof ConditionSchema>;

/** Which of ConditionSchema's options `value` means to be: its errors are the ones worth reporting. */
export function conditionBranch(value: unknown): number | undefined {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return undefined;
  if ("all" in value) return 1;
  if ("any" in value) return 2;
  if ("not" in value) return 3;
  return 0;
}
export const CONDITION_BRANCHES = 4;

/** How long a held call waits for a decision, and what it does when none comes. */
export const HoldSchema = z.strictObject({
  // setTimeout's own ceiling (about 24.8 days).
  timeoutMs: z
    .int()
    .positive()
    .max(2 ** 31 - 1),
  defaultOutcome: z.enum(["allow", "deny"]),
});
export type Hold = z.infer<typeof HoldSchema>;

const common = {
  id: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._:-]*$/, "letters, digits and . _ : - (it names the policy in flags and in the graph)"),
  // A number too: YAML reads `version: 2` as one, and a file should not fail on that.
  version: z.union([z.string().min(1), z.number().transform(String)]),
  description: z.string().min(1).optional(),
  severity: SeveritySchema,
  action: PolicyActionSchema,
  /** Required with action `hold`, refused with any other. */
  hold: HoldSchema.optional(),
};

/** A declarative rule: a condition over the fields of events of the listed types. */
export const RulePolicySchema = z.strictObject({
  ...common,
  kind: z.literal("rule"),
  eventTypes: z.array(PolicyEventTypeSchema).min(1),
  when: ConditionSchema,
  /** The finding's reason (default: the description). Written by the operator, never taken from the event. */
  reason: z.string().min(1).optional(),
  /** What the finding is about (default: from the event type, see `concernKindOf`). */
  concerns: ConcernKindSchema.optional(),
});

/** A TypeScript function registered by name (the built-ins among them), with its parameters. */
export const FunctionPolicySchema = z.strictObject({
  ...common,
  kind: z.literal("function"),
  function: z.string().min(1),
  /** Checked by the function's own parameter schema when the set is loaded. */
  params: z.record(z.string(), z.json()).default({}),
  /** Absent: the types the function looks at by default. */
  eventTypes: z.array(PolicyEventTypeSchema).min(1).optional(),
});

export const PolicyDefinitionSchema = z.discriminatedUnion("kind", [RulePolicySchema, FunctionPolicySchema]).superRefine((policy, ctx) => {
  if (policy.action === "hold" && policy.hold === undefined)
    ctx.addIssue({ code: "custom", path: ["hold"], message: "action hold needs hold: { timeoutMs, defaultOutcome }" });
  if (policy.action !== "hold" && policy.hold !== undefined)
    ctx.addIssue({ code: "custom", path: ["hold"], message: `only action hold takes a hold (this policy's action is ${policy.action})` });
});
export type PolicyDefinition = z.infer<typeof PolicyDefinitionSchema>;
export type PolicyDefinitionInput = z.input<typeof PolicyDefinitionSchema>;

/** A policy file (JSON or YAML): `{ policies: [...] }`, ids unique. */
export const PolicyFileSchema = z.strictObject({ policies: z.array(PolicyDefinitionSchema) }).superRefine((file, ctx) => {
  const seen = new Map<string, number>();
  file.policies.forEach((policy, i) => {
    const first = seen.get(policy.id);
    if (first !== undefined) ctx.addIssue({ code: "custom", path: ["policies", i, "id"], message: `duplicate policy id (also policies.${first}.id)` });
    else seen.set(policy.id, i);
  });
});
export type PolicyFile = z.infer<typeof PolicyFileSchema>;
export type PolicyFileInput = z.input<typeof PolicyFileSchema>;
