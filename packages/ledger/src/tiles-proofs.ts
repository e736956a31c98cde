/**
 * Inclusion and consistency bundles made from a stream's tiles: O(log n) stored hashes read
 * instead of every record hashed. The bundles are the ones chain.ts makes from the records
 * (same proof, same checkpoint); a proof from tiles is checked against the signed roots before
 * it is given, and when tiles cannot give one that checks (tiles lost over expired records, a
 * store out of step with the records) the caller makes it from the records as before.
 */
import type { LedgerRecord } from "@auditgraph/core";
import type { Checkpoint } from "./checkpoint.js";
import { consistencyEnds, notCovered, shortStream, treeAfter } from "./chain.js";
import { leafHash, rootFromInclusionProof, verifyConsistency } from "./merkle.js";
import type { ConsistencyBundle, InclusionBundle } from "./proof.js";
import type { ExpiredRange } from "./retention.js";
import { TileReader, tileConsistencyProof, tileInclusionProof, type TileStore } from "./tiles-tree.js";

/** A record found by its event id: as parsed, as stored (canonical JSON, no line end), and its position. */
export interface FoundRecord {
  record: LedgerRecord;
  text: string;
  index: number;
}

const hex = (hashes: Buffer[]) => hashes.map((h) => h.toString("hex"));

/**
 * The inclusion bundle of `found` against the stream's latest checkpoint, from tiles; undefined
 * when the tiles do not give a proof that reaches the checkpoint's root. Throws as the records
 * path does when no checkpoint covers the record yet.
 */
export async function proveInclusionFromTiles(
  eventId: string,
  streamId: string,
  found: FoundRecord,
  latest: Checkpoint | undefined,
  store: TileStore,
  expired?: ExpiredRange,
): Promise<InclusionBundle | undefined> {
  if (!latest || latest.treeSize <= found.index) throw notCovered(eventId, streamId, found.index);
  try {
    const reader = new TileReader(store, expired?.to ?? 0);
    const proof = await tileInclusionProof(reader, found.index, latest.treeSize, expired && treeAfter(expired));
    const root = rootFromInclusionProof(leafHash(found.text), found.index, latest.treeSize, proof);
    if (root.toString("hex") !== latest.rootHash) return undefined;
    return { record: found.record, leafIndex: found.index, treeSize: latest.treeSize, proof: hex(proof), checkpoint: latest };
  } catch {
    return undefined;
  }
}

/**
 * The consistency bundle between the checkpoints of `fromSize` and `toSize` (default: the
 * latest), from tiles; `held` is how many records the stream holds (positions, expired ones
 * included). Throws as the records path does; undefined when tiles give no proof that checks.
 */
export async function proveConsistencyFromTiles(
  streamId: string,
  checkpoints: Checkpoint[],
  fromSize: number,
  toSize: number | undefined,
  held: number,
  store: TileStore,
  expired?: ExpiredRange,
): Promise<ConsistencyBundle | undefined> {
  const { from, to, first } = consistencyEnds(streamId, checkpoints, fromSize, toSize, expired);
  if (held < to.treeSize) throw shortStream(streamId, Math.max(held, first), to.treeSize);
  // Sizes the proof functions refuse: left to the records path, which refuses them as ever.
  if (from.treeSize === 0) return undefined;
  try {
    const reader = new TileReader(store, first);
    const proof = await tileConsistencyProof(reader, from.treeSize, to.treeSize, expired && treeAfter(expired));
    verifyConsistency(from.treeSize, to.treeSize, proof, Buffer.from(from.rootHash, "hex"), Buffer.from(to.rootHash, "hex"));
    return { from, to, proof: hex(proof) };
  } catch {
    return undefined;
  }
}
