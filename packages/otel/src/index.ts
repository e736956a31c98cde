export * from "./attributes.js";
export { type AttributeValue, type Attributes, type OtlpSpan, type SpanEvent, SPAN_STATUS, hexId, isoOf } from "./model.js";
export { decodeProtobufRequest, decodeProtobufResponse, encodeProtobufResponse, encodeProtobufStatus } from "./proto.js";
export { decodeJsonRequest, encodeJsonResponse, ExportTraceServiceRequestJsonSchema } from "./json.js";
export { SpanRejected, SpanReader } from "./read.js";
export { mapSpan, spanEventId, SPAN_EXTRA_EVENT, ANONYMOUS_USER, UNKNOWN_AGENT, UNKNOWN_VERSION, type MappedSpan, type SpanIndex } from "./map.js";
export { FAMILIES, type Family } from "./families.js";
export { OTLP_TOKENS_ENV, OTLP_TOKEN_PREFIX, parseOtlpTokens, tenantOfBearer, newOtlpToken, type OtlpTokenEntry } from "./tokens.js";
export {
  handleOtlpExport,
  mapRequest,
  OTLP_TRACES_PATH,
  PROTOBUF,
  JSON_TYPE,
  DEFAULT_MAX_BODY_BYTES,
  type OtlpRequest,
  type OtlpOutcome,
} from "./receiver.js";
export {
  OtlpSpanExport,
  OtlpExportOptionsSchema,
  otlpSpanExporter,
  OTLP_EXPORT_PROTOCOLS,
  EXPORT_CONTENT,
  type OtlpExportOptions,
  type OtlpExportSettings,
} from "./export.js";
export { SpanAssembler, traceIdOf, spanIdOf, eventSpanIdOf, type RecordedEvent, type SpanAssemblerOptions } from "./export-spans.js";
export { SpanBatcher, type ExportCounts, type SpanBatcherOptions } from "./export-batcher.js";
export { EVENT_SPANS, RUN_SPANS, type EventSpanRule, type EventSpanTable, type ExportContent, type RunKind } from "./export-map.js";
