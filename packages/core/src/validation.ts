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
