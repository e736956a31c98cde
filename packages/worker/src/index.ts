export { AuditWorker, waitUntilIdle, type AuditWorkerOptions, type LedgerHealth } from "./worker.js";
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
export { rebuildGraph, RebuildOptionsSchema, ProjectionNotEmptyError, countStreamRecords, type RebuildOptions, type RebuildProgress, type RebuildResult } from "./rebuild.js";
export { WorkerNotifications, notificationOf, type WorkerNotifierOptions } from "./notifications.js";
export { RedisPolicyState, type RedisPolicyStateOptions } from "./policy-state.js";
export {
  PolicyEngine,
  DEFAULT_WORKER_POLICIES,
  loadWorkerPolicies,
  derivedEventId,
  flagIdOf,
  escalationIdOf,
  raisedEvents,
  heldEscalation,
  type PolicyEngineOptions,
  type RaisedStream,
} from "./policies.js";
export {
  transitionEscalation,
  holdDecisionOf,
  readEscalation,
  listEscalations,
  TransitionRequestSchema,
  EscalationNotFoundError,
  type TransitionRequest,
  type TransitionResult,
  type TransitionHolds,
  type EscalationListing,
} from "./escalations.js";
