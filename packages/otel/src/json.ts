import { z } from "zod";
import { AuditgraphError, issuesOf } from "@auditgraph/core";
import { spansOf, type OtlpSpan } from "./model.js";

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
  return spansOf(parsed.data, idOf);
}

/** A JSON `ExportTraceServiceResponse` (int64 as a string, as protobuf's JSON mapping writes it). */
export function encodeJsonResponse(partial?: { rejectedSpans: number; errorMessage: string }): string {
  return JSON.stringify(partial ? { partialSuccess: { rejectedSpans: String(partial.rejectedSpans), errorMessage: partial.errorMessage } } : {});
}
