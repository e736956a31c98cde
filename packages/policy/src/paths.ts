import { z } from "zod";

/**
 * A dotted path into an event: `payload.output.text`, `identity.user.tenantId`. A `*` segment
 * stands for every element of an array (or every value of an object), a number for one element.
 * Keys holding a dot cannot be named; no event field has one.
 */
export const FieldPathSchema = z
  .string()
  .min(1)
  .refine((path) => path.split(".").every((segment) => segment.length > 0), "must be dot-separated names (`*` for every element)");

export interface Located {
  /** The concrete path (wildcards resolved), for evidence. */
  path: string;
  value: unknown;
}

// Tool inputs reach the handler as JSON text (LangChain stringifies the arguments); a path reads
// on into them, so `payload.input.amount` means what a rule author expects.
const MAX_JSON_TEXT = 1 << 20;

function openJsonText(value: unknown): unknown {
  if (typeof value !== "string" || value.length > MAX_JSON_TEXT) return value;
  const first = value.trimStart()[0];
  if (first !== "{" && first !== "[") return value;
  try {
    return JSON.parse(value) as unknown;
  } catch {
    return value;
  }
}

const join = (base: string, key: string | number): string => (base ? `${base}.${key}` : String(key));

/** Every value at `segments` under `root`, with its concrete path; missing branches yield nothing. */
export function resolvePath(root: unknown, segments: readonly string[]): Located[] {
  const out: Located[] = [];
  const walk = (value: unknown, index: number, path: string): void => {
    if (index === segments.length) {
      if (value !== undefined) out.push({ path, value });
      return;
    }
    const segment = segments[index]!;
    const current = openJsonText(value);
    if (Array.isArray(current)) {
      if (segment === "*") {
        for (const [i, item] of (current as unknown[]).entries()) walk(item, index + 1, join(path, i));
      } else if (/^\d+$/.test(segment) && Number(segment) < current.length) walk(current[Number(segment)], index + 1, join(path, segment));
      return;
    }
    if (typeof current !== "object" || current === null) return;
    const record = current as Record<string, unknown>;
    if (segment === "*") for (const key of Object.keys(record)) walk(record[key], index + 1, join(path, key));
    else if (Object.hasOwn(record, segment)) walk(record[segment], index + 1, join(path, segment));
  };
  walk(root, 0, "");
  return out;
}

const MAX_DEPTH = 256;

/** Calls `visit` with every string under `value` (object keys excepted) and its path. */
export function forEachString(value: unknown, path: string, visit: (text: string, path: string) => void, depth = 0): void {
  if (typeof value === "string") {
    visit(value, path);
    return;
  }
  // Events are parsed JSON, so no cycles; the bound only keeps a hostile nesting off the stack.
  if (typeof value !== "object" || value === null || depth >= MAX_DEPTH) return;
  if (Array.isArray(value)) {
    for (const [i, item] of (value as unknown[]).entries()) forEachString(item, join(path, i), visit, depth + 1);
    return;
  }
  for (const [key, item] of Object.entries(value)) forEachString(item, join(path, key), visit, depth + 1);
}

/** Tool arguments as an object: JSON text is parsed; a plain string input is `{ input }`, as LangChain's string tools take it. */
export function toolArgs(input: unknown): Record<string, unknown> {
  const value = openJsonText(input);
  if (typeof value === "object" && value !== null && !Array.isArray(value)) return value as Record<string, unknown>;
  return { input: value };
}
