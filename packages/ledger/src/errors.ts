import { AuditgraphError, type ErrorCode } from "@auditgraph/core";

/**
 * The ledger's errors, each with a stable code (listed in docs/errors.md) so callers branch on
 * the code, never on the message.
 */
export const LedgerErrorCodes = {
  /** `prove` of an event the ledger (or the stream asked for) does not hold. */
  noEvent: "AUDITGRAPH_E_LEDGER_NO_EVENT",
  /** A segment ledger's stream id is not `[A-Za-z0-9_-]{1,128}`. */
  streamId: "AUDITGRAPH_E_LEDGER_STREAM_ID",
  /** This process lost a stream's writer lock while holding it: it appends no more to the stream. */
  lockLost: "AUDITGRAPH_E_LEDGER_LOCK_LOST",
  /** A stream's records no longer give the root of a checkpoint signed over them (edited or cut). */
  checkpointMismatch: "AUDITGRAPH_E_LEDGER_CHECKPOINT_MISMATCH",
  /** An event is in the ledger but no signed checkpoint covers it yet. */
  notCovered: "AUDITGRAPH_E_LEDGER_NOT_COVERED",
  /** A consistency proof asked between checkpoints the stream does not have, or in the wrong order. */
  noCheckpoint: "AUDITGRAPH_E_LEDGER_NO_CHECKPOINT",
  /** A proof asked over records that retention has removed. */
  expired: "AUDITGRAPH_E_LEDGER_EXPIRED",
  /** A stream holds fewer records than a checkpoint signed over it (its tail was cut). */
  short: "AUDITGRAPH_E_LEDGER_SHORT",
  /** A trace's records moved while they were read (a cut or expiry meanwhile): read again. */
  traceMoved: "AUDITGRAPH_E_LEDGER_TRACE_MOVED",
  /** No legal hold has that id. */
  holdNotFound: "AUDITGRAPH_E_LEDGER_HOLD_NOT_FOUND",
  /** The legal hold was released already. */
  holdReleased: "AUDITGRAPH_E_LEDGER_HOLD_RELEASED",
  /** A `readStream` bound is not a whole number from 0 (or Infinity). */
  readBound: "AUDITGRAPH_E_LEDGER_READ_BOUND",
  /** The PostgreSQL ledger's layout is newer than this auditgraph knows. */
  layoutNewer: "AUDITGRAPH_E_LEDGER_LAYOUT_NEWER",
  /** The checkpoint signing key is not an Ed25519 private key. */
  signingKey: "AUDITGRAPH_E_CHECKPOINT_SIGNING_KEY",
  /** A log origin (the name checkpoint notes are signed under) is empty, or has a space, a '+' or a non-printable character. */
  checkpointOrigin: "AUDITGRAPH_E_CHECKPOINT_ORIGIN",
  /** A signed note, verifier key or checkpoint note body is not in its C2SP format. */
  noteMalformed: "AUDITGRAPH_E_NOTE_MALFORMED",
  /** A note's signature by a known key does not verify, or no known key signed the note. */
  noteUnverified: "AUDITGRAPH_E_NOTE_UNVERIFIED",
  /** A proof bundle's checkpoint signature does not verify with the public key given. */
  badSignature: "AUDITGRAPH_E_PROOF_BAD_SIGNATURE",
  /** A proof bundle's parts do not belong together (stream, size or position differ). */
  proofMismatch: "AUDITGRAPH_E_PROOF_MISMATCH",
  /** A Merkle proof does not prove what is claimed. */
  merkleProof: "AUDITGRAPH_E_MERKLE_PROOF_INVALID",
  /** A Merkle tree function was given a size, index, range or hash out of its bounds. */
  merkleRange: "AUDITGRAPH_E_MERKLE_RANGE",
} as const satisfies Record<string, ErrorCode>;

/** An error of the ledger package, with its code. */
export const ledgerError = (code: ErrorCode, message: string, options?: ErrorOptions): AuditgraphError => new AuditgraphError(code, message, options);

/** Thrown by the Merkle verifiers whenever a proof does not prove what is claimed. */
export class MerkleProofError extends AuditgraphError {
  override name = "MerkleProofError";
  constructor(message: string, options?: ErrorOptions) {
    super(LedgerErrorCodes.merkleProof, message, options);
  }
}

/**
 * A Merkle tree function's argument out of bounds. A RangeError, as callers have always been
 * able to catch it as one, carrying its code as every auditgraph error does.
 */
export class MerkleRangeError extends RangeError {
  readonly code: ErrorCode = LedgerErrorCodes.merkleRange;
}
