import type { z } from "zod";

export interface FieldIssue {
  /** Dotted path of the offending field, e.g. `identity.user.id` (empty for the value itself). */
  path: string;
  message: string;
}

/** A value that failed a schema; the message names every offending field. */
export class ValidationError extends Error {
  override readonly name = "ValidationError";
  constructor(
    readonly subject: string,
    readonly issues: FieldIssue[],
  ) {
    super(`invalid ${subject}: ${issues.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message)).join("; ")}`);
  }
}

export function issuesOf(error: z.ZodError): FieldIssue[] {
  return error.issues.map((issue) => ({
    path: issue.path.map(String).join("."),
    message: issue.message,
  }));
}

/** Parse `value` with `schema`, throwing a ValidationError that names the fields when it does not fit. */
export function parseWith<S extends z.ZodType>(schema: S, value: unknown, subject: string): z.output<S> {
  const result = schema.safeParse(value);
  if (!result.success) throw new ValidationError(subject, issuesOf(result.error));
  return result.data;
}

/**
 * Deeper than this an event is refused, before zod sees it: zod and JSON.stringify recurse, and
 * a value some 2,000 levels deep overflows the stack in them, which would fail the job on every
 * retry instead of dead-lettering it. No event the handler captures comes near it.
 */
export const MAX_EVENT_DEPTH = 256;

/**
 * Where `value` first nests deeper than `max` objects or arrays (its path), walked without
 * recursion so that no depth can overflow the stack here; undefined when it does not.
 */
export function nestedTooDeep(value: unknown, max = MAX_EVENT_DEPTH): (string | number)[] | undefined {
  const stack: { value: unknown; path: (string | number)[] }[] = [{ value, path: [] }];
  while (stack.length > 0) {
    const { value: v, path } = stack.pop()!;
    if (typeof v !== "object" || v === null) continue;
    if (path.length >= max) return path;
    const array = Array.isArray(v);
    for (const [key, child] of Object.entries(v)) if (typeof child === "object" && child !== null) stack.push({ value: child, path: [...path, array ? Number(key) : key] });
  }
  return undefined;
}
