import { SYSTEM_EVENT_TYPES, type EventType } from "@auditgraph/core";
import { EVENT_TYPES } from "../definition.js";

/** Every type an agent's events have: not the operator's system events, not flags. */
export const AGENT_EVENT_TYPES: readonly EventType[] = EVENT_TYPES.filter(
  (type) => type !== "policy.flag" && !(SYSTEM_EVENT_TYPES as readonly string[]).includes(type),
);

/** Evidence lists at most this many field paths: enough to point, not a copy of the event's shape. */
export const MAX_FIELDS = 20;

export const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? "" : "s"}`;
