import type { z } from "zod";
import { AuditgraphError } from "./errors.js";

export interface FieldIssue {
  /** Dotted path of the offending field, e.g. `identity.user.id` (empty for the value itself). */
  path: string;
  message: string;
}

/** A value that failed a schema; the message names every offending field. Code `AUDITGRAPH_E_VALIDATION`. */
export class ValidationError extends AuditgraphError {
  override readonly name = "ValidationError";
  constructor(
    readonly subject: string,
    readonly issues: FieldIssue[],
  ) {
    super("AUDITGRAPH_E_VALIDATION", `invalid ${subject}: ${issues.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message)).join("; ")}`);
  }
}

export function issuesOf(error: z.ZodError): FieldIssue[] {
  return error.issues.map((issue) => ({
    path: issue.path.map(String).join("."),
    message: issue.message,
  }));
}

/** Parse `value` with `schema`, throwing a ValidationError that names the fields when it does not fit. */
export function parseWith<S extends z.ZodType>(schema: S, value: unknown, subject: string): z.output<S> {
  const result = schema.safeParse(value);
  if (!result.success) throw new ValidationError(subject, issuesOf(result.error));
  return result.data;
}

/**
 * Deeper than this an event is refused, before zod sees it: zod and JSON.stringify recurse, and
 * a value some 2,000 levels deep overflows the stack in them, which would fail the job on every
 * retry instead of dead-lettering it. No event the handler captures comes near it.
 */
export const MAX_EVENT_DEPTH = 256;

/**
 * Where `value` first nests deeper than `max` objects or arrays (its path), walked without
 * recursion so that no depth can overflow the stack here; undefined when it does not. Every
 * event is walked, so a frame holds its depth and parent, and a path is only built for the one
 * returned.
 */
export function nestedTooDeep(value: unknown, max = MAX_EVENT_DEPTH): (string | number)[] | undefined {
  // Every event is walked and next to none is too deep: a first walk that keeps no frames says
  // whether one is (a few µs less per event, nothing allocated); only then is the path looked for.
  // (A call from inside another, through a getter or a proxy's trap, would find the shared stack
  // in use: it takes the path walk, which keeps its own.)
  if (pending.length > 0) return pathTooDeep(value, max);
  return deeperThan(value, max) ? pathTooDeep(value, max) : undefined;
}

/** The objects and arrays still to look into, and their depths: reused by every call (they are emptied before it returns). */
const pending: object[] = [];
const depths: number[] = [];

/** Whether `value` nests deeper than `max` objects or arrays, walked without recursion. */
function deeperThan(value: unknown, max: number): boolean {
  if (typeof value !== "object" || value === null) return false;
  pending.push(value);
  depths.push(0);
  try {
    while (pending.length > 0) {
      const v = pending.pop()!;
      const depth = depths.pop()!;
      if (depth >= max) return true;
      if (Array.isArray(v)) {
        for (let i = 0; i < v.length; i++) {
          const child: unknown = v[i];
          if (typeof child === "object" && child !== null) {
            pending.push(child);
            depths.push(depth + 1);
          }
        }
        continue;
      }
      for (const key in v) {
        if (!Object.hasOwn(v, key)) continue;
        const child: unknown = (v as Record<string, unknown>)[key];
        if (typeof child === "object" && child !== null) {
          pending.push(child);
          depths.push(depth + 1);
        }
      }
    }
    return false;
  } finally {
    // Emptied, so no event is held on to after its call.
    pending.length = 0;
    depths.length = 0;
  }
}

/** Where `value` first nests deeper than `max` (its path), in the order `deeperThan` looks. */
function pathTooDeep(value: unknown, max: number): (string | number)[] | undefined {
  interface Frame {
    value: object;
    depth: number;
    parent?: Frame;
    key?: string | number;
  }
  const stack: Frame[] = typeof value === "object" && value !== null ? [{ value, depth: 0 }] : [];
  while (stack.length > 0) {
    const frame = stack.pop()!;
    if (frame.depth >= max) {
      const path: (string | number)[] = [];
      for (let f: Frame | undefined = frame; f?.parent; f = f.parent) path.push(f.key!);
      return path.reverse();
    }
    const v = frame.value;
    if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) {
        const child: unknown = v[i];
        if (typeof child === "object" && child !== null) stack.push({ value: child, depth: frame.depth + 1, parent: frame, key: i });
      }
      continue;
    }
    for (const key in v) {
      if (!Object.hasOwn(v, key)) continue;
      const child: unknown = (v as Record<string, unknown>)[key];
      if (typeof child === "object" && child !== null) stack.push({ value: child, depth: frame.depth + 1, parent: frame, key });
    }
  }
  return undefined;
}
