import { createHmac, randomBytes } from "node:crypto";
import type { CountryCode } from "libphonenumber-js/max";
import {
  AuditgraphError,
  ENVELOPE_REDACTION,
  MAX_DIGESTS_PER_KIND,
  PAYLOAD_REDACTION,
  REDACTION_JSON_SHAPE as JSON_SHAPE,
  canonicalJson,
  parseWith,
  redactionObject as object,
  redactionRequired as required,
  type AuditEvent,
  type RedactionField as Field,
  type RedactionShape as Shape,
} from "@auditgraph/core";
import { RedactionConfigSchema, detectorEnabled, type DetectorFunction, type RedactionConfig, type ResolvedRedactionConfig } from "./config.js";
import { builtinDetectors, scan, type Detector, type ScanStats, type SpanSink } from "./detectors.js";
import { actionFor, FULL_MASK, holdsCredential, maskKeepingLast4, setKey, type Action } from "./actions.js";
import { compileFieldPath, matchesPath, type CompiledPath, type PathKey } from "./paths.js";

/** Counts of what was replaced, by detector kind (never the values). */
export type RedactionCounts = Record<string, number>;
/** Keyed digests of the distinct values replaced, by detector kind (see `Redactor.redactEvent`). */
export type RedactionDigests = Record<string, string[]>;

// --- where redaction may go in an event: the families' hints (core's events/<family>.ts), by type

// Keys an object shape does not list (extra keys, record entries) are free JSON and deletable.
const EXTRA_KEY: Field = { shape: JSON_SHAPE };
const PAYLOAD_FIELDS = new Map<string, Field>(Object.entries(PAYLOAD_REDACTION).map(([type, shape]) => [type, required(shape, null)]));
// An event whose type is not in the schema (unvalidated input) is still walked, as free JSON.
const GENERIC_PAYLOAD = required(object({}), null);
/** Event types with a typed payload shape: every type of the schema (see `PAYLOAD_REDACTION`). */
export const SHAPED_EVENT_TYPES: readonly string[] = [...PAYLOAD_FIELDS.keys()];
const { name: NAME_FIELD, tags: TAGS_FIELD, modelParams: PARAMS_FIELD } = ENVELOPE_REDACTION;

// --- compiled rules

interface CompiledFieldRule extends Action {
  readonly path: CompiledPath;
}

interface ActiveDetector extends Action {
  readonly detector: Detector;
}

interface Span {
  start: number;
  end: number;
  owner: number;
  normalized: string | undefined;
}

interface WalkState {
  counts: RedactionCounts | undefined;
  digests: Map<string, Set<string>> | undefined;
  readonly path: PathKey[];
  depth: number;
}

const DROP = Symbol("drop");
const MAX_DEPTH = 512;
/**
 * Replaces personal data and secrets in events before they leave the agent process.
 *
 * Scope: every string in `payload`, `name`, `tags` and `model.params`. Ids, identity, type, times,
 * `usage` and `cost` are never touched, nor are object keys. Results share unchanged sub-objects with the
 * input; the input is never mutated.
 */
export class Redactor {
  private readonly detectors: ActiveDetector[] = [];
  private readonly customs: Array<{ action: Action; regex?: RegExp; fn?: DetectorFunction }> = [];
  private readonly fieldRules: CompiledFieldRule[];
  private readonly secretKeys: Action | undefined;
  private readonly hashKey: string | undefined;
  // Keys the digests that tell repeated values apart (policies flag each distinct value once per
  // trace). The hash operator's key when set, so digests equal its tokens; else a random key that
  // never leaves this process, so a digest cannot be checked against guessed values elsewhere.
  private readonly digestKey: string | Buffer;
  private readonly stats: ScanStats = { length: 0, digits: 0, at: 0, colons: 0, dots: 0, equals: 0 };
  // Reused for every string: most strings have no findings and should cost no allocation.
  private readonly spans: Span[] = [];
  private owner = 0;
  private readonly sink: SpanSink = {
    add: (start, end, normalized) => {
      if (end > start) this.spans.push({ start, end, owner: this.owner, normalized });
    },
    overlaps: (start, end) => this.spans.some((span) => span.start < end && start < span.end),
  };

