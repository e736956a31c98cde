export {
  SCHEMA_VERSION,
  EventSchema,
  IdentitySchema,
  UserIdentitySchema,
  AgentIdentitySchema,
  ModelSchema,
  UsageSchema,
  MessageSchema,
  ToolCallRequestSchema,
  ErrorInfoSchema,
  CostSchema,
  ToolDefinitionSchema,
  ReasoningStepSchema,
  DocumentSchema,
  newEventId,
  type AuditEvent,
  type EventType,
  type EventOf,
  type Identity,
  type Model,
  type Usage,
  type Message,
  type ToolCallRequest,
  type ErrorInfo,
  type ReasoningStep,
  type ToolDefinition,
  type Cost,
  type Document,
} from "./schema.js";
export { canonicalJson, sha256Hex, hashCanonical } from "./hashing.js";
export { ValidationError, parseWith, issuesOf, type FieldIssue } from "./validation.js";
export { streamIdFor } from "./streams.js";
export { LedgerRecordSchema, GENESIS_HASH, recordHash, sealRecord, sealRecordText, textSealed, type LedgerRecord } from "./record.js";
export { DEFAULT_QUEUE_NAME, BATCH_JOB_NAME, BatchJobSchema, type BatchJob } from "./transport.js";
export {
  Redactor,
  RedactionConfigSchema,
  RedactionOperatorSchema,
  CustomDetectorSchema,
  FieldRuleSchema,
  BUILTIN_DETECTORS,
  type RedactionConfig,
  type ResolvedRedactionConfig,
  type RedactionOperator,
  type RedactionCounts,
  type BuiltinDetector,
  type CustomDetector,
  type DetectorFunction,
  type FieldRule,
  type TextSpan,
} from "./redaction/index.js";
export { lockDir, type DirLockOptions } from "./lock.js";
