import { z } from "zod";

// The small schemas the investigations' parameters and rows share (investigations.ts and the
// families in their own files: access-investigations.ts, search-investigations.ts).

export const id = z.string().min(1);
/**
 * A time as the graph stores it (UTC, `toISOString`): times are compared as text there, so a
 * time given with another offset is brought to the same form first.
 */
export const time = z.iso.datetime({ offset: true }).transform((s) => new Date(s).toISOString());
export const limit = z.coerce.number().int().positive().max(10_000).default(100);
/**
 * Replay runs and the records of their reviews are kept apart from production: every
 * investigation leaves them out unless asked (`includeReplays: true`, or the text `true` as the
 * CLI's --param gives it; anything but a boolean or true/false is refused).
 */
export const includeReplays = z.preprocess((v) => (v === "true" ? true : v === "false" ? false : v), z.boolean()).default(false);
/** Every investigation is scoped to the tenant the caller names, and bounded. */
export const scoped = { tenantId: id, limit, includeReplays };
export const window = { since: time.nullable().default(null), until: time.nullable().default(null) };
export const count = z.number().int().nonnegative();
export const optionalText = z.string().nullable();
