export {
  SCHEMA_VERSION,
  MAX_ID_LENGTH,
  MAX_DIGESTS_PER_KIND,
  MAX_NAME_LENGTH,
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
  DEFAULT_ENVIRONMENT,
  SEVERITIES,
  SeveritySchema,
  PolicyActionSchema,
  ConcernKindSchema,
  PolicyFindingSchema,
  HeldCallSchema,
  type HeldCall,
  ESCALATION_STATES,
  type EscalationState,
  ACCESS_ACTIONS,
  AccessActionSchema,
  AccessSubjectSchema,
  type AccessAction,
  type AccessSubject,
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
  type Severity,
  type PolicyAction,
  type ConcernKind,
  type PolicyFinding,
} from "./schema.js";
export { canonicalJson, sha256Hex, hashCanonical } from "./hashing.js";
export { ValidationError, parseWith, issuesOf, nestedTooDeep, MAX_EVENT_DEPTH, type FieldIssue } from "./validation.js";
export { parseEvent, upcastEvent, type EventParseResult } from "./upcast.js";
export { streamIdFor } from "./streams.js";
export { LedgerRecordSchema, GENESIS_HASH, recordHash, sealRecord, sealRecordBytes, sealRecordText, textSealed, type LedgerRecord } from "./record.js";
export { StoredEventSchema, PlainRecordSchema, type StoredEvent, type PlainRecord } from "./record.js";
export {
  SubjectRefSchema,
  subjectRef,
  tenantIdOf,
  isErasure,
  isSystemEvent,
  SYSTEM_EVENT_TYPES,
  DataKey,
  FileKeyStore,
  DATA_KEY_BYTES,
  SEAL_ALG,
  SealedEventSchema,
  isSealed,
  sealEvent,
  openEvent,
  openRecords,
  type UserEvent,
  type SystemEvent,
  type SubjectKeyStore,
  type SealedEvent,
  type OpenedEvent,
  type OpenedRecord,
} from "./subjects/index.js";
export {
  DEFAULT_QUEUE_NAME,
  BATCH_JOB_NAME,
  BatchJobSchema,
  epochKey,
  batchJobOptions,
  BATCH_PRIORITY,
  URGENT_BATCH_PRIORITY,
  BATCH_ATTEMPTS,
  type BatchJob,
} from "./transport.js";
export {
  SharedEnvSchema,
  withSharedEnvRules,
  logLevelOf,
  LOG_LEVELS,
  type LogLevel,
  isHashTag,
  HASH_TAG_MESSAGE,
  QUEUE_NAME_PATTERN,
  DEFAULT_REDIS_URL,
  DEFAULT_SPOOL_DIR,
  type SharedEnv,
} from "./env.js";
// Where redaction may go in each event type, declared beside the schemas (events/<family>.ts);
// the engine that walks them is @auditgraph/redaction, so agents that redact pay for its detectors.
export { PAYLOAD_REDACTION } from "./schema.js";
export { ENVELOPE_REDACTION } from "./events/common.js";
export {
  JSON_SHAPE as REDACTION_JSON_SHAPE,
  object as redactionObject,
  required as redactionRequired,
  type Shape as RedactionShape,
  type Field as RedactionField,
} from "./events/hints.js";
export { lockDir, type DirLockOptions } from "./lock.js";
export { appendSynced } from "./files.js";
export {
  ESCALATION_TRANSITIONS,
  EscalationTransitionError,
  canTransition,
  foldEscalation,
  type EscalationView,
} from "./escalation.js";
export { AuditgraphError, isAuditgraphError, LEGACY_ERROR_CODES, type ErrorCode, type LegacyErrorCode } from "./errors.js";
export { backoffMs, type BackoffOptions } from "./backoff.js";
