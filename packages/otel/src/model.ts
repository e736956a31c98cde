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
