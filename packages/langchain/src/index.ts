export {
  AuditCallbackHandler,
  HandlerOptionsSchema,
  PriceSchema,
  METADATA_KEYS,
  type HandlerOptions,
  type HandlerMetrics,
} from "./handler.js";
export { QueueTransport, QueueTransportOptionsSchema, tapTransport, type Transport, type QueueTransportOptions, type TransportMetrics } from "./transport.js";
export { toJson, toMessage } from "./serialize.js";
