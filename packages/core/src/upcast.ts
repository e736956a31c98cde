import { z } from "zod";
import { CostSchema, EventSchema, SCHEMA_VERSION, type AuditEvent } from "./schema.js";
import { MAX_EVENT_DEPTH, ValidationError, issuesOf, nestedTooDeep } from "./validation.js";

/**
 * All that upcasting needs to know of an event of any version: it is an object with a version.
 * Its other members pass through untouched, including ones the current schema does not know.
 */
const VersionedSchema = z.looseObject({ schemaVersion: z.int().positive() });
type Versioned = z.infer<typeof VersionedSchema>;

/** Like zod's `safeParse` result, so a caller handles it the same way (`issuesOf(result.error)`). */
export type EventParseResult<T = AuditEvent> = { success: true; data: T } | { success: false; error: z.ZodError };

/**
 * One step from version n to n + 1. It returns a new object (never mutates its input: the ledger
 * keeps the event as received), and refuses an event it cannot read with the offending field
 * named as its producer sent it, not where the step would have moved it.
 */
type Upcaster = (event: Versioned) => EventParseResult<Versioned>;

/**
 * Version 1, kept only as far as the step to 2 reads it: any object with schemaVersion 1, whose
 * `llm.end` carried its cost in the payload. The rest of version 1 is unchanged in version 2 and
 * is checked by the current schema. The cost itself is shaped alike in both; should CostSchema
 * change, version 1's shape is to be frozen here, not followed.
 */
const V1LlmEndSchema = z.looseObject({ payload: z.looseObject({ cost: CostSchema.optional() }) });

const v1ToV2: Upcaster = (event) => {
  if (event.type !== "llm.end") return { success: true, data: { ...event, schemaVersion: 2 } };
  const v1 = V1LlmEndSchema.safeParse(event);
  if (!v1.success) return { success: false, error: v1.error };
  // The received values are moved, not zod's copies of them: members the schema does not know stay.
  const { cost, ...payload } = event.payload as Record<string, unknown>;
  return { success: true, data: { ...event, schemaVersion: 2, payload, ...(cost === undefined ? {} : { cost }) } };
};

/** Keyed by the version a step starts from; an event is taken through each in turn up to SCHEMA_VERSION. */
const UPCASTERS: Readonly<Record<number, Upcaster>> = { 1: v1ToV2 };

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
    const step = UPCASTERS[version];
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
      error: new z.ZodError([{ code: "custom", path: deep.slice(0, 3), message: `nested deeper than ${MAX_EVENT_DEPTH} levels (from here); refused before validation`, input: undefined }]),
    };
  // Without a readable version there is nothing to upcast: the current schema names every bad
  // field, schemaVersion among them.
  if (!VersionedSchema.safeParse(input).success) return EventSchema.safeParse(input);
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
  const versioned = VersionedSchema.safeParse(stored);
  if (!versioned.success) throw new ValidationError("stored event", issuesOf(versioned.error));
  const current = upcast(stored as Versioned);
  if (!current.success) throw new ValidationError("stored event", issuesOf(current.error));
  return current.data as AuditEvent;
}
