import neo4j, { type ManagedTransaction } from "neo4j-driver";
import { z } from "zod";
import { GENESIS_HASH, isErasure, parseWith, type PlainRecord } from "@auditgraph/core";
import { StatementPipeline, queueProjection } from "./project.js";

const Hash = z.string().regex(/^[0-9a-f]{64}$/, "must be 64 lower-case hex digits (a record hash)");

/**
 * A contiguous run of one ledger stream's positions, `from` to `from + hashes.length - 1`, as the
 * ledger holds it: each position's record hash, and the hash the first one chains to. The records
 * projected with it are those of the run that can be read (an erased subject's are left out), but
 * the run is what the cursor moves over, so that a range of unreadable records is not a gap.
 */
export const ProjectionRangeSchema = z.object({
  streamId: z.string().min(1),
  from: z.int().nonnegative(),
  /** The `prevHash` of the record at `from`: what the cursor's hash must be to extend it. */
  prevHash: Hash,
  hashes: z.array(Hash).min(1),
  /**
   * The run starts at the stream's first live record and the cursor is to be taken over whatever
   * it holds: a rebuild, or a cursor found to be another ledger's (see `RangeOutcome` "mismatch").
   */
  restart: z.boolean().default(false),
});
export type ProjectionRange = z.input<typeof ProjectionRangeSchema>;

/** The last projected record of a stream: its position (-1: none) and hash. */
export const ProjectionCursorSchema = z.object({ streamId: z.string(), position: z.int().min(-1), hash: Hash });
export type ProjectionCursor = z.infer<typeof ProjectionCursorSchema>;

/**
 * What projecting a range did. Only "projected" wrote anything; every other outcome is the cursor
 * as it stood, for the caller to act on:
 * - "behind": the cursor already covers the range (another worker projected it); nothing to do.
 * - "gap": the cursor ends before the range: project from `position + 1` first.
 * - "ahead": the cursor ends after the range, so the range cannot tell whether it is on the same
 *   chain: check the ledger's record at `position` against `hash`.
 * - "mismatch": the cursor's hash is not the ledger's at its position: it was written from another
 *   ledger (a replaced one, or another that shares this database): project from the start, restarting.
 */
export type RangeOutcome =
  | { status: "projected"; position: number; hash: string; projected: number }
  | { status: "behind" | "gap" | "ahead" | "mismatch"; position: number; hash: string };

// Takes the node's write lock (a SET does, even one undone at once) before anything is read: two
// workers projecting one stream go one after the other from here on. The cursor is read in a
// statement of its own, after the lock, so the second sees what the first committed; a value read
// in the locking statement itself could be the one from before the wait, and written back stale.
const LOCK_CURSOR = `
MERGE (c:ProjectionCursor {streamId: $streamId})
ON CREATE SET c.position = -1, c.hash = $genesis
SET c.locked = true
REMOVE c.locked`;

const READ_CURSOR = `
MATCH (c:ProjectionCursor {streamId: $streamId})
RETURN c.position AS position, c.hash AS hash`;

// Only ever raised, except by a restart, which takes over a cursor that is not this ledger's.
const MOVE_CURSOR = `
MATCH (c:ProjectionCursor {streamId: $streamId})
WITH c, $restart OR $position > c.position AS move
SET c.position = CASE WHEN move THEN $position ELSE c.position END,
    c.hash = CASE WHEN move THEN $hash ELSE c.hash END`;

const READ_CURSORS = `
MATCH (c:ProjectionCursor) WHERE $streamId IS NULL OR c.streamId = $streamId
RETURN c.streamId AS streamId, c.position AS position, c.hash AS hash ORDER BY streamId`;

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
 * projects an event again once a later one (an erasure) has been.
 */
export async function projectRangeTx(tx: ManagedTransaction, given: ProjectionRange, records: PlainRecord[]): Promise<RangeOutcome> {
  const range = parseWith(ProjectionRangeSchema, given, "projection range");
  const { streamId, from, hashes } = range;
  const through = from + hashes.length - 1;
  for (const r of records) {
    if (r.streamId !== streamId || r.position < from || r.position > through)
      throw new RangeError(`projection range: record ${r.streamId}#${r.position} is not in ${streamId} positions ${from}..${through}`);
  }
  // The read is sent right behind the lock (one round trip): the server still runs it after the lock is taken.
  const statements = new StatementPipeline(tx);
  void statements.run(LOCK_CURSOR, { streamId, genesis: GENESIS_HASH });
  const read = statements.run(READ_CURSOR, { streamId });
  await statements.flush();
  const row = (await read).records[0]!;
  const cursor = { position: row.get("position") as number, hash: row.get("hash") as string };
  const at = (position: number) => (position === from - 1 ? range.prevHash : hashes[position - from]);
  let after = cursor.position;
  if (!range.restart) {
    if (cursor.position < from - 1) return { status: "gap", ...cursor };
    if (cursor.position > through) return { status: "ahead", ...cursor };
    // A cursor of -1 holds the genesis hash: a stream's first record (prevHash genesis) extends it.
    if (at(cursor.position) !== cursor.hash) return { status: "mismatch", ...cursor };
    if (cursor.position === through) return { status: "behind", ...cursor };
  } else after = -1;
  const fresh = records.filter((r) => r.position > after).sort((a, b) => a.position - b.position);
  const hash = hashes.at(-1)!;
  // The batch and the cursor's move in one round trip; in order, so each erasure's chunk is
  // projected after the events before it and before those after it.
  try {
    for (const chunk of splitAtErasures(fresh)) queueProjection(statements, chunk);
    void statements.run(MOVE_CURSOR, { streamId, position: neo4j.int(through), hash, restart: range.restart });
  } catch (error) {
    await statements.flush().catch(() => undefined);
    throw error;
  }
  await statements.flush();
  return { status: "projected", position: through, hash, projected: fresh.length };
}

export async function readCursorsTx(tx: ManagedTransaction, streamId: string | null): Promise<ProjectionCursor[]> {
  const result = await tx.run(READ_CURSORS, { streamId });
  return result.records.map((r) => parseWith(ProjectionCursorSchema, r.toObject(), `projection cursor ${String(r.get("streamId"))}`));
}
