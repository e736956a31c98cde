/** One step of a path: an object key or an array index. */
export type PathKey = string | number;

type Segment =
  | { readonly kind: "deep" }
  | { readonly kind: "any" }
  | { readonly kind: "literal"; readonly text: string; readonly index: number }
  | { readonly kind: "glob"; readonly re: RegExp };

export interface CompiledPath {
  readonly segments: readonly Segment[];
  /** Why the path is unusable, for the config error; undefined when it is fine. */
  readonly problem: string | undefined;
}

function segmentOf(part: string): Segment {
  if (part === "**") return { kind: "deep" };
  if (part === "*") return { kind: "any" };
  if (part.includes("*")) {
    const body = part
      .split("*")
      .map((piece) => piece.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"))
      .join(".*");
    return { kind: "glob", re: new RegExp(`^${body}$`, "s") };
  }
  return { kind: "literal", text: part, index: /^(?:0|[1-9]\d*)$/.test(part) ? Number(part) : -1 };
}

/** Compile a field-rule path: dotted keys, `*` for one step, `**` for any number; no dot = a key anywhere. */
export function compileFieldPath(path: string): CompiledPath {
  const parts = path.split(".");
  if (path === "" || parts.some((part) => part === "")) {
    return { segments: [], problem: "must be dotted keys without empty parts, e.g. payload.inputs.*.ssn" };
  }
  if (parts.every((part) => part === "**")) return { segments: [], problem: "must name at least one key" };
  const segments: Segment[] = [];
  if (parts.length === 1) segments.push({ kind: "deep" });
  for (const part of parts) {
    const segment = segmentOf(part);
    // Adjacent `**` mean the same as one and would only multiply the matcher's backtracking.
    if (segment.kind === "deep" && segments.at(-1)?.kind === "deep") continue;
    segments.push(segment);
  }
  return { segments, problem: undefined };
}

function matchSegment(segment: Segment, key: PathKey): boolean {
  switch (segment.kind) {
    case "any":
    case "deep":
      return true;
    case "literal":
      return typeof key === "number" ? key === segment.index : key === segment.text;
    case "glob":
      return segment.re.test(typeof key === "number" ? String(key) : key);
  }
}

function matchFrom(segments: readonly Segment[], si: number, path: readonly PathKey[], pi: number): boolean {
  while (si < segments.length) {
    const segment = segments[si]!;
    if (segment.kind === "deep") {
      // A trailing `**` means "anything below", so it needs at least one more step.
      if (si === segments.length - 1) return pi < path.length;
      for (let k = pi; k < path.length; k++) if (matchFrom(segments, si + 1, path, k)) return true;
      return false;
    }
    if (pi >= path.length || !matchSegment(segment, path[pi]!)) return false;
    si++;
    pi++;
  }
  return pi === path.length;
}

/** Whether `path` (keys from the event root) is matched by `compiled`. */
export function matchesPath(compiled: CompiledPath, path: readonly PathKey[]): boolean {
  const { segments } = compiled;
  const last = segments[segments.length - 1];
  // Most nodes fail on their own key; checking it first keeps the walk cheap when rules exist.
  if (last === undefined || path.length === 0 || (last.kind !== "deep" && !matchSegment(last, path[path.length - 1]!))) {
    return false;
  }
  return matchFrom(segments, 0, path, 0);
}
