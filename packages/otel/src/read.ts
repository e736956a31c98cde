import { AuditgraphError } from "@auditgraph/core";
import type { AttributeValue, Attributes, OtlpSpan } from "./model.js";

/** A span refused: the message names the span and the attribute (`span 5f2a...: gen_ai.usage.input_tokens: must be ...`). */
export class SpanRejected extends AuditgraphError {
  override readonly name = "SpanRejected";
  constructor(
    readonly spanId: string,
    readonly attribute: string,
    reason: string,
  ) {
    super("AUDITGRAPH_E_OTLP_SPAN", `span ${spanId || "(no id)"}: ${attribute}: ${reason}`);
  }
}

/** JSON text parsed, or the text itself when it is not JSON (producers put plain text in JSON-ish attributes too). */
export function jsonOrText(value: AttributeValue): unknown {
  if (typeof value !== "string") return value;
  const t = value.trim();
  if (!(t.startsWith("{") || t.startsWith("[") || t.startsWith('"'))) return value;
  try {
    return JSON.parse(t);
  } catch {
    return value;
  }
}

/**
 * Typed reads of one span's attributes, each naming the attribute when its value does not fit,
 * and remembering what was read: whatever no read consumed is kept as the span's extra data.
 */
export class SpanReader {
  private readonly used = new Set<string>();
  private readonly usedPrefixes: string[] = [];

  constructor(readonly span: OtlpSpan) {}

  get attributes(): Attributes {
    return this.span.attributes;
  }

  private take(name: string): AttributeValue | undefined {
    const v = this.span.attributes[name];
    if (v !== undefined) this.used.add(name);
    return v;
  }

  fail(name: string, reason: string): never {
    throw new SpanRejected(this.span.spanId, name, reason);
  }

  /** The first of `names` present, as a string (numbers and booleans as their text). */
  str(...names: string[]): string | undefined {
    for (const name of names) {
      const v = this.take(name);
      if (v === undefined) continue;
      if (typeof v === "string") return v;
      if (typeof v === "number" || typeof v === "boolean") return String(v);
      this.fail(name, "must be a string");
    }
    return undefined;
  }

  /** The first of `names` present, as a non-negative integer (a decimal string too). */
  count(...names: string[]): number | undefined {
    for (const name of names) {
      const v = this.take(name);
      if (v === undefined) continue;
      const n = typeof v === "string" && /^\d+$/.test(v) ? Number(v) : v;
      if (typeof n !== "number" || !Number.isSafeInteger(n) || n < 0) this.fail(name, "must be a non-negative integer");
      return n;
    }
    return undefined;
  }

  /** The first of `names` present, as a finite number. */
  num(...names: string[]): number | undefined {
    for (const name of names) {
      const v = this.take(name);
      if (v === undefined) continue;
      const n = typeof v === "string" && v.trim() !== "" ? Number(v) : v;
      if (typeof n !== "number" || !Number.isFinite(n)) this.fail(name, "must be a number");
      return n;
    }
    return undefined;
  }

  /** The raw value of the first of `names` present (JSON text parsed). */
  json(...names: string[]): unknown {
    for (const name of names) {
      const v = this.take(name);
      if (v !== undefined) return jsonOrText(v);
    }
    return undefined;
  }

  /** Like `json`, but the parsed value must be an array (JSON text of one, or an array attribute). */
  list(name: string): unknown[] | undefined {
    const v = this.json(name);
    if (v === undefined) return undefined;
    if (!Array.isArray(v)) this.fail(name, "must be a JSON array");
    return v;
  }

  /** An array of strings (a string array attribute, or JSON text of one). */
  strings(name: string): string[] | undefined {
    const v = this.json(name);
    if (v === undefined) return undefined;
    if (typeof v === "string") return [v];
    if (!Array.isArray(v) || !v.every((s) => typeof s === "string")) this.fail(name, "must be an array of strings");
    return v;
  }

  /**
   * A flattened list (`<prefix>.<i>.<rest>`), as one record of `rest` keys per index, in index
   * order; every attribute under the prefix counts as read.
   */
  indexed(prefix: string): Record<string, AttributeValue>[] {
    this.usedPrefixes.push(`${prefix}.`);
    const byIndex = new Map<number, Record<string, AttributeValue>>();
    const pattern = new RegExp(`^${prefix.replace(/\./g, "\\.")}\\.(\\d+)\\.(.+)$`);
    for (const [key, value] of Object.entries(this.span.attributes)) {
      const m = pattern.exec(key);
      if (!m) continue;
      const i = Number(m[1]);
      const entry = byIndex.get(i) ?? {};
      entry[m[2]!] = value;
      byIndex.set(i, entry);
    }
    return [...byIndex.entries()].sort((a, b) => a[0] - b[0]).map(([, v]) => v);
  }

  /** Marks names as read without reading them (they were mapped elsewhere, e.g. identity from the tree). */
  consume(...names: string[]): void {
    for (const name of names) if (this.span.attributes[name] !== undefined) this.used.add(name);
  }

  /** The attributes no read consumed: kept on the span's `custom` event, values as sent. */
  unread(): Attributes {
    const out: Attributes = {};
    for (const [key, value] of Object.entries(this.span.attributes))
      if (!this.used.has(key) && !this.usedPrefixes.some((p) => key.startsWith(p))) out[key] = value;
    return out;
  }
}

/** Regroups `a.0.b`-style keys of one indexed record (`tool_calls.0.name`) into a list of records. */
export function sublist(record: Record<string, AttributeValue>, prefix: string): Record<string, AttributeValue>[] {
  const byIndex = new Map<number, Record<string, AttributeValue>>();
  for (const [key, value] of Object.entries(record)) {
    if (!key.startsWith(`${prefix}.`)) continue;
    const rest = key.slice(prefix.length + 1);
    const dot = rest.indexOf(".");
    if (dot <= 0 || !/^\d+$/.test(rest.slice(0, dot))) continue;
    const i = Number(rest.slice(0, dot));
    const entry = byIndex.get(i) ?? {};
    entry[rest.slice(dot + 1)] = value;
    byIndex.set(i, entry);
  }
  return [...byIndex.entries()].sort((a, b) => a[0] - b[0]).map(([, v]) => v);
}
