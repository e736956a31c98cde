import protobuf from "protobufjs";
import { AuditgraphError } from "@auditgraph/core";
import { hexId, spansOf, type OtlpSpan, type WireRequest } from "./model.js";

// The subset of opentelemetry-proto (v1: collector/trace/v1/trace_service.proto, trace/v1/trace.proto,
// common/v1/common.proto, resource/v1/resource.proto) that a trace export carries, written here as a
// protobufjs JSON descriptor with the specification's field numbers. Fields left out (links, trace
// state, dropped counts, schema urls) are skipped by the decoder, as protobuf skips unknown fields.

const kv = { fields: { key: { type: "string", id: 1 }, value: { type: "AnyValue", id: 2 } } };

const DESCRIPTOR = {
  nested: {
    otlp: {
      nested: {
        AnyValue: {
          oneofs: { value: { oneof: ["stringValue", "boolValue", "intValue", "doubleValue", "arrayValue", "kvlistValue", "bytesValue"] } },
          fields: {
            stringValue: { type: "string", id: 1 },
            boolValue: { type: "bool", id: 2 },
            intValue: { type: "int64", id: 3 },
            doubleValue: { type: "double", id: 4 },
            arrayValue: { type: "ArrayValue", id: 5 },
            kvlistValue: { type: "KeyValueList", id: 6 },
            bytesValue: { type: "bytes", id: 7 },
          },
        },
        ArrayValue: { fields: { values: { rule: "repeated", type: "AnyValue", id: 1 } } },
        KeyValueList: { fields: { values: { rule: "repeated", type: "KeyValue", id: 1 } } },
        KeyValue: kv,
        Resource: { fields: { attributes: { rule: "repeated", type: "KeyValue", id: 1 } } },
        InstrumentationScope: { fields: { name: { type: "string", id: 1 }, version: { type: "string", id: 2 } } },
        Status: { fields: { message: { type: "string", id: 2 }, code: { type: "int32", id: 3 } } },
        SpanEvent: {
          fields: {
            timeUnixNano: { type: "fixed64", id: 1 },
            name: { type: "string", id: 2 },
            attributes: { rule: "repeated", type: "KeyValue", id: 3 },
          },
        },
        Span: {
          fields: {
            traceId: { type: "bytes", id: 1 },
            spanId: { type: "bytes", id: 2 },
            parentSpanId: { type: "bytes", id: 4 },
            name: { type: "string", id: 5 },
            kind: { type: "int32", id: 6 },
            startTimeUnixNano: { type: "fixed64", id: 7 },
            endTimeUnixNano: { type: "fixed64", id: 8 },
            attributes: { rule: "repeated", type: "KeyValue", id: 9 },
            events: { rule: "repeated", type: "SpanEvent", id: 11 },
            status: { type: "Status", id: 15 },
          },
        },
        ScopeSpans: { fields: { scope: { type: "InstrumentationScope", id: 1 }, spans: { rule: "repeated", type: "Span", id: 2 } } },
        ResourceSpans: { fields: { resource: { type: "Resource", id: 1 }, scopeSpans: { rule: "repeated", type: "ScopeSpans", id: 2 } } },
        ExportTraceServiceRequest: { fields: { resourceSpans: { rule: "repeated", type: "ResourceSpans", id: 1 } } },
        ExportTracePartialSuccess: { fields: { rejectedSpans: { type: "int64", id: 1 }, errorMessage: { type: "string", id: 2 } } },
        ExportTraceServiceResponse: { fields: { partialSuccess: { type: "ExportTracePartialSuccess", id: 1 } } },
        // google.rpc.Status: the body of a refused request (OTLP/HTTP's failure responses).
        RpcStatus: { fields: { code: { type: "int32", id: 1 }, message: { type: "string", id: 2 } } },
      },
    },
  },
};

const root = protobuf.Root.fromJSON(DESCRIPTOR);
const RequestType = root.lookupType("otlp.ExportTraceServiceRequest");
const ResponseType = root.lookupType("otlp.ExportTraceServiceResponse");
const StatusType = root.lookupType("otlp.RpcStatus");

/** A google.rpc.Status (`code` is gRPC's: 3 invalid argument, 16 unauthenticated ...). */
export function encodeProtobufStatus(code: number, message: string): Uint8Array {
  return StatusType.encode(StatusType.fromObject({ code, message })).finish();
}

/** The spans of a protobuf `ExportTraceServiceRequest`; AUDITGRAPH_E_OTLP_DECODE when the bytes are not one. */
export function decodeProtobufRequest(body: Uint8Array): OtlpSpan[] {
  // `toObject` below: int64/fixed64 as decimal strings, bytes (ids too) as Uint8Array.
  let request: WireRequest<Uint8Array>;
  try {
    request = RequestType.toObject(RequestType.decode(body), { longs: String, oneofs: false, defaults: false }) as WireRequest<Uint8Array>;
  } catch (error) {
    throw new AuditgraphError("AUDITGRAPH_E_OTLP_DECODE", `OTLP protobuf body is not an ExportTraceServiceRequest: ${(error as Error).message}`);
  }
  return spansOf(request, hexId);
}

/** A protobuf `ExportTraceServiceResponse`: empty when every span was accepted, else with its partial success. */
export function encodeProtobufResponse(partial?: { rejectedSpans: number; errorMessage: string }): Uint8Array {
  return ResponseType.encode(ResponseType.fromObject(partial ? { partialSuccess: partial } : {})).finish();
}

/** Reads a protobuf `ExportTraceServiceResponse` (tests, and a client of the receiver). */
export function decodeProtobufResponse(body: Uint8Array): { partialSuccess?: { rejectedSpans: number; errorMessage: string } } {
  const o = ResponseType.toObject(ResponseType.decode(body), { longs: Number, defaults: false }) as {
    partialSuccess?: { rejectedSpans?: number; errorMessage?: string };
  };
  return o.partialSuccess ? { partialSuccess: { rejectedSpans: o.partialSuccess.rejectedSpans ?? 0, errorMessage: o.partialSuccess.errorMessage ?? "" } } : {};
}
