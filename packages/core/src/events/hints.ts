/**
 * The vocabulary of redaction hints: where redaction may go in an event, and what "drop" leaves
 * behind where the schema needs a value. Each event family declares its payloads' hints beside
 * their schemas (`events/<family>.ts`); `schema.ts` assembles them, complete by event type. They
 * live in core, next to the schemas, so a new event type cannot ship without them; the engine that
 * walks them (and its detectors' dependencies) is `@auditgraph/redaction`.
 */

export type Shape =
  | { readonly kind: "json" } // free JSON: anything may be replaced or deleted
  | { readonly kind: "string" } // a typed string field
  | { readonly kind: "keep" } // never touched (recomputed or structural)
  | { readonly kind: "array"; readonly element: Field }
  | { readonly kind: "object"; readonly fields: Readonly<Record<string, Field>> };

/** `dropAs` undefined: the key may be deleted; otherwise the value the schema-required field keeps. */
export interface Field {
  readonly shape: Shape;
  readonly dropAs?: string | null;
}

export const JSON_SHAPE: Shape = { kind: "json" };
export const STRING: Shape = { kind: "string" };
export const KEEP: Shape = { kind: "keep" };
export const optional = (shape: Shape): Field => ({ shape });
export const required = (shape: Shape, dropAs: string | null): Field => ({ shape, dropAs });
export const object = (fields: Record<string, Field>): Shape => ({ kind: "object", fields });
// Array elements are deletable: dropping one just shortens the array.
export const array = (of: Shape): Shape => ({ kind: "array", element: { shape: of } });

/** What `drop` leaves in strings the schema requires non-empty. */
export const PLACEHOLDER = "[REDACTED]";
// Enums, counters and measurements: nothing personal, and a rule rewriting them would break the schema.
export const FIXED = required(KEEP, null);
