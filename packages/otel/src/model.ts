// The spans of one OTLP request as the mapping reads them, whichever encoding (protobuf or JSON)
// they came in: ids in lowercase hex, times in nanoseconds since the epoch (bigint: they exceed
// 2^53), attribute values typed as OTLP's AnyValue carries them.

/**
 * An attribute value: string, boolean, number (an int64 beyond 2^53 stays a decimal string, a
 * double stays a number), bytes as base64 `{ bytes }`, an array, or a key/value list as an object.
 */
export type AttributeValue = string | boolean | number | { readonly bytes: string } | AttributeValue[] | { [key: string]: AttributeValue };
export type Attributes = Record<string, AttributeValue>;

export const SPAN_STATUS = { unset: 0, ok: 1, error: 2 } as const;

export interface SpanEvent {
  name: string;
  timeNs: bigint;
  attributes: Attributes;
}

export interface OtlpSpan {
  traceId: string;
  spanId: string;
  /** Undefined for a root span. */
  parentSpanId: string | undefined;
  name: string;
  /** OTLP's SpanKind (0 unspecified ... 5 consumer). */
  kind: number;
  startNs: bigint;
  endNs: bigint;
  attributes: Attributes;
  events: SpanEvent[];
  status: { code: number; message: string };
  resource: Attributes;
  scope: { name: string; version: string };
}

/** Hex of an id's bytes, or undefined for an absent (empty or all-zero) one. */
export function hexId(bytes: Uint8Array | undefined): string | undefined {
  if (!bytes || bytes.length === 0) return undefined;
  const hex = Buffer.from(bytes).toString("hex");
  return /^0+$/.test(hex) ? undefined : hex;
}

/** An int64 as OTLP hands it (a protobufjs Long as a string, or a JSON number or string) as a number, or a decimal string past 2^53. */
export function int64Value(value: string | number | bigint): number | string {
  const big = BigInt(value);
  return big <= BigInt(Number.MAX_SAFE_INTEGER) && big >= BigInt(Number.MIN_SAFE_INTEGER) ? Number(big) : big.toString();
}

/** Nanoseconds, epoch, as a millisecond ISO timestamp (what events carry). */
export function isoOf(ns: bigint): string {
  return new Date(Number(ns / 1_000_000n)).toISOString();
}

// What the two encodings share once decoded (protobufjs's objects, or the zod-checked JSON): the
// same message tree, but ids as bytes or hex, and bytes values as bytes or base64.
interface WireValue {
  stringValue?: string;
  boolValue?: boolean;
  intValue?: string | number;
  doubleValue?: number | string;
  arrayValue?: { values?: WireValue[] };
  kvlistValue?: { values?: WireKeyValue[] };
  bytesValue?: string | Uint8Array;
}
interface WireKeyValue {
  key?: string;
  value?: WireValue;
}
type WireTime = string | number;
interface WireSpan<Id> {
  traceId?: Id;
  spanId?: Id;
  parentSpanId?: Id;
  name?: string;
  kind?: number;
  startTimeUnixNano?: WireTime;
  endTimeUnixNano?: WireTime;
  attributes?: WireKeyValue[];
  events?: { timeUnixNano?: WireTime; name?: string; attributes?: WireKeyValue[] }[];
  status?: { message?: string; code?: number };
}
/** An `ExportTraceServiceRequest` as either decoder hands it over. */
export interface WireRequest<Id> {
  resourceSpans?: {
    resource?: { attributes?: WireKeyValue[] };
    scopeSpans?: { scope?: { name?: string; version?: string }; spans?: WireSpan<Id>[] }[];
  }[];
}

function anyValueOf(v: WireValue | undefined): AttributeValue {
  if (!v) return "";
  if (v.stringValue !== undefined) return v.stringValue;
  if (v.boolValue !== undefined) return v.boolValue;
  if (v.intValue !== undefined) return int64Value(v.intValue);
  // Protobuf's JSON mapping writes NaN and the infinities as strings.
  if (v.doubleValue !== undefined) return Number(v.doubleValue);
  if (v.arrayValue !== undefined) return (v.arrayValue.values ?? []).map(anyValueOf);
  if (v.kvlistValue !== undefined) return attributesOf(v.kvlistValue.values);
  if (v.bytesValue !== undefined) return { bytes: typeof v.bytesValue === "string" ? v.bytesValue : Buffer.from(v.bytesValue).toString("base64") };
  return "";
}

function attributesOf(list: WireKeyValue[] | undefined): Attributes {
  const out: Attributes = {};
  for (const { key, value } of list ?? []) if (key) out[key] = anyValueOf(value);
  return out;
}

/** The request's spans, each with its resource and scope; `idOf` reads an id in the encoding's form (undefined: absent). */
export function spansOf<Id>(request: WireRequest<Id>, idOf: (id: Id | undefined) => string | undefined): OtlpSpan[] {
  const spans: OtlpSpan[] = [];
  for (const rs of request.resourceSpans ?? []) {
    const resource = attributesOf(rs.resource?.attributes);
    for (const ss of rs.scopeSpans ?? []) {
      const scope = { name: ss.scope?.name ?? "", version: ss.scope?.version ?? "" };
      for (const s of ss.spans ?? []) {
        spans.push({
          traceId: idOf(s.traceId) ?? "",
          spanId: idOf(s.spanId) ?? "",
          parentSpanId: idOf(s.parentSpanId),
          name: s.name ?? "",
          kind: s.kind ?? 0,
          startNs: BigInt(s.startTimeUnixNano ?? 0),
          endNs: BigInt(s.endTimeUnixNano ?? 0),
          attributes: attributesOf(s.attributes),
          events: (s.events ?? []).map((e) => ({ name: e.name ?? "", timeNs: BigInt(e.timeUnixNano ?? 0), attributes: attributesOf(e.attributes) })),
          status: { code: s.status?.code ?? 0, message: s.status?.message ?? "" },
          resource,
          scope,
        });
      }
    }
  }
  return spans;
}
