import { z } from "zod";
import { definePolicyFunction } from "../function.js";
import { RegexFlagsSchema, checkRegex, compile } from "../regex.js";

/**
 * A model not on the allow-list. `llm.start` is checked by the requested model (so an inline
 * `block` stops the call), `llm.end` by the served one (its `version`: a provider may serve
 * another build than the name asked for). A model is allowed when its name, or
 * `provider/name`, is in `models` or matches one of `patterns`.
 */
export const modelAllowList = definePolicyFunction({
  name: "model-allow-list",
  version: "1",
  params: z
    .strictObject({
      models: z.array(z.string().min(1)).default([]),
      patterns: z.array(z.strictObject({ pattern: z.string().min(1), flags: RegexFlagsSchema }).superRefine(checkRegex)).default([]),
    })
    .refine((p) => p.models.length + p.patterns.length > 0, { path: ["models"], message: "list models, patterns or both" }),
  eventTypes: ["llm.start", "llm.end"],
  create: ({ models, patterns }) => {
    const exact = new Set(models);
    // Anchored: a pattern names whole model names, so "gpt-4o" must not allow "gpt-4o-evil".
    const regexes = patterns.map((p) => compile({ pattern: `^(?:${p.pattern})$`, flags: p.flags }));
    const allowed = (name: string) => exact.has(name) || regexes.some((r) => r.test(name));
    return (event) => {
      if (event.type !== "llm.start" && event.type !== "llm.end") return undefined;
      const served = event.type === "llm.end" && event.model.version !== undefined;
      const name = served ? event.model.version! : event.model.name;
      if (allowed(name) || allowed(`${event.model.provider}/${name}`)) return undefined;
      return {
        reason: `${served ? "served" : "requested"} model "${event.model.provider}/${name}" is not on the allow-list`,
        kind: event.type === "llm.start" ? "prompt" : "output",
        fields: [served ? "model.version" : "model.name"],
        measures: {},
      };
    };
  },
});
