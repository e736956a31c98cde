import { z } from "zod";
import type { AuditEvent } from "@auditgraph/core";
import { definePolicyFunction } from "../function.js";
import { toolArgs } from "../paths.js";
import { RegexFlagsSchema, checkRegex, compile } from "../regex.js";

const NumberBoundSchema = z
  .strictObject({
    type: z.literal("number"),
    min: z.number().optional(),
    max: z.number().optional(),
    integer: z.boolean().default(false),
    required: z.boolean().default(false),
  })
  .refine((b) => b.min === undefined || b.max === undefined || b.min <= b.max, { path: ["max"], message: "must not be below min" });

const StringBoundSchema = z
  .strictObject({
    type: z.literal("string"),
    minLength: z.int().nonnegative().optional(),
    maxLength: z.int().nonnegative().optional(),
    /** Searched, not anchored, as in JSON Schema: anchor it with ^ and $ to match the whole value. */
    pattern: z.string().min(1).optional(),
    flags: RegexFlagsSchema,
    required: z.boolean().default(false),
  })
  .superRefine(checkRegex)
  .refine((b) => b.minLength === undefined || b.maxLength === undefined || b.minLength <= b.maxLength, {
    path: ["maxLength"],
    message: "must not be below minLength",
  });

/** The declared bounds of one argument. Arguments without bounds are not checked. */
export const ArgumentBoundSchema = z.discriminatedUnion("type", [NumberBoundSchema, StringBoundSchema]);
export type ArgumentBound = z.infer<typeof ArgumentBoundSchema>;

type Check = (value: unknown) => string | undefined;

function compileBound(bound: ArgumentBound): Check {
  if (bound.type === "number") {
    return (value) => {
      if (typeof value !== "number") return "is not a number";
      if (bound.integer && !Number.isInteger(value)) return "is not an integer";
      if (bound.min !== undefined && value < bound.min) return `is below its minimum ${bound.min}`;
      if (bound.max !== undefined && value > bound.max) return `is above its maximum ${bound.max}`;
      return undefined;
    };
  }
  const regex = bound.pattern === undefined ? undefined : compile({ pattern: bound.pattern, flags: bound.flags });
  return (value) => {
    if (typeof value !== "string") return "is not a string";
    if (bound.minLength !== undefined && value.length < bound.minLength) return `is shorter than ${bound.minLength} characters`;
    if (bound.maxLength !== undefined && value.length > bound.maxLength) return `is longer than ${bound.maxLength} characters`;
    if (regex && !regex.test(value)) return "does not match its pattern";
    return undefined;
  };
}

/** The tool and its arguments, from a tool run's start or a (classic) agent's action. */
function callOf(event: AuditEvent): { tool: string; args: Record<string, unknown>; base: string } | undefined {
  if (event.type === "tool.start" && event.name) return { tool: event.name, args: toolArgs(event.payload.input), base: "payload.input" };
  if (event.type === "agent.action") return { tool: event.payload.tool, args: toolArgs(event.payload.toolInput), base: "payload.toolInput" };
  return undefined;
}

/**
 * A tool on the deny list, or a call whose arguments leave the bounds declared for its tool.
 * Reasons name tools and arguments (the operator's own words), never the values passed.
 */
export const toolGuard = definePolicyFunction({
  name: "tool-guard",
  version: "1",
  params: z
    .strictObject({
      deny: z.array(z.string().min(1)).default([]),
      /** Per tool, per argument name. */
      bounds: z.record(z.string().min(1), z.record(z.string().min(1), ArgumentBoundSchema)).default({}),
    })
    .refine((p) => p.deny.length > 0 || Object.keys(p.bounds).length > 0, { path: ["deny"], message: "name a tool in deny or in bounds" }),
  eventTypes: ["tool.start"],
  create: ({ deny, bounds }) => {
    const denied = new Set(deny);
    const checks = new Map(
      Object.entries(bounds).map(([tool, args]) => [
        tool,
        Object.entries(args).map(([arg, bound]) => ({ arg, required: bound.required, check: compileBound(bound) })),
      ]),
    );
    return (event) => {
      const call = callOf(event);
      if (!call) return undefined;
      const field = event.type === "tool.start" ? "name" : "payload.tool";
      if (denied.has(call.tool)) return { reason: `tool "${call.tool}" is on the deny list`, fields: [field] };
      const problems: string[] = [];
      const fields: string[] = [];
      for (const { arg, required, check } of checks.get(call.tool) ?? []) {
        const value = Object.hasOwn(call.args, arg) ? call.args[arg] : undefined;
        const problem = value === undefined ? (required ? "is missing" : undefined) : check(value);
        if (problem === undefined) continue;
        problems.push(`argument "${arg}" ${problem}`);
        fields.push(`${call.base}.${arg}`);
      }
      if (problems.length === 0) return undefined;
      return { reason: `tool "${call.tool}" called out of its declared bounds: ${problems.join("; ")}`, fields, measures: { violations: problems.length } };
    };
  },
});
