import { z } from "zod";
import { VersionedSchema, isVersioned, type ParseResult, type Upcaster, type Versioned } from "./events/common.js";
import { RUN_UPCASTERS } from "./events/runs.js";
import { EventSchema, SCHEMA_VERSION, type AuditEvent, type EventType } from "./schema.js";
import { MAX_EVENT_DEPTH, ValidationError, issuesOf, nestedTooDeep } from "./validation.js";

/** Like zod's `safeParse` result, so a caller handles it the same way (`issuesOf(result.error)`). */
export type EventParseResult<T = AuditEvent> = ParseResult<T>;

/**
 * Each step from version n to n + 1, keyed by the version it starts from: what it changes in
 * each event type, from the families' upcasters (`events/<family>.ts`). A type a step does not
 * name only has its version raised. An event is taken through each in turn up to SCHEMA_VERSION.
 */
const UPCASTERS: Readonly<Record<number, Partial<Record<EventType, Upcaster>>>> = {
  1: { ...RUN_UPCASTERS[1] },
};

/** One step from `version` to the next, or undefined when this release has none from it. */
function stepFrom(version: number): ((event: Versioned) => ParseResult<Versioned>) | undefined {
  const byType = UPCASTERS[version];
  if (!byType) return undefined;
  return (event) => {
    // Own members only: `type` is unchecked input here, and may well be "toString".
    const type = event.type;
    const step = typeof type === "string" && Object.hasOwn(byType, type) ? byType[type as EventType] : undefined;
    const moved = step ? step(event) : { success: true as const, data: event };
    return moved.success ? { success: true, data: { ...moved.data, schemaVersion: version + 1 } } : moved;
  };
}

const versionError = (version: number, message: string): EventParseResult<never> => ({
  success: false,
  error: new z.ZodError([{ code: "custom", path: ["schemaVersion"], message, input: version }]),
});

function upcast(event: Versioned): EventParseResult<Versioned> {
  const from = event.schemaVersion;
  if (from > SCHEMA_VERSION)
    // Refused, not guessed at: a newer producer may have moved what this release would read.
    return versionError(from, `version ${from} is newer than this release of auditgraph knows (${SCHEMA_VERSION}): upgrade the worker before the agents`);
  let current = event;
  for (let version = from; version < SCHEMA_VERSION; version++) {
    const step = stepFrom(version);
    if (!step) return versionError(from, `version ${from} cannot be read: there is no upcaster from version ${version}`);
    const next = step(current);
    if (!next.success) return next;
    current = next.data;
  }
  return { success: true, data: current };
}

/**
 * Validate an event of any known version: upcast to the current one, then check it with
 * EventSchema. An older producer's event is accepted exactly when its upcast is valid, so a bad
 * one gets the same field-named error as a current one would.
 */
export function parseEvent(input: unknown): EventParseResult {
  const deep = nestedTooDeep(input);
  if (deep)
    // The field it starts under is named; the full path would be hundreds of segments long.
    return {
      success: false,
      error: new z.ZodError([
        {
          code: "custom",
          path: deep.slice(0, 3),
          message: `nested deeper than ${MAX_EVENT_DEPTH} levels (from here); refused before validation`,
          input: undefined,
        },
      ]),
    };
  // Without a readable version there is nothing to upcast: the current schema names every bad
  // field, schemaVersion among them.
  if (!isVersioned(input)) return EventSchema.safeParse(input);
  const current = upcast(input as Versioned);
  return current.success ? EventSchema.safeParse(current.data) : current;
}

/**
 * A stored event (the ledger keeps each as received, in its producer's version) in the current
 * version, for readers. It is upcast but not validated again: it passed `parseEvent` before it
 * was appended. Members the schema does not know are kept, as in the ledger. Throws a
 * ValidationError naming schemaVersion when the version is missing or unknown to this release.
 */
export function upcastEvent(stored: unknown): AuditEvent {
  if (!isVersioned(stored)) {
    const versioned = VersionedSchema.safeParse(stored);
    // isVersioned is this schema's check: it fails here too, and names the field.
    if (!versioned.success) throw new ValidationError("stored event", issuesOf(versioned.error));
  }
  const current = upcast(stored as Versioned);
  if (!current.success) throw new ValidationError("stored event", issuesOf(current.error));
  return current.data as AuditEvent;
}
