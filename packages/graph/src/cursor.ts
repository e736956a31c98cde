import neo4j, { type ManagedTransaction } from "neo4j-driver";
import { z } from "zod";
import { AuditgraphError, GENESIS_HASH, isErasure, parseWith, shardOfStream, streamIdFor, type PlainRecord } from "@auditgraph/core";
import { StatementPipeline, queueProjection } from "./project.js";

const Hash = z.string().regex(/^[0-9a-f]{64}$/, "must be 64 lower-case hex digits (a record hash)");

/**
 * A contiguous run of one ledger stream's positions, `from` to `from + hashes.length - 1`, as the
 * ledger holds it: each position's record hash, and the hash the first one chains to. The records
 * projected with it are those of the run that can be read (an erased subject's are left out), but
 * the run is what the cursor moves over, so that a range of unreadable records is not a gap.
 */
export const ProjectionRangeSchema = z.object({
  /** The ledger the range is read from (`Ledger.id()`): the cursor is that ledger's, and another's is refused. */
  ledgerId: z.string().min(1),
  streamId: z.string().min(1),
  from: z.int().nonnegative(),
  /** The `prevHash` of the record at `from`: what the cursor's hash must be to extend it. */
  prevHash: Hash,
  hashes: z.array(Hash).min(1),
  /**
   * The run starts at the stream's first live record and the cursor is to be taken over whatever
   * position it holds: a rebuild, or a cursor of this ledger found off its chain (see `RangeOutcome`
   * "mismatch"). Never another ledger's cursor: that is "foreign" even then.
   */
  restart: z.boolean().default(false),
  /**
   * Restarts, taking the cursor over even from another ledger: the stream's graph is handed over
   * to this ledger (`rebuild-graph --replace`, after deleting the tenant's nodes; the demo's sample tenant).
   */
  handOver: z.boolean().default(false),
});
export type ProjectionRange = z.input<typeof ProjectionRangeSchema>;

/**
 * The last projected record of a stream: its position (-1: none) and hash, and the ledger it was
 * projected from (none on a cursor made before ledgers had ids: the first ledger whose chain it is
 * on claims it). One cursor per stream, whichever ledger: its lock is what keeps two ledgers from
 * projecting one tenant's graph at once.
 */
export const ProjectionCursorSchema = z.object({
  ledgerId: z.string().min(1).optional(),
  streamId: z.string(),
  position: z.int().min(-1),
  hash: Hash,
});
export type ProjectionCursor = z.infer<typeof ProjectionCursorSchema>;

/**
 * What projecting a range did. Only "projected" wrote anything; every other outcome is the cursor
 * as it stood, for the caller to act on:
 * - "behind": the cursor already covers the range (another worker projected it); nothing to do.
 * - "gap": the cursor ends before the range: project from `position + 1` first.
 * - "ahead": the cursor ends after the range, so the range cannot tell whether it is on the same
 *   chain: check the ledger's record at `position` against `hash`.
 * - "mismatch": the cursor is this ledger's but its hash is not the ledger's at its position (the
 *   ledger was restored from an older copy): project from the start, restarting.
 * - "foreign": the stream's graph is projected from another ledger (`ledgerId`; null: a cursor from
 *   before ledger ids whose chain is not this ledger's). Nothing is written: see `ForeignProjectionError`.
 */
export type RangeOutcome =
  | { status: "projected"; position: number; hash: string; projected: number }
  | { status: "behind" | "gap" | "ahead" | "mismatch"; position: number; hash: string }
  | { status: "foreign"; position: number; hash: string; ledgerId: string | null };

/**
 * The tenant whose stream (any shard) this is, where the stream id shows it: by its base stream
 * (ids that are not key-safe are hashed).
 */
const tenantOf = (streamId: string) => {
  const { base } = shardOfStream(streamId);
  const tenant = base.startsWith("tenant-") ? base.slice("tenant-".length) : undefined;
  return tenant !== undefined && streamIdFor(tenant) === base ? tenant : undefined;
};

/**
 * A stream whose graph another ledger projects: this ledger's worker leaves it alone (its appends
 * and acks go on) rather than project over the other's graph, and says what to do.
 */
export class ForeignProjectionError extends AuditgraphError {
  override readonly name = "ForeignProjectionError";
  declare readonly code: "AUDITGRAPH_PROJECTION_FOREIGN";
  constructor(
    readonly streamId: string,
    readonly ledgerId: string,
    readonly ownerLedgerId: string | null,
  ) {
    const tenant = tenantOf(streamId);
    const owner = ownerLedgerId === null ? "a ledger from before ledger ids (its chain is not this ledger's)" : `ledger ${ownerLedgerId}`;
    super(
      "AUDITGRAPH_PROJECTION_FOREIGN",
      `stream ${streamId}${tenant === undefined ? "" : ` (tenant ${JSON.stringify(tenant)})`}: this graph database holds its projection from ${owner}, not from this ledger ${ledgerId}; ` +
        `not projecting it (appends go on, into this ledger). Give this ledger its own graph database (NEO4J_DATABASE), or hand the tenant's graph over to this ledger with ` +
        `\`auditgraph rebuild-graph --tenant ${tenant ?? "<tenant>"} --replace\``,
    );
  }
}

