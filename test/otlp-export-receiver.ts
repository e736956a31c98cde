// An OTLP/HTTP traces receiver for the export tests: a node:http server on a free port that keeps
// every POST /v1/traces (headers and body), answers with the status the test sets, and decodes
// bodies on its own: JSON with JSON.parse, protobuf with protobufjs and the descriptor below
// (a subset of opentelemetry/proto/trace/v1/trace.proto, written here from the spec, not taken
// from our code), so a test checks the exporter against the wire format, not against itself.
import { createServer, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";
import protobuf from "protobufjs";

const TRACE_PROTO = `
syntax = "proto3";
package t;
message ExportTraceServiceRequest { repeated ResourceSpans resource_spans = 1; }
message ResourceSpans { Resource resource = 1; repeated ScopeSpans scope_spans = 2; string schema_url = 3; }
message Resource { repeated KeyValue attributes = 1; uint32 dropped_attributes_count = 2; }
message ScopeSpans { InstrumentationScope scope = 1; repeated Span spans = 2; string schema_url = 3; }
message InstrumentationScope { string name = 1; string version = 2; }
message Span {
  bytes trace_id = 1; bytes span_id = 2; string trace_state = 3; bytes parent_span_id = 4; string name = 5; int32 kind = 6;
  fixed64 start_time_unix_nano = 7; fixed64 end_time_unix_nano = 8; repeated KeyValue attributes = 9; uint32 dropped_attributes_count = 10;
  repeated Event events = 11; uint32 dropped_events_count = 12; Status status = 15; fixed32 flags = 16;
}
message Event { fixed64 time_unix_nano = 1; string name = 2; repeated KeyValue attributes = 3; }
message Status { string message = 2; int32 code = 3; }
message KeyValue { string key = 1; AnyValue value = 2; }
message AnyValue {
  oneof value { string string_value = 1; bool bool_value = 2; int64 int_value = 3; double double_value = 4; ArrayValue array_value = 5; KeyValueList kvlist_value = 6; bytes bytes_value = 7; }
}
message ArrayValue { repeated AnyValue values = 1; }
message KeyValueList { repeated KeyValue values = 1; }
`;
const RequestType = protobuf.parse(TRACE_PROTO, { keepCase: false }).root.lookupType("t.ExportTraceServiceRequest");

/** A span as the tests read it, whichever encoding it came in. */
export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string | undefined;
  name: string;
  kind: number;
  startMs: number;
  endMs: number;
  attributes: Record<string, unknown>;
  events: { name: string; attributes: Record<string, unknown> }[];
  status: { code: number; message: string | undefined };
  service: unknown;
}

type Any = Record<string, unknown>;
function anyValueOf(v: Any | undefined): unknown {
  if (!v) return undefined;
  if ("stringValue" in v) return v.stringValue;
  if ("boolValue" in v) return v.boolValue;
  if ("intValue" in v) return Number(v.intValue);
  if ("doubleValue" in v) return Number(v.doubleValue);
  if ("arrayValue" in v) return (((v.arrayValue as Any).values as Any[]) ?? []).map(anyValueOf);
  return undefined;
}
const attributesOf = (kvs: Any[] | undefined): Record<string, unknown> =>
  Object.fromEntries((kvs ?? []).map((kv) => [kv.key as string, anyValueOf(kv.value as Any)]));
const hex = (v: unknown, json: boolean): string | undefined => {
  const text = json ? (v as string | undefined) : v ? Buffer.from(v as Uint8Array).toString("hex") : undefined;
  return text ? text : undefined;
};

/** Both encodings, once decoded to plain objects, have the same (camelCase) shape; ids are hex in JSON, bytes in protobuf. */
function spansOf(request: Any, json: boolean): ReceivedSpan[] {
  const out: ReceivedSpan[] = [];
  for (const rs of (request.resourceSpans as Any[]) ?? []) {
    const resource = attributesOf(((rs.resource as Any) ?? {}).attributes as Any[]);
    for (const ss of (rs.scopeSpans as Any[]) ?? [])
      for (const s of (ss.spans as Any[]) ?? []) {
        const status = (s.status as Any) ?? {};
        out.push({
          traceId: hex(s.traceId, json)!,
          spanId: hex(s.spanId, json)!,
          parentSpanId: hex(s.parentSpanId, json),
          name: s.name as string,
          kind: Number(s.kind ?? 0),
          startMs: Number(BigInt(String(s.startTimeUnixNano)) / 1_000_000n),
          endMs: Number(BigInt(String(s.endTimeUnixNano)) / 1_000_000n),
          attributes: attributesOf(s.attributes as Any[]),
          events: ((s.events as Any[]) ?? []).map((e) => ({ name: e.name as string, attributes: attributesOf(e.attributes as Any[]) })),
          status: { code: Number(status.code ?? 0), message: (status.message as string | undefined) || undefined },
          service: resource["service.name"],
        });
      }
  }
  return out;
}

export const decodeJsonBody = (body: Buffer): ReceivedSpan[] => spansOf(JSON.parse(body.toString("utf8")) as Any, true);
export const decodeProtobufBody = (body: Buffer): ReceivedSpan[] =>
  spansOf(RequestType.toObject(RequestType.decode(body), { longs: String, defaults: false }) as Any, false);

export interface ReceivedRequest {
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** Starts a receiver; `status` is what it answers from now on (200 by default). */
export async function startOtlpReceiver() {
  const requests: ReceivedRequest[] = [];
  let status = 200;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      if (req.method !== "POST" || req.url !== "/v1/traces") return res.writeHead(404).end();
      requests.push({ headers: req.headers, body: Buffer.concat(chunks) });
      // An empty ExportTraceServiceResponse: zero bytes in protobuf, `{}` in JSON.
      const json = String(req.headers["content-type"]).includes("json");
      res.writeHead(status, { "content-type": json ? "application/json" : "application/x-protobuf" }).end(json ? "{}" : "");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/v1/traces`,
    requests,
    answer(code: number) {
      status = code;
    },
    /** Every span received so far, decoded by each request's content type. */
    spans(): ReceivedSpan[] {
      return requests.flatMap((r) => (String(r.headers["content-type"]).includes("json") ? decodeJsonBody(r.body) : decodeProtobufBody(r.body)));
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** A URL nobody listens on: a server's port, taken and let go. */
export async function deadOtlpUrl(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}/v1/traces`;
}

/** A counter's value in the worker's Prometheus text. */
export async function counterValue(metrics: { registry: { metrics(): Promise<string> } }, name: string): Promise<number> {
  const text = await metrics.registry.metrics();
  const line = text.split("\n").find((l) => l.startsWith(`${name} `));
  return line ? Number(line.split(" ")[1]) : Number.NaN;
}
