import { gunzipSync } from "node:zlib";
import { isAuditgraphError, type UserEvent } from "@auditgraph/core";
import { decodeJsonRequest, encodeJsonResponse } from "./json.js";
import { mapSpan, type SpanIndex } from "./map.js";
import type { OtlpSpan } from "./model.js";
import { decodeProtobufRequest, encodeProtobufResponse, encodeProtobufStatus } from "./proto.js";
import { SpanRejected } from "./read.js";
import { tenantOfBearer, type OtlpTokenEntry } from "./tokens.js";

// One OTLP/HTTP trace export, from the request's headers and bytes to the events to record and
// the response to send: pure, so the worker's route only moves bytes and queues the events.

export const OTLP_TRACES_PATH = "/v1/traces";
export const PROTOBUF = "application/x-protobuf";
export const JSON_TYPE = "application/json";
/** The largest body taken, compressed or not (OTLP exporters send a few MB at most). */
export const DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024;

export interface OtlpRequest {
  contentType: string | undefined;
  contentEncoding: string | undefined;
  authorization: string | undefined;
  body: Uint8Array;
}

export interface OtlpOutcome {
  status: number;
  contentType: string;
  body: Uint8Array | string;
  /** The tenant the token named (undefined when the request was refused before). */
  tenantId?: string;
  /** Events of the accepted spans, in time order (start before end). */
  events: UserEvent[];
  acceptedSpans: number;
  /** Refused spans, each with its reason (the response carries them joined). */
  rejected: { spanId: string; reason: string }[];
}

// gRPC's codes in a google.rpc.Status, as OTLP/HTTP asks of a refused request's body.
const RPC = { invalidArgument: 3, unauthenticated: 16 } as const;
/** The partial success message names this many refused spans at most (the count is exact). */
const MAX_REASONS = 20;

function refuse(status: number, json: boolean, rpc: number, message: string): OtlpOutcome {
  return {
    status,
    contentType: json ? JSON_TYPE : PROTOBUF,
    body: json ? JSON.stringify({ code: rpc, message }) : encodeProtobufStatus(rpc, message),
    events: [],
    acceptedSpans: 0,
    rejected: [],
  };
}

/**
 * Authenticates (the bearer token names the tenant: 401 without a valid one), checks the content
 * type (415 but for protobuf and JSON) and encoding (gzip or none), decodes (400 when the body
 * is not an export request) and maps every span; a span that does not map is refused alone and
 * named in the partial success, the others are kept.
 */
export function handleOtlpExport(request: OtlpRequest, tokens: readonly OtlpTokenEntry[], maxBodyBytes = DEFAULT_MAX_BODY_BYTES): OtlpOutcome {
  const mediaType = (request.contentType ?? "").split(";")[0]!.trim().toLowerCase();
  const json = mediaType === JSON_TYPE;
  const tenantId = tenantOfBearer(tokens, request.authorization);
  if (tenantId === undefined)
    return refuse(401, json, RPC.unauthenticated, "a valid OTLP ingest token is required (Authorization: Bearer <token>; see auditgraph otlp-token)");
  if (!json && mediaType !== PROTOBUF)
    return refuse(415, false, RPC.invalidArgument, `Content-Type must be ${PROTOBUF} or ${JSON_TYPE}, not ${mediaType || "(none)"}`);
  const encoding = (request.contentEncoding ?? "identity").trim().toLowerCase();
  if (encoding !== "identity" && encoding !== "gzip") return refuse(415, json, RPC.invalidArgument, `Content-Encoding must be gzip or none, not ${encoding}`);
  let spans: OtlpSpan[];
  try {
    const body = encoding === "gzip" ? gunzipSync(request.body, { maxOutputLength: maxBodyBytes }) : request.body;
    spans = json ? decodeJsonRequest(Buffer.from(body).toString("utf8")) : decodeProtobufRequest(body);
  } catch (error) {
    // Ours name the field; anything else is zlib's (a bad gzip stream, over the size limit) or a
    // decoder's own (a body nested too deep for it).
    const message = isAuditgraphError(error) ? error.message : `body could not be decoded: ${(error as Error).message}`;
    return refuse(400, json, RPC.invalidArgument, message);
  }
  const mapped = mapRequest(spans, tenantId);
  return { ...mapped, status: 200, contentType: json ? JSON_TYPE : PROTOBUF, tenantId, body: responseBody(json, mapped.rejected) };
}

/** Maps the spans of one request for `tenantId`; the events in time order, start before custom before end at one instant. */
export function mapRequest(spans: OtlpSpan[], tenantId: string): Pick<OtlpOutcome, "events" | "acceptedSpans" | "rejected"> {
  const index: SpanIndex = new Map(spans.map((s) => [`${s.traceId}/${s.spanId}`, s]));
  const rows: { event: UserEvent; at: bigint; order: number }[] = [];
  const rejected: OtlpOutcome["rejected"] = [];
  let acceptedSpans = 0;
  for (const span of spans) {
    try {
      rows.push(...mapSpan(span, index, tenantId).events);
      acceptedSpans += 1;
    } catch (error) {
      if (!(error instanceof SpanRejected)) throw error;
      rejected.push({ spanId: span.spanId, reason: error.message });
    }
  }
  rows.sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : a.order - b.order));
  return { events: rows.map((r) => r.event), acceptedSpans, rejected };
}

/** An ExportTraceServiceResponse: empty, or a partial success counting and naming the refused spans. */
function responseBody(json: boolean, rejected: OtlpOutcome["rejected"]): Uint8Array | string {
  const partial =
    rejected.length === 0
      ? undefined
      : {
          rejectedSpans: rejected.length,
          errorMessage:
            rejected
              .slice(0, MAX_REASONS)
              .map((r) => r.reason)
              .join("; ") + (rejected.length > MAX_REASONS ? `; and ${rejected.length - MAX_REASONS} more` : ""),
        };
  return json ? encodeJsonResponse(partial) : encodeProtobufResponse(partial);
}
