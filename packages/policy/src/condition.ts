import { canonicalJson } from "@auditgraph/core";
import type { Condition, Predicate } from "./definition.js";
import { resolvePath } from "./paths.js";

/** The paths that made the condition hold, or undefined when it does not (`not` holds with none). */
export type Matcher = (event: unknown) => string[] | undefined;

const same = (a: unknown, b: unknown): boolean =>
  a === b || (typeof a === "object" && a !== null && typeof b === "object" && b !== null && canonicalJson(a) === canonicalJson(b));

function valueTest(predicate: Predicate): (value: unknown) => boolean {
  switch (predicate.op) {
    case "equals":
      return (value) => same(value, predicate.value);
    case "in":
      return (value) => predicate.values.some((candidate) => same(value, candidate));
    case "matches": {
      const regex = new RegExp(predicate.pattern, predicate.flags);
      return (value) => typeof value === "string" && regex.test(value);
    }
    case "gt":
      return (value) => typeof value === "number" && value > predicate.value;
    case "gte":
      return (value) => typeof value === "number" && value >= predicate.value;
    case "lt":
      return (value) => typeof value === "number" && value < predicate.value;
    case "lte":
      return (value) => typeof value === "number" && value <= predicate.value;
    case "exists":
      return (value) => value !== null;
  }
}

/** Compiles a condition once (patterns included), for every event the rule sees. */
export function compileCondition(condition: Condition): Matcher {
  if ("all" in condition) {
    const parts = condition.all.map(compileCondition);
    return (event) => {
      const paths: string[] = [];
      for (const part of parts) {
        const matched = part(event);
        if (matched === undefined) return undefined;
        paths.push(...matched);
      }
      return paths;
    };
  }
  if ("any" in condition) {
    const parts = condition.any.map(compileCondition);
    return (event) => {
      let paths: string[] | undefined;
      for (const part of parts) {
        const matched = part(event);
        if (matched !== undefined) (paths ??= []).push(...matched);
      }
      return paths;
    };
  }
  if ("not" in condition) {
    const inner = compileCondition(condition.not);
    return (event) => (inner(event) === undefined ? [] : undefined);
  }
  const segments = condition.field.split(".");
  const test = valueTest(condition);
  return (event) => {
    const paths = resolvePath(event, segments)
      .filter((located) => test(located.value))
      .map((located) => located.path);
    return paths.length > 0 ? paths : undefined;
  };
}
