export { AuditCallbackHandler, HandlerOptionsSchema, METADATA_KEYS, type HandlerOptions } from "./handler.js";
export { QueueTransport, type Transport, type QueueTransportOptions } from "./transport.js";
export { toJson, toMessage } from "./serialize.js";
