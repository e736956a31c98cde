export { Graph } from "./graph.js";
export { GraphConfigSchema, type GraphConfig } from "./config.js";
export { splitStatements, DEFAULT_MIGRATIONS_DIR, type MigrationResult, type MigrateOptions } from "./migrate.js";
export { MigrationAbortedError, MigrationLockedError, withMigrationLock, type MigrationLockOptions } from "./migration-lock.js";
export { LineageSchema, ERASED_TEXT, AmbiguousLineageIdError, type Lineage, type LineageOptions } from "./lineage.js";
export { formatLineage } from "./format.js";
export {
  ProjectionRangeSchema,
  ProjectionCursorSchema,
  splitAtErasures,
  ForeignProjectionError,
  type ProjectionRange,
  type ProjectionCursor,
  type RangeOutcome,
} from "./cursor.js";
export { ProjectionScopeSchema, type ProjectionScope } from "./maintenance.js";
export { renderLineageHtml } from "./report.js";
export {
  INVESTIGATIONS,
  investigate,
  isInvestigation,
  DEFAULT_QUERIES_DIR,
  type InvestigationName,
  type InvestigationParams,
  type InvestigationRow,
  TraceOutputRowSchema,
  type TraceOutputRow,
} from "./investigations.js";
export { PROJECTION_PLAN_OPTION, PROJECTION_STATEMENTS_DIR } from "./projection/statement.js";