  constructor(config: RedactionConfig = {}) {
    // Not kept whole on the instance: it holds the HMAC key, and instances get logged.
    const resolved: ResolvedRedactionConfig = parseWith(RedactionConfigSchema, config, "redaction config");
    const { defaultOperator, detectors } = resolved;
    this.hashKey = resolved.hashKey;
    this.digestKey = resolved.hashKey ?? randomBytes(32);
    const builtins = builtinDetectors({ phoneDefaultCountry: (detectors.phone?.defaultCountry ?? "US") as CountryCode });
    // builtinDetectors' key order is the priority order.
    for (const [kind, detector] of Object.entries(builtins)) {
      const builtin = kind as keyof typeof detectors;
      if (!detectorEnabled(builtin, resolved)) continue;
      const settings = detectors[builtin];
      this.detectors.push({ ...actionFor(kind, settings?.operator ?? defaultOperator, detector.keepLast4), detector });
    }
    for (const custom of resolved.custom) {
      const action = actionFor(custom.name, custom.operator ?? defaultOperator, false);
      // Own copy of the RegExp: its lastIndex is state, and the caller's object may be used elsewhere.
      if (custom.pattern instanceof RegExp) this.customs.push({ action, regex: new RegExp(custom.pattern.source, custom.pattern.flags) });
      else this.customs.push({ action, fn: custom.pattern });
    }
    this.fieldRules = resolved.fields.map((rule) => ({ ...actionFor(rule.kind, rule.operator, false), path: compileFieldPath(rule.path) }));
    const secret = this.detectors.find((d) => d.kind === "secret");
    this.secretKeys = secret && actionFor("secret", secret.operator, false);
  }

  /**
   * A new event with `payload`, `name`, `tags` and `model.params` redacted, `redactions` counted
   * and `redactionDigests` listing each distinct replaced value's keyed digest.
   */
  redactEvent(event: AuditEvent): AuditEvent {
    const state: WalkState = { counts: undefined, digests: undefined, path: [], depth: 0 };
    const out: Record<string, unknown> = { ...event };

    // DROP at the top level only comes from a malformed value hit by a rule: empty it rather than keep it.
    const payload = this.visitKey(event.payload, "payload", PAYLOAD_FIELDS.get(event.type) ?? GENERIC_PAYLOAD, state, undefined);
    out.payload = payload === DROP ? null : payload;
    if (event.name !== undefined) {
      const name = this.visitKey(event.name, "name", NAME_FIELD, state, undefined);
      if (name === DROP) delete out.name;
      else out.name = name;
    }
    if (event.tags !== undefined) {
      const tags = this.visitKey(event.tags, "tags", TAGS_FIELD, state, undefined);
      if (tags === DROP) delete out.tags;
      else out.tags = tags;
    }
    if ("model" in event && event.model !== undefined) {
      state.path.push("model");
      const params = this.visitKey(event.model.params, "params", PARAMS_FIELD, state, undefined);
      state.path.pop();
      if (params !== event.model.params) out.model = { ...event.model, params: params === DROP ? {} : params };
    }

    if (state.counts !== undefined) {
      const merged: RedactionCounts = { ...event.redactions };
      for (const [kind, count] of Object.entries(state.counts)) merged[kind] = (merged[kind] ?? 0) + count;
      out.redactions = merged;
    }
    if (state.digests !== undefined) {
      const merged: RedactionDigests = { ...event.redactionDigests };
      for (const [kind, digests] of state.digests) {
        merged[kind] = [...new Set([...(merged[kind] ?? []), ...digests])].slice(0, MAX_DIGESTS_PER_KIND);
      }
      out.redactionDigests = merged;
    }
    return out as AuditEvent;
  }

  /**
   * Redact any JSON value (field-rule paths are taken from its root). Strings are scanned; objects
   * and arrays are walked; other values are returned as they are.
   */
  redactValue(value: unknown): { value: unknown; counts: RedactionCounts } {
    const state: WalkState = { counts: undefined, digests: undefined, path: [], depth: 0 };
    const result = this.visit(value, JSON_SHAPE, state, undefined);
    return { value: result === DROP ? undefined : result, counts: state.counts ?? {} };
  }

