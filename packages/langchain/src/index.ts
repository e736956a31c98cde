export { AuditCallbackHandler, METADATA_KEYS, type HandlerMetrics } from "./handler.js";
// The refusals the handler raises into the agent on purpose, each with a stable `code`.
export { AuditRefusal, AUDIT_REFUSAL_CODES, PolicyRefusal, type AuditRefusalCode } from "./errors.js";
export { HandlerOptionsSchema, InlinePoliciesSchema, PriceSchema, type EventRedactor, type HandlerOptions } from "./handler-options.js";
export { QueueTransport, QueueTransportOptionsSchema, tapTransport, type Transport, type QueueTransportOptions, type TransportMetrics } from "./transport.js";
export { toJson, toMessage } from "./serialize.js";
// Redaction runs in the handler, so its configuration is part of this package's API.
export {
  Redactor,
  RedactionConfigSchema,
  RedactionOperatorSchema,
  BUILTIN_DETECTORS,
  PII_DETECTORS,
  type RedactionConfig,
  type RedactionOperator,
  type RedactionCounts,
  type BuiltinDetector,
  type CustomDetector,
  type DetectorFunction,
  type FieldRule,
  type TextSpan,
} from "@auditgraph/redaction";
