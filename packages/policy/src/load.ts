import { readFile } from "node:fs/promises";
import { extname } from "node:path";
import { parse as parseYaml } from "yaml";
import { ValidationError } from "@auditgraph/core";
import type { PolicyFileInput } from "./definition.js";
import { PolicySet, type PolicySetOptions } from "./policy-set.js";

export type PolicyFileFormat = "json" | "yaml";

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
export function loadPolicySet(text: string, options: PolicySetOptions & { format: PolicyFileFormat; source?: string }): PolicySet {
  const subject = options.source ? `policy file ${options.source}` : "policy file";
  const value = parsePolicyText(text, options.format, subject);
  try {
    return PolicySet.create(value as PolicyFileInput, options);
  } catch (error) {
    if (error instanceof ValidationError) throw new ValidationError(subject, error.issues);
    throw error;
  }
}

/** A policy set from a `.json`, `.yaml` or `.yml` file. */
export async function loadPolicyFile(path: string, options: PolicySetOptions & { format?: PolicyFileFormat } = {}): Promise<PolicySet> {
  const ext = extname(path).toLowerCase();
  const format = options.format ?? (ext === ".json" ? "json" : ext === ".yaml" || ext === ".yml" ? "yaml" : undefined);
  if (!format) throw new ValidationError(`policy file ${path}`, [{ path: "", message: "unknown format: name it .json, .yaml or .yml, or pass format" }]);
  return loadPolicySet(await readFile(path, "utf8"), { ...options, format, source: path });
}
