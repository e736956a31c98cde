import { z } from "zod";
import { AuditgraphError, issuesOf } from "@auditgraph/core";
import { int64Value, type AttributeValue, type Attributes, type OtlpSpan } from "./model.js";

// OTLP's JSON encoding (protobuf's JSON mapping with OTLP's exceptions): lowerCamelCase fields,
// trace and span ids in hex (not base64), int64 as a decimal string or a number, bytes in base64,
// enums as integers. Unknown fields are ignored, as the specification asks of a receiver.

// A JSON number past 2^53 (nanosecond times are) is taken as parsed: it lost digits in JSON.parse
// already, and a nanosecond's worth of them matters to nobody here.
const wholeNumber = z.number().refine(Number.isInteger, "must be an integer");
const int64 = z.union([z.string().regex(/^-?\d+$/, "must be an integer"), wholeNumber]);
const uint64 = z.union([z.string().regex(/^\d+$/, "must be a non-negative integer"), wholeNumber.refine((n) => n >= 0, "must be non-negative")]);
const hex = (bytes: number) => z.union([z.literal(""), z.string().regex(new RegExp(`^[0-9a-fA-F]{${bytes * 2}}$`), `must be ${bytes * 2} hex digits`)]);

interface JsonAnyValue {
  stringValue?: string | undefined;
  boolValue?: boolean | undefined;
  intValue?: string | number | undefined;
  doubleValue?: number | string | undefined;
  arrayValue?: { values?: JsonAnyValue[] | undefined } | undefined;
  kvlistValue?: { values?: JsonKeyValue[] | undefined } | undefined;
  bytesValue?: string | undefined;
}
interface JsonKeyValue {
  key: string;
  value?: JsonAnyValue | undefined;
}

const AnyValueSchema: z.ZodType<JsonAnyValue> = z.lazy(() =>
  z.object({
    stringValue: z.string().optional(),
    boolValue: z.boolean().optional(),
    intValue: int64.optional(),
    // Protobuf's JSON mapping writes NaN and the infinities as strings.
    doubleValue: z.union([z.number(), z.enum(["NaN", "Infinity", "-Infinity"])]).optional(),
    arrayValue: z.object({ values: z.array(AnyValueSchema).optional() }).optional(),
    kvlistValue: z.object({ values: z.array(KeyValueSchema).optional() }).optional(),
    bytesValue: z.base64().optional(),
  }),
);
const KeyValueSchema: z.ZodType<JsonKeyValue> = z.lazy(() => z.object({ key: z.string(), value: AnyValueSchema.optional() }));
const attributes = z.array(KeyValueSchema).optional();

const SpanSchema = z.object({
  traceId: hex(16),
  spanId: hex(8),
  parentSpanId: hex(8).optional(),
  name: z.string().default(""),
  kind: z.int().nonnegative().default(0),
  startTimeUnixNano: uint64.default(0),
  endTimeUnixNano: uint64.default(0),
  attributes,
  events: z.array(z.object({ timeUnixNano: uint64.default(0), name: z.string().default(""), attributes })).optional(),
  status: z.object({ code: z.int().nonnegative().default(0), message: z.string().default("") }).optional(),
});

export const ExportTraceServiceRequestJsonSchema = z.object({
  resourceSpans: z
    .array(
      z.object({
        resource: z.object({ attributes }).optional(),
        scopeSpans: z
          .array(
            z.object({
              scope: z.object({ name: z.string().default(""), version: z.string().default("") }).optional(),
              spans: z.array(SpanSchema).optional(),
            }),
          )
          .optional(),
      }),
    )
    .optional(),
});

function anyValueOf(v: JsonAnyValue | undefined): AttributeValue {
  if (!v) return "";
  if (v.stringValue !== undefined) return v.stringValue;
  if (v.boolValue !== undefined) return v.boolValue;
  if (v.intValue !== undefined) return int64Value(v.intValue);
  if (v.doubleValue !== undefined) return Number(v.doubleValue);
  if (v.arrayValue !== undefined) return (v.arrayValue.values ?? []).map(anyValueOf);
  if (v.kvlistValue !== undefined) return attributesOf(v.kvlistValue.values);
  if (v.bytesValue !== undefined) return { bytes: v.bytesValue };
  return "";
}

function attributesOf(list: JsonKeyValue[] | undefined): Attributes {
  const out: Attributes = {};
  for (const { key, value } of list ?? []) if (key) out[key] = anyValueOf(value);
  return out;
}

const idOf = (hexId: string | undefined) => (!hexId || /^0+$/.test(hexId) ? undefined : hexId.toLowerCase());

/** The spans of a JSON `ExportTraceServiceRequest`; AUDITGRAPH_E_OTLP_DECODE naming the field when it is not one. */
export function decodeJsonRequest(body: string): OtlpSpan[] {
  let raw: unknown;
  try {
    raw = JSON.parse(body);
  } catch (error) {
    throw new AuditgraphError("AUDITGRAPH_E_OTLP_DECODE", `OTLP JSON body is not JSON: ${(error as Error).message}`);
  }
  const parsed = ExportTraceServiceRequestJsonSchema.safeParse(raw);
  if (!parsed.success) {
    const issues = issuesOf(parsed.error).map((i) => `${i.path}: ${i.message}`);
    throw new AuditgraphError("AUDITGRAPH_E_OTLP_DECODE", `OTLP JSON body is not an ExportTraceServiceRequest: ${issues.slice(0, 5).join("; ")}`);
  }
  const spans: OtlpSpan[] = [];
  for (const rs of parsed.data.resourceSpans ?? []) {
    const resource = attributesOf(rs.resource?.attributes);
    for (const ss of rs.scopeSpans ?? []) {
      const scope = { name: ss.scope?.name ?? "", version: ss.scope?.version ?? "" };
      for (const s of ss.spans ?? []) {
        spans.push({
          traceId: idOf(s.traceId) ?? "",
          spanId: idOf(s.spanId) ?? "",
          parentSpanId: idOf(s.parentSpanId),
          name: s.name,
          kind: s.kind,
          startNs: BigInt(s.startTimeUnixNano),
          endNs: BigInt(s.endTimeUnixNano),
          attributes: attributesOf(s.attributes),
          events: (s.events ?? []).map((e) => ({ name: e.name, timeNs: BigInt(e.timeUnixNano), attributes: attributesOf(e.attributes) })),
          status: { code: s.status?.code ?? 0, message: s.status?.message ?? "" },
          resource,
          scope,
        });
      }
    }
  }
  return spans;
}

/** A JSON `ExportTraceServiceResponse` (int64 as a string, as protobuf's JSON mapping writes it). */
export function encodeJsonResponse(partial?: { rejectedSpans: number; errorMessage: string }): string {
  return JSON.stringify(partial ? { partialSuccess: { rejectedSpans: String(partial.rejectedSpans), errorMessage: partial.errorMessage } } : {});
}
