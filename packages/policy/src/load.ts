import { readFile } from "node:fs/promises";
import { extname } from "node:path";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { ValidationError, parseWith } from "@auditgraph/core";
import type { PolicyFileInput } from "./definition.js";
import { PolicySet, PolicySetOptionsSchema } from "./policy-set.js";

export const PolicyFileFormatSchema = z.enum(["json", "yaml"]);
export type PolicyFileFormat = z.infer<typeof PolicyFileFormatSchema>;

export const LoadPolicySetOptionsSchema = PolicySetOptionsSchema.extend({
  format: PolicyFileFormatSchema,
  /** Where the text came from, to name it in errors. */
  source: z.string().min(1).optional(),
});
export type LoadPolicySetOptions = z.input<typeof LoadPolicySetOptionsSchema>;

export const LoadPolicyFileOptionsSchema = PolicySetOptionsSchema.extend({
  /** Default: from the file's extension. */
  format: PolicyFileFormatSchema.optional(),
});
export type LoadPolicyFileOptions = z.input<typeof LoadPolicyFileOptionsSchema>;

/** The text of a policy file as a value (not yet validated); a syntax error names its line. */
export function parsePolicyText(text: string, format: PolicyFileFormat, subject = "policy file"): unknown {
  try {
    // YAML 1.2 core schema: no `yes`/`on` booleans, no custom tags; duplicate keys are errors.
    return format === "json" ? (JSON.parse(text) as unknown) : (parseYaml(text, { uniqueKeys: true, maxAliasCount: 100 }) as unknown);
  } catch (error) {
    // The first line only: yaml's pretty errors go on to quote the file.
    const message = ((error as Error).message.split("\n")[0] ?? "unreadable").replace(/:$/, "");
    throw new ValidationError(subject, [{ path: "", message: `not valid ${format.toUpperCase()}: ${message}` }]);
  }
}

/** A policy set from a policy file's text. Throws a ValidationError naming the file's offending fields. */
export function loadPolicySet(text: string, options: LoadPolicySetOptions): PolicySet {
  const { format, source, ...setOptions } = parseWith(LoadPolicySetOptionsSchema, options, "policy file options");
  const subject = source ? `policy file ${source}` : "policy file";
  const value = parsePolicyText(text, format, subject);
  try {
    return PolicySet.create(value as PolicyFileInput, setOptions);
  } catch (error) {
    if (error instanceof ValidationError) throw new ValidationError(subject, error.issues);
    throw error;
  }
}

/** A policy set from a `.json`, `.yaml` or `.yml` file. */
export async function loadPolicyFile(path: string, options: LoadPolicyFileOptions = {}): Promise<PolicySet> {
  const parsed = parseWith(LoadPolicyFileOptionsSchema, options, "policy file options");
  const ext = extname(path).toLowerCase();
  const format = parsed.format ?? (ext === ".json" ? "json" : ext === ".yaml" || ext === ".yml" ? "yaml" : undefined);
  if (!format) throw new ValidationError(`policy file ${path}`, [{ path: "", message: "unknown format: name it .json, .yaml or .yml, or pass format" }]);
  return loadPolicySet(await readFile(path, "utf8"), { ...parsed, format, source: path });
}
