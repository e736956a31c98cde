import { z } from "zod";
import type { Logger } from "pino";
import type { AuditEvent, LedgerRecord, PlainRecord, SubjectKeyStore } from "@auditgraph/core";
import type { DeadLetter, Ledger } from "@auditgraph/ledger";
import type { Graph } from "@auditgraph/graph";

/** What the projection needs of a graph: ranges with their cursor, and the cursors. */
export type ProjectionGraph = Pick<Graph, "projectRange" | "cursors">;

export const ProjectorSettingsSchema = z.object({
  /** Records projected in one write transaction. */
  batchSize: z.int().positive().default(500),
  /** The first wait after a failed projection (ms); it doubles with each failure in a row, up to `retryMaxMs`. */
  retryMinMs: z.int().positive().default(250),
  retryMaxMs: z.int().positive().default(30_000),
  /**
   * Appended records kept in memory, per stream, to be projected without reading them back. Past
   * this (the graph is slow or down) they are dropped and read from the ledger when their turn
   * comes: the plaintext of a backlog is never held, only its positions.
   */
  maxInHand: z.int().positive().default(10_000),
  /**
   * How long (ms) a stream's projection waits for more appended records when it has caught up
   * and fewer than `batchSize` are in hand: a transaction of a hundred records costs the graph
   * far less per record than ten of ten (the statements per batch are the same), so under load
   * this trades a little lag for throughput. 0: project each job's records as soon as they come.
   */
  lingerMs: z.int().nonnegative().default(200),
});
export type ProjectorSettings = z.input<typeof ProjectorSettingsSchema>;

export interface ProjectorOptions extends ProjectorSettings {
  ledger: Ledger;
  graph: ProjectionGraph;
  /** Opens sealed records read back from the ledger; an erased subject's are left out. */
  keyStore?: SubjectKeyStore;
  logger?: Logger;
  /** Told of each record the graph refused for good and set aside (its dead letter already recorded). */
  onSetAside?: (letter: DeadLetter) => void;
  /** Told of each batch's records once they are in the graph (the worker announces escalation changes from them). */
  onProjected?: (records: PlainRecord[]) => void;
}

/** One stream's projection in this process (the projector's own bookkeeping). */
export interface StreamState {
  streamId: string;
  /** The cursor as this process last saw it; undefined until read from the graph. */
  projected?: number;
  /** The highest position this process appended (or was asked to project) and must see projected. */
  target: number;
  /** Also catch up to the ledger's end (at start: what other processes appended, or left behind). */
  toEnd: boolean;
  /** The cursor is not this ledger's: project the stream from its start and take the cursor over. */
  restart: boolean;
  /** Appended records in the clear, by position, while they are the next ones to project. */
  inHand: Map<number, { record: LedgerRecord; event: AuditEvent }>;
  running?: Promise<void>;
  /** When the oldest record in hand not yet taken by a batch was offered (see `lingerMs`). */
  since?: number;
  /** Ends a linger early: a full batch came into hand, or the projector is closing. */
  wake?: () => void;
  retry?: NodeJS.Timeout;
  failures: number;
  lastError?: string;
  /** Another ledger projects this stream's graph: said once, then tried now and then quietly. */
  foreign?: boolean;
  /** Records this process set aside (projection dead letters) rather than stop the stream. */
  setAside: number;
}

/** Where one stream's projection stands in this process. */
export interface StreamLag {
  streamId: string;
  /** The cursor as this process last saw it (-1: nothing projected; undefined: not read yet). */
  projected: number | undefined;
  /** The highest position this process has to see projected. */
  target: number;
  /** Failed attempts in a row (retried with backoff), and the last one's error. */
  failures: number;
  lastError?: string;
  /** Records set aside by this process: the graph refused them for good (see `dead-letters`). */
  setAside: number;
}
