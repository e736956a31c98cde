import { z } from "zod";
import type { AuditEvent } from "@auditgraph/core";
import { definePolicyFunction } from "../function.js";
import { NamedPatternSchema, compile, termPattern } from "../regex.js";
import { matchStrings, plural } from "./common.js";

/** Where an event's output text is (other types: the whole payload). */
function outputOf(event: AuditEvent): { value: unknown; path: string } {
  switch (event.type) {
    case "llm.end":
      return { value: event.payload.output.text, path: "payload.output.text" };
    case "llm.token":
      return { value: event.payload.token, path: "payload.token" };
    case "tool.end":
      return { value: event.payload.output, path: "payload.output" };
    case "chain.end":
      return { value: event.payload.outputs, path: "payload.outputs" };
    case "agent.finish":
      return { value: event.payload.returnValues, path: "payload.returnValues" };
    default:
      return { value: event.payload, path: "payload" };
  }
}

/**
 * Output containing a blocked term (a whole word, any case) or matching a blocked pattern.
 * Evidence names the term by its position in `terms` and the pattern by its id: a blocked term
 * may itself be confidential (a project's code name), so not even it is repeated.
 */
export const blockedOutput = definePolicyFunction({
  name: "blocked-output",
  version: "1",
  params: z
    .strictObject({
      terms: z.array(z.string().min(1)).default([]),
      patterns: z.array(NamedPatternSchema).default([]),
    })
    .refine((p) => p.terms.length + p.patterns.length > 0, { path: ["terms"], message: "list terms, patterns or both" }),
  eventTypes: ["llm.end"],
  create: ({ terms, patterns }) => {
    const compiled = [
      ...terms.map((term, i) => ({ id: `term:${i}`, regex: termPattern(term) })),
      ...patterns.map((p) => ({ id: `pattern:${p.id}`, regex: compile(p) })),
    ];
    return (event) => {
      const output = outputOf(event);
      const { measures, fields } = matchStrings(output.value, output.path, compiled);
      if (fields.length === 0) return undefined;
      return { reason: `output matches ${plural(Object.keys(measures).length, "blocked term or pattern")}`, kind: "output", fields, measures };
    };
  },
});
