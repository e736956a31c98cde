import { z } from "zod";
import { isStreamOfTenant, type StoredEvent } from "@auditgraph/core";
import type { LedgerRecord } from "@auditgraph/core";
import type { Checkpoint, CheckpointSigner } from "./checkpoint.js";
import type { Retention } from "./retention.js";
import type { ConsistencyBundle, InclusionBundle } from "./proof.js";

export interface AppendResult {
  /** One record per input event, in input order; an event already in the stream maps to its stored record. */
  records: LedgerRecord[];
  /** How many of them are new. */
  appended: number;
}

export const VerifyFailureSchema = z.object({
  streamId: z.string(),
  /** Zero-based position (= line) of the first record that does not match. */
  position: z.number().int(),
  eventId: z.string().nullable(),
  reason: z.enum(["edited", "chain-broken", "gap", "reorder", "unparseable", "torn", "truncated", "checkpoint-mismatch", "bad-signature"]),
  detail: z.string(),
});
export type VerifyFailure = z.infer<typeof VerifyFailureSchema>;

export interface StreamSummary {
  streamId: string;
  count: number;
  /** Hash of the last record (the chain's head). */
  head: string;
  /** RFC 9162 Merkle root over all records. */
  root: string;
  /** Checkpoints (the ledger's and those kept outside it) whose root the records were checked against. */
  checkpoints: number;
  /**
   * Of those, how many had their signature checked: none when no public key was given, so a
   * report never says a signature was verified that was not.
   */
  signaturesVerified: number;
  /** Positions [from, to) removed by retention: reported as expired, not as missing. */
  expired?: { from: number; to: number };
}

/** How far a verify has got: records of `streamId` checked so far (reported after each batch read). */
export interface VerifyProgress {
  streamId: string;
  verified: number;
}

/** What a verify checks beyond the defaults. */
export interface VerifyOptions {
  /** Only these streams (default: every stream, and every stream a kept checkpoint names). */
  streamIds?: readonly string[];
  /** Called as records are checked, so a caller can show progress (the console streams it). */
  onProgress?: (progress: VerifyProgress) => void;
}

export type VerifyReport = { ok: true; count: number; streams: StreamSummary[] } | { ok: false; failure: VerifyFailure; streams: StreamSummary[] };

export const DeadLetterSchema = z.object({
  /** Job id and index of the event in the job: a redelivered job does not add it twice. */
  id: z.string(),
  recordedAt: z.string(),
  jobId: z.string().nullable(),
  reason: z.string(),
  /** The input as received, kept whole so nothing is lost. */
  input: z.unknown(),
  /** `json-text`: `input` is the input's JSON text, as it was too deeply nested to store as a value. */
  inputAs: z.literal("json-text").optional(),
  /**
   * What was set aside: a job's input (absent: dead letters from before kinds), or a ledger record
   * the graph refused ("projection": appended and kept in the ledger, only left out of the graph;
   * then `input` is null and `projection` says which record, with no user content).
   */
  kind: z.enum(["job", "projection"]).optional(),
  projection: z
    .object({
      streamId: z.string(),
      position: z.int().nonnegative(),
      eventId: z.string(),
      tenantId: z.string().optional(),
      /** The graph's error code (e.g. `Neo.DatabaseError.Statement.ExecutionFailed`). */
      code: z.string(),
    })
    .optional(),
});
export type DeadLetter = z.infer<typeof DeadLetterSchema>;

/**
 * One replay of a dead letter: its input submitted again as a new job. Kept apart, append-only:
 * the dead letter itself is never edited, and a replay that fails again is dead-lettered again
 * under the new job's id.
 */
export const DeadLetterReplaySchema = z.object({
  deadLetterId: z.string().min(1),
  replayedAt: z.iso.datetime({ offset: true }),
  queue: z.string().min(1),
  /** The new job's id: its own dead letters, if any, are `<jobId>` and `<jobId>#<index>`. */
  jobId: z.string().min(1),
  /** Who replayed it (an operator id), when given. */
  by: z.string().min(1).optional(),
});
export type DeadLetterReplay = z.infer<typeof DeadLetterReplaySchema>;

/** A partly written last record, cut off when its stream was next opened for writing. */
export interface TornTailRepair {
  streamId: string;
  /** Byte offset where the torn record began (the file's length after the cut). */
  offset: number;
  bytes: number;
  recordedAt: string;
  /** The torn record's event id, where enough of it was written to read one. */
  eventId: string | null;
  /** The file cut, when not the stream's segment: `checkpoints.jsonl` for a torn checkpoint. */
  file?: string;
}

