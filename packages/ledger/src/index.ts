export { SegmentLedger, type SegmentLedgerOptions } from "./segment-ledger.js";
export { SegmentRetention } from "./segment-retention.js";
export {
  RetentionPolicySchema,
  HoldRequestSchema,
  LegalHoldSchema,
  ExpiredRangeSchema,
  type RetentionPolicy,
  type Retention,
  type ExpireOptions,
  type ExpiryReport,
  type HoldRequest,
  type LegalHold,
  type ExpiredRange,
} from "./retention.js";
export {
  CheckpointSchema,
  CheckpointSigner,
  verifyCheckpointSignature,
  generateSigningKey,
  checkpointBody,
  checkpointNote,
  verifierKey,
  parseCheckpointNote,
  openCheckpointNote,
  DEFAULT_LOG_ORIGIN,
  LOG_ORIGIN_PATTERN,
  type Checkpoint,
  type CheckpointNote,
} from "./checkpoint.js";
export {
  formatNote,
  parseNote,
  signNote,
  openNote,
  noteKeyId,
  noteVerifier,
  encodeVerifierKey,
  parseVerifierKey,
  formatCheckpointBody,
  parseCheckpointBody,
  type Note,
  type NoteSignature,
  type NoteSigner,
  type NoteVerifier,
  type OpenedNote,
  type CheckpointBody,
} from "./signed-note.js";
export { formatSignatureLines, parseSignatureLines, decodeBase64 as decodeStrictBase64 } from "./signed-note.js";
export {
  COSIGNATURE_V1_TYPE,
  CosignatureErrorCodes,
  cosignerKeyId,
  cosigner,
  encodeCosignerKey,
  parseCosignerKey,
  cosignatureMessage,
  cosign,
  verifyCosignature,
  checkCosignatures,
  addSignatures,
  type Cosigner,
  type CosignatureCheck,
} from "./cosignature.js";
export { checkpointExporter, readCheckpointFile, CheckpointExportSchema, type CheckpointExport, type CheckpointExporter } from "./checkpoint-export.js";
export {
  InclusionBundleSchema,
  verifyInclusionBundle,
  ConsistencyBundleSchema,
  verifyConsistencyBundle,
  type InclusionBundle,
  type ConsistencyBundle,
} from "./proof.js";
export {
  leafHash,
  nodeHash,
  rootOf,
  CompactTree,
  inclusionProof,
  verifyInclusion,
  consistencyProof,
  verifyConsistency,
  subtreesAfter,
  type SubtreeSource,
} from "./merkle.js";
export {
  VerifyFailureSchema,
  DeadLetterSchema,
  DeadLetterReplaySchema,
  type DeadLetterReplay,
  type Ledger,
  type EventStore,
  type Proofs,
  type DeadLetters,
  type LedgerCheckpointOptions,
  type AppendResult,
  type VerifyFailure,
  type VerifyReport,
  type VerifyOptions,
  type VerifyProgress,
  type DeadLetter,
  type TornTailRepair,
  type StreamSummary,
  type StreamScope,
} from "./types.js";
export { PostgresLedger, PostgresLedgerConfigSchema, type PostgresLedgerConfig, type PostgresLedgerOptions } from "./postgres-ledger.js";
export {
  initPostgresLedger,
  PostgresLedgerInitSchema,
  LedgerNotInitialisedError,
  LEDGER_LAYOUT,
  type PostgresLedgerInit,
  type PostgresLedgerInitResult,
} from "./postgres-schema.js";
export { LEDGER_FILE, LedgerFileSchema } from "./ledger-id.js";
export {
  TILE_HEIGHT,
  TILE_WIDTH,
  FULL_TILE_BYTES,
  TileErrorCodes,
  TileIdSchema,
  tileIndexPath,
  tilePath,
  parseTilePath,
  tilesOf,
  tileIn,
  hashesAt,
  entryBundle,
  type TileId,
  type TileData,
} from "./tiles.js";
export { TileReader, TileAppender, tileInclusionProof, tileConsistencyProof, type TileStore, type StreamTiles, type TiledLedger } from "./tiles-tree.js";
export { ledgerUnavailable } from "./unavailable.js";
export { LedgerErrorCodes, MerkleProofError, MerkleRangeError } from "./errors.js";