  /** Redact one string with the detectors (not field rules). */
  redactText(text: string): { text: string; counts: RedactionCounts } {
    const state: WalkState = { counts: undefined, digests: undefined, path: [], depth: 0 };
    return { text: this.redactString(text, state), counts: state.counts ?? {} };
  }

  // --- walking

  private count(state: WalkState, kind: string, value: string): void {
    const counts = (state.counts ??= {});
    counts[kind] = (counts[kind] ?? 0) + 1;
    const digests = (state.digests ??= new Map());
    let set = digests.get(kind);
    if (set === undefined) digests.set(kind, (set = new Set()));
    if (set.size < MAX_DIGESTS_PER_KIND) set.add(createHmac("sha256", this.digestKey).update(value).digest("hex").slice(0, 16));
  }

  /** Visit the value under `key`: field rules and credential keys first, then the value's own shape. */
  private visitKey(value: unknown, key: PathKey, field: Field, state: WalkState, forced: Action | undefined): unknown {
    const rules = this.fieldRules.length > 0;
    if (rules) state.path.push(key);
    try {
      let rule = forced;
      if (rule === undefined && rules) {
        for (const candidate of this.fieldRules) {
          if (matchesPath(candidate.path, state.path)) {
            rule = candidate;
            break;
          }
        }
      }
      if (rule !== undefined) {
        const kind = field.shape.kind;
        // Structured parts of the event keep their shape: the rule reaches each value inside them.
        if (kind === "object" || kind === "array") return this.visit(value, field.shape, state, rule);
        if (kind === "keep") return value;
        return this.applyWhole(value, rule, state);
      }
      if (this.secretKeys !== undefined && field === EXTRA_KEY && typeof key === "string" && holdsCredential(key, value)) {
        return this.applyWhole(value, this.secretKeys, state);
      }
      return this.visit(value, field.shape, state, undefined);
    } finally {
      if (rules) state.path.pop();
    }
  }

  private visit(value: unknown, shape: Shape, state: WalkState, forced: Action | undefined): unknown {
    if (typeof value === "string") {
      if (shape.kind === "keep") return value;
      return forced !== undefined ? this.applyWhole(value, forced, state) : this.redactString(value, state);
    }
    if (typeof value !== "object" || value === null || shape.kind === "keep") {
      return forced !== undefined && shape.kind !== "keep" ? this.applyWhole(value, forced, state) : value;
    }
    if (++state.depth > MAX_DEPTH) throw new AuditgraphError("AUDITGRAPH_E_REDACTION_TOO_DEEP", `value nested deeper than ${MAX_DEPTH} levels (or cyclic)`);
    try {
      if (Array.isArray(value)) {
        const element = shape.kind === "array" ? shape.element : EXTRA_KEY;
        let out: unknown[] | undefined;
        for (let i = 0; i < value.length; i++) {
          const item: unknown = value[i];
          const next = this.visitKey(item, i, element, state, forced);
          if (next === item && out === undefined) continue;
          out ??= value.slice(0, i);
          if (next !== DROP) out.push(next);
        }
        return out ?? value;
      }
      const fields = shape.kind === "object" ? shape.fields : undefined;
      const source = value as Record<string, unknown>;
      let out: Record<string, unknown> | undefined;
      const keys = Object.keys(source);
      for (let i = 0; i < keys.length; i++) {
        const key = keys[i]!;
        const item = source[key];
        const field = (fields !== undefined && Object.hasOwn(fields, key) ? fields[key] : undefined) ?? EXTRA_KEY;
        const next = this.visitKey(item, key, field, state, forced);
        if (next === item && out === undefined) continue;
        if (out === undefined) {
          out = {};
          for (let j = 0; j < i; j++) setKey(out, keys[j]!, source[keys[j]!]);
        }
        if (next !== DROP) setKey(out, key, next);
        else if (field.dropAs !== undefined) setKey(out, key, field.dropAs);
      }
      return out ?? value;
    } finally {
      state.depth--;
    }
  }