/** What both backends take: checkpoint signing, and where checkpoints go once stored. */
export interface LedgerCheckpointOptions {
  /** Signs a checkpoint (tree head) after every appended batch; without one none is made. */
  signer?: CheckpointSigner;
  /** Called with each checkpoint once it is stored, to hand it to an outside party. */
  onCheckpoint?: (checkpoint: Checkpoint) => void | Promise<void>;
}

/**
 * Which streams a read by trace or event looks in: `streamId`, that stream only; `tenantId`, every
 * stream of that tenant (all its shards, whatever the shard count was when they were written);
 * both, the stream only if it is the tenant's; neither, every stream.
 */
export interface StreamScope {
  streamId?: string;
  tenantId?: string;
}

/** Whether `streamId` is within `scope`. */
export const inScope = (streamId: string, scope: StreamScope): boolean =>
  (scope.streamId === undefined || streamId === scope.streamId) && (scope.tenantId === undefined || isStreamOfTenant(streamId, scope.tenantId));

/** The append-only event store: records by stream, position, event and trace. */
export interface EventStore {
  /**
   * This ledger's id, a UUID made once when the ledger is created (segment files: `ledger.json`
   * in its directory; PostgreSQL: the `ledger_info` row `auditgraph ledger init` writes). The
   * projection's cursors name it, so ledgers that share a graph never project over each other.
   */
  id(): Promise<string>;
  append(streamId: string, events: StoredEvent[], recordedAt?: string): Promise<AppendResult>;
  /** The stream's records with positions in [from, to), in order. */
  readStream(streamId: string, from?: number, to?: number): AsyncIterable<LedgerRecord>;
  /** The record of one event, whichever stream holds it. */
  readEvent(eventId: string): Promise<LedgerRecord | undefined>;
  /**
   * Every record of one trace, stream by stream, in position order; `streamId`: of that stream
   * only; `tenantId`: of that tenant's streams only (a trace is in one shard, but which one
   * depends on the shard count when it was written, so a tenant's read looks in all of them).
   */
  readTrace(traceId: string, options?: StreamScope): Promise<LedgerRecord[]>;
  streams(): Promise<string[]>;
  /** How many live records the stream holds (expired ones not counted), cheaper than reading them. */
  count(streamId: string): Promise<number>;
  /** Lets go of what the ledger holds (locks, files, connections). */
  close(): Promise<void>;
}

/** Proofs over the event store: verification, signed checkpoints, inclusion and consistency. */
export interface Proofs {
  verify(publicKeyPem?: string, kept?: Checkpoint[], options?: VerifyOptions): Promise<VerifyReport>;
  /** The stream's signed checkpoints, oldest first. */
  checkpoints(streamId: string): Promise<Checkpoint[]>;
  latestCheckpoint(streamId: string): Promise<Checkpoint | undefined>;
  /**
   * An event's record, its inclusion proof and the latest checkpoint over it. `streamId`: only
   * that stream; `tenantId`: only that tenant's streams (an id is unique within a tenant only:
   * another tenant's stream may hold it too). An event not there is an error with code
   * AUDITGRAPH_E_LEDGER_NO_EVENT.
   */
  prove(eventId: string, options?: StreamScope): Promise<InclusionBundle>;
  /**
   * That the stream's signed checkpoint of `toSize` records (default: the latest) extends the
   * one of `fromSize`: both checkpoints and the RFC 9162 consistency proof between them.
   */
  proveConsistency(streamId: string, fromSize: number, toSize?: number): Promise<ConsistencyBundle>;
}

/** Inputs set aside (dead letters) and their replays, kept beside the ledger wherever it is. */
export interface DeadLetters {
  deadLetter(entry: DeadLetter): Promise<void>;
  readDeadLetters(): Promise<DeadLetter[]>;
  /** Records that a dead letter was submitted again (kept beside the dead letters: with the ledger, wherever it is). */
  recordDeadLetterReplay(replay: DeadLetterReplay): Promise<void>;
  /** Every replay recorded, oldest first. */
  readDeadLetterReplays(): Promise<DeadLetterReplay[]>;
}

/**
 * The ledger callers use: the event store, its proofs and its dead letters, and retention where
 * the backend keeps it (segment files do; PostgreSQL does not): callers check `retention`, never
 * the backend's class.
 */
export interface Ledger extends EventStore, Proofs, DeadLetters {
  readonly retention: Retention | undefined;
}
