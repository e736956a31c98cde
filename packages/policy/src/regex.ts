import { z } from "zod";

/** `g` and `y` are refused: they make `test` stateful (lastIndex), so one match would hide the next. */
export const RegexFlagsSchema = z
  .string()
  .regex(/^[imsu]*$/, "only the flags i, m, s and u")
  .optional();

/** Refuses a pattern that does not compile, on its `pattern` field. */
export function checkRegex(value: { pattern?: string | undefined; flags?: string | undefined }, ctx: z.RefinementCtx): void {
  if (value.pattern === undefined) return;
  try {
    new RegExp(value.pattern, value.flags);
  } catch (error) {
    ctx.addIssue({ code: "custom", path: ["pattern"], message: `not a valid regular expression: ${(error as Error).message}` });
  }
}

/** A named pattern: the name, not the matched text, is what evidence reports. */
export const NamedPatternSchema = z
  .strictObject({
    id: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, "letters, digits and . _ - (it names the pattern in evidence)"),
    pattern: z.string().min(1),
    flags: RegexFlagsSchema,
  })
  .superRefine(checkRegex);
export type NamedPattern = z.infer<typeof NamedPatternSchema>;

export const compile = (spec: { pattern: string; flags?: string | undefined }): RegExp => new RegExp(spec.pattern, spec.flags);

/** Matches `term` as a whole word (where it starts or ends with a word character), ignoring case. */
export function termPattern(term: string): RegExp {
  const escaped = term.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const word = /[\p{L}\p{N}_]/u;
  const before = word.test(term[0]!) ? "(?<![\\p{L}\\p{N}_])" : "";
  const after = word.test(term.at(-1)!) ? "(?![\\p{L}\\p{N}_])" : "";
  return new RegExp(`${before}${escaped}${after}`, "iu");
}
