export { AuditWorker, waitUntilIdle, type AuditWorkerOptions } from "./worker.js";
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
