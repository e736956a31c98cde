import { forEachString } from "../paths.js";
import { SYSTEM_EVENT_TYPES, type EventType } from "@auditgraph/core";
import { EVENT_TYPES } from "../definition.js";

/** Every type an agent's events have: not the operator's system events, not flags. */
export const AGENT_EVENT_TYPES: readonly EventType[] = EVENT_TYPES.filter(
  (type) => type !== "policy.flag" && !(SYSTEM_EVENT_TYPES as readonly string[]).includes(type),
);

/** Evidence lists at most this many field paths: enough to point, not a copy of the event's shape. */
export const MAX_FIELDS = 20;

export const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? "" : "s"}`;

/**
 * Every string under `value` tested against `patterns`: how often each matched (by id), and the
 * paths of the strings that did (at most MAX_FIELDS). Never the matched text itself.
 */
export function matchStrings(
  value: unknown,
  path: string,
  patterns: readonly { id: string; regex: RegExp }[],
): { measures: Record<string, number>; fields: string[] } {
  const measures: Record<string, number> = {};
  const fields: string[] = [];
  forEachString(value, path, (text, at) => {
    let hit = false;
    for (const { id, regex } of patterns) {
      if (!regex.test(text)) continue;
      measures[id] = (measures[id] ?? 0) + 1;
      hit = true;
    }
    if (hit && fields.length < MAX_FIELDS) fields.push(at);
  });
  return { measures, fields };
}