// Takes the node's write lock (a SET does, even one undone at once) before anything is read: two
// workers projecting one stream go one after the other from here on. The cursor is read in a
// statement of its own, after the lock, so the second sees what the first committed; a value read
// in the locking statement itself could be the one from before the wait, and written back stale.
const LOCK_CURSOR = `
MERGE (c:ProjectionCursor {streamId: $streamId})
ON CREATE SET c.position = -1, c.hash = $genesis, c.ledgerId = $ledgerId
SET c.locked = true
REMOVE c.locked`;

const READ_CURSOR = `
MATCH (c:ProjectionCursor {streamId: $streamId})
RETURN c.position AS position, c.hash AS hash, c.ledgerId AS ledgerId`;

// Only ever raised, except by a restart (a cursor off this ledger's chain) or a hand-over; either way the cursor is this ledger's after.
const MOVE_CURSOR = `
MATCH (c:ProjectionCursor {streamId: $streamId})
WITH c, $restart OR $position > c.position AS move
SET c.position = CASE WHEN move THEN $position ELSE c.position END,
    c.hash = CASE WHEN move THEN $hash ELSE c.hash END,
    c.ledgerId = $ledgerId`;

const READ_CURSORS = `
MATCH (c:ProjectionCursor) WHERE $streamId IS NULL OR c.streamId = $streamId
RETURN c.ledgerId AS ledgerId, c.streamId AS streamId, c.position AS position, c.hash AS hash ORDER BY streamId`;

/**
 * Batches that end at each erasure: `projectRecords` projects a batch's own events before its
 * erasures, so an event recorded after an erasure (the same user, returning with a new key) must
 * not share its batch, or the erasure would be applied to it too.
 */
export function splitAtErasures(records: PlainRecord[]): PlainRecord[][] {
  const chunks: PlainRecord[][] = [[]];
  for (const r of records) {
    chunks.at(-1)!.push(r);
    if (isErasure(r.event)) chunks.push([]);
  }
  return chunks.filter((c) => c.length > 0);
}

/**
 * Projects a range of a stream and moves its cursor, in the caller's write transaction, so the
 * cursor never runs ahead of the graph. The cursor is locked first: of the range, only the
 * positions after it are projected, and only when the range is on the cursor's chain and
 * starts no later than just after it, so the projection never advances past a gap and never
 * projects an event again once a later one (an erasure) has been. A cursor another ledger has moved
 * is "foreign", restart or not (a hand-over only takes it): one ledger never projects over another's graph.
 */
export async function projectRangeTx(tx: ManagedTransaction, given: ProjectionRange, records: PlainRecord[]): Promise<RangeOutcome> {
  const range = parseWith(ProjectionRangeSchema, given, "projection range");
  const { ledgerId, streamId, from, hashes } = range;
  const through = from + hashes.length - 1;
  for (const r of records) {
    if (r.streamId !== streamId || r.position < from || r.position > through)
      throw new AuditgraphError(
        "AUDITGRAPH_E_PROJECTION_RANGE",
        `projection range: record ${r.streamId}#${r.position} is not in ${streamId} positions ${from}..${through}`,
      );
  }
  // The read is sent right behind the lock (one round trip): the server still runs it after the lock is taken.
  const statements = new StatementPipeline(tx);
  void statements.run(LOCK_CURSOR, { streamId, genesis: GENESIS_HASH, ledgerId });
  const read = statements.run(READ_CURSOR, { streamId });
  await statements.flush();
  const row = (await read).records[0]!;
  const cursor = { position: row.get("position") as number, hash: row.get("hash") as string };
  const owner = (row.get("ledgerId") as string | null) ?? null;
  // A cursor that has projected nothing is no one's yet.
  if (!range.handOver && cursor.position >= 0 && owner !== null && owner !== ledgerId) return { status: "foreign", ...cursor, ledgerId: owner };
  const restart = range.restart || range.handOver;
  const at = (position: number) => (position === from - 1 ? range.prevHash : hashes[position - from]);
  let after = cursor.position;
  if (!restart) {
    if (cursor.position < from - 1) return { status: "gap", ...cursor };
    if (cursor.position > through) return { status: "ahead", ...cursor };
    // A cursor of -1 holds the genesis hash: a stream's first record (prevHash genesis) extends it.
    if (at(cursor.position) !== cursor.hash)
      return owner === null && cursor.position >= 0 ? { status: "foreign", ...cursor, ledgerId: null } : { status: "mismatch", ...cursor };
    if (cursor.position === through) return { status: "behind", ...cursor };
  } else after = -1;
  const fresh = records.filter((r) => r.position > after).sort((a, b) => a.position - b.position);
  const hash = hashes.at(-1)!;
  // The batch and the cursor's move in one round trip; in order, so each erasure's chunk is
  // projected after the events before it and before those after it.
  try {
    for (const chunk of splitAtErasures(fresh)) queueProjection(statements, chunk);
    void statements.run(MOVE_CURSOR, { streamId, position: neo4j.int(through), hash, restart, ledgerId });
  } catch (error) {
    await statements.flush().catch(() => undefined);
    throw error;
  }
  await statements.flush();
  return { status: "projected", position: through, hash, projected: fresh.length };
}

export async function readCursorsTx(tx: ManagedTransaction, streamId: string | null): Promise<ProjectionCursor[]> {
  const result = await tx.run(READ_CURSORS, { streamId });
  return result.records.map((r) => {
    const { ledgerId, ...rest } = r.toObject() as { ledgerId: string | null };
    return parseWith(ProjectionCursorSchema, ledgerId === null ? rest : { ledgerId, ...rest }, `projection cursor ${String(r.get("streamId"))}`);
  });
}
