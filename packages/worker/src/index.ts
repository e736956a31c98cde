export { ShardCounts, SHARDS_TRACE_ID, recordedShards } from "./shard-counts.js";
export { AuditWorker, AuditWorkerOptionsSchema, waitUntilIdle, type AuditWorkerOptions, type LedgerHealth, type Readiness } from "./worker.js";
export { startWorkerHttp, WorkerHttpOptionsSchema, type WorkerHttp, type WorkerHttpOptions } from "./http.js";
export { WorkerMetrics, QUEUE_STATES } from "./metrics.js";
export { StageTimers, STAGES, type Stage } from "./stage-timers.js";
export { recordJob, type PipelineParts } from "./pipeline.js";
export { RedisHealth, isConnectionError, type RedisState } from "./redis-health.js";
export { SchemaGate, type GraphState } from "./schema-gate.js";
export {
  processBatch,
  appendBatch,
  type BatchOutcome,
  type AppendOutcome,
  type AppendedBatch,
  type AppendedStream,
  type ProcessOptions,
} from "./process.js";
export {
  StreamProjector,
  ProjectorSettingsSchema,
  openRange,
  readBatch,
  projectionLag,
  type ProjectionGraph,
  type ProjectorOptions,
  type ProjectorSettings,
  type OpenedRange,
  type StreamLag,
} from "./projector.js";
export { projectSettingAside, unprojectable, projectionDeadLetter, type SetAsideOutcome } from "./projection-dead-letter.js";
export {
  rebuildGraph,
  RebuildOptionsSchema,
  ProjectionNotEmptyError,
  countStreamRecords,
  type RebuildOptions,
  type RebuildProgress,
  type RebuildResult,
} from "./rebuild.js";
export { WorkerNotifications, notificationOf, type WorkerNotifierOptions } from "./notifications.js";
export { EventRecorder, type EventRecorderOptions, type RecordOptions } from "./recorder.js";
export { RedisPolicyState, type RedisPolicyStateOptions } from "./policy-state.js";
export {
  ApprovalIntegrity,
  APPROVAL_VIOLATIONS,
  APPROVAL_POLICY_VERSION,
  approvalPolicyIdOf,
  holdViolation,
  type ApprovalViolation,
  type ApprovalIntegrityOptions,
  type ApprovalFinding,
  type HoldEvidence,
} from "./approval-integrity.js";
export {
  PolicyEngine,
  recordRaised,
  DEFAULT_WORKER_POLICIES,
  loadWorkerPolicies,
  derivedEventId,
  flagIdOf,
  escalationIdOf,
  raisedEvents,
  heldEscalation,
  type PolicyEngineOptions,
  type PolicyEvaluation,
  type RaisedStream,
} from "./policies.js";
export {
  transitionEscalation,
  holdDecisionOf,
  readEscalation,
  listEscalations,
  timeLeftOf,
  formatDuration,
  TransitionRequestSchema,
  EscalationNotFoundError,
  type TransitionRequest,
  type TransitionResult,
  type TransitionHolds,
  type EscalationListing,
} from "./escalations.js";
export { recordAccess, AccessInputSchema, AccessInputError, type AccessInput, type AccessResult } from "./access.js";
export {
  ESCALATION_CHANGES_CHANNEL,
  EscalationChangeSchema,
  escalationChangesOf,
  publishEscalationChanges,
  type EscalationChange,
} from "./escalation-changes.js";
export { WorkerOtlpExport } from "./otlp-export.js";
