export { Graph } from "./graph.js";
export { GraphConfigSchema, type GraphConfig } from "./config.js";
export { splitStatements, DEFAULT_MIGRATIONS_DIR, type MigrationResult } from "./migrate.js";
export { LineageSchema, ERASED_TEXT, type Lineage } from "./lineage.js";
export { formatLineage } from "./format.js";
export {
  ProjectionRangeSchema,
  ProjectionCursorSchema,
  splitAtErasures,
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