  /** Replace a whole field value (field rules, credential keys). */
  private applyWhole(value: unknown, action: Action, state: WalkState): unknown {
    this.count(state, action.kind, typeof value === "string" ? value : canonicalJson(value ?? null));
    switch (action.operator) {
      case "drop":
        return DROP;
      case "token":
        return action.token;
      case "mask":
        return typeof value === "string" && action.keepLast4 ? maskKeepingLast4(value) : FULL_MASK;
      case "hash":
        return this.hashToken(action, typeof value === "string" ? value : canonicalJson(value ?? null));
    }
  }

  private hashToken(action: Action, value: string): string {
    // The config schema refuses `hash` without a key, so this only fires on a bypassed schema.
    if (this.hashKey === undefined)
      throw new AuditgraphError("AUDITGRAPH_E_REDACTION_NO_HASH_KEY", `redaction: ${action.kind} uses the hash operator but hashKey is not set`);
    const digest = createHmac("sha256", this.hashKey).update(value).digest("hex").slice(0, 16);
    return `[${action.kind.toUpperCase()}:hmac:${digest}]`;
  }

  // --- strings

  private redactString(text: string, state: WalkState): string {
    const spans = this.spans;
    spans.length = 0;
    if (text.length >= 3) {
      scan(text, this.stats);
      for (let i = 0; i < this.detectors.length; i++) {
        const active = this.detectors[i]!;
        if (!active.detector.mayMatch(this.stats)) continue;
        this.owner = i;
        active.detector.find(text, this.sink);
      }
    }
    for (let i = 0; i < this.customs.length; i++) this.runCustom(i, text);
    if (spans.length === 0) return text;
    return this.replaceSpans(text, spans, state);
  }

  private runCustom(index: number, text: string): void {
    const custom = this.customs[index]!;
    this.owner = this.detectors.length + index;
    if (custom.regex !== undefined) {
      const re = custom.regex;
      re.lastIndex = 0;
      for (let m = re.exec(text); m !== null; m = re.exec(text)) {
        // An empty match would never advance lastIndex.
        if (m[0].length === 0) re.lastIndex++;
        else this.sink.add(m.index, m.index + m[0].length);
      }
      return;
    }
    for (const span of custom.fn!(text)) {
      const { start, end } = span;
      // Fail closed: a span we cannot trust would otherwise let the value through unredacted.
      if (!Number.isInteger(start) || !Number.isInteger(end) || start < 0 || end > text.length || start > end) {
        throw new AuditgraphError(
          "AUDITGRAPH_E_REDACTION_BAD_SPAN",
          `redaction: custom detector "${custom.action.kind}" returned span ${JSON.stringify(span)} for a string of length ${text.length}`,
        );
      }
      this.sink.add(start, end);
    }
  }

  private actionOf(owner: number): Action {
    return owner < this.detectors.length ? this.detectors[owner]! : this.customs[owner - this.detectors.length]!.action;
  }

  private replaceSpans(text: string, spans: Span[], state: WalkState): string {
    if (spans.length > 1) spans.sort((a, b) => a.start - b.start || a.owner - b.owner || b.end - a.end);
    let out = "";
    let pos = 0;
    for (let i = 0; i < spans.length; i++) {
      const span = spans[i]!;
      let end = span.end;
      let normalized = span.normalized;
      // Overlapping findings merge into one replacement so no part of either survives.
      while (i + 1 < spans.length && spans[i + 1]!.start < end) {
        const next = spans[++i]!;
        if (next.end > end) {
          end = next.end;
          normalized = undefined;
        }
      }
      const action = this.actionOf(span.owner);
      this.count(state, action.kind, normalized ?? text.slice(span.start, end));
      out += text.slice(pos, span.start);
      switch (action.operator) {
        case "drop":
          break;
        case "token":
          out += action.token;
          break;
        case "mask":
          out += action.keepLast4 ? maskKeepingLast4(text.slice(span.start, end)) : FULL_MASK;
          break;
        case "hash":
          out += this.hashToken(action, normalized ?? text.slice(span.start, end));
          break;
      }
      pos = end;
    }
    spans.length = 0;
    return out + text.slice(pos);
  }
}
