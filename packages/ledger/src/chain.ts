import { GENESIS_HASH, canonicalJson, recordHash, sealRecord, type AuditEvent, type LedgerRecord } from "@auditgraph/core";
import { verifyCheckpointSignature, type Checkpoint, type CheckpointSigner } from "./checkpoint.js";
import { CompactTree, consistencyProof, inclusionProof, leafHash, rootOf, verifyConsistency } from "./merkle.js";
import type { InclusionBundle } from "./proof.js";
import type { StreamSummary, VerifyFailure } from "./types.js";

/**
 * The end of one stream as its writer knows it: next position, last hash, the Merkle leaves
 * and the last signed checkpoint. Every backend appends through this, so the chain, the tree
 * and the checkpoints are built the same way whatever stores the records.
 */
export class StreamTail {
  nextPosition = 0;
  lastHash = GENESIS_HASH;
  readonly leaves: Buffer[] = [];
  readonly tree = new CompactTree();

  constructor(
    readonly streamId: string,
    public lastCheckpoint: Checkpoint | undefined,
  ) {}

  /** Takes in a stored record (its canonical JSON text, as stored). */
  absorb(json: string, record: Pick<LedgerRecord, "position" | "hash">): void {
    const leaf = leafHash(json);
    this.leaves.push(leaf);
    this.tree.append(leaf);
    this.nextPosition = record.position + 1;
    this.lastHash = record.hash;
  }

  /** The next record for `event`, already absorbed: store `json` exactly. */
  seal(event: AuditEvent, recordedAt: string): { record: LedgerRecord; json: string } {
    const record = sealRecord({ position: this.nextPosition, streamId: this.streamId, recordedAt, prevHash: this.lastHash, event });
    const json = canonicalJson(record);
    this.absorb(json, record);
    return { record, json };
  }

  /** Signs the current tree head after checking it extends the last one signed: never an inconsistent one. */
  sign(signer: CheckpointSigner): Checkpoint {
    const root = this.tree.root();
    const previous = this.lastCheckpoint;
    if (previous) {
      const proof = consistencyProof(this.leaves, previous.treeSize, this.tree.size);
      verifyConsistency(previous.treeSize, this.tree.size, proof, Buffer.from(previous.rootHash, "hex"), root);
    }
    const checkpoint = signer.sign({ streamId: this.streamId, treeSize: this.tree.size, rootHash: root.toString("hex"), time: new Date().toISOString() });
    this.lastCheckpoint = checkpoint;
    return checkpoint;
  }
}

/**
 * Recomputes a stream from its first record (its stored texts, in storage order): positions,
 * the hash chain, each record's hash, then each checkpoint's root and signature.
 * `positionExists` tells a reorder from a gap.
 */
export async function verifyStream(
  streamId: string,
  texts: AsyncIterable<string>,
  checkpoints: Checkpoint[],
  publicKeyPem: string | undefined,
  positionExists: (position: number) => Promise<boolean>,
): Promise<StreamSummary | VerifyFailure> {
  let expectedPrev = GENESIS_HASH;
  let position = 0;
  const leaves: Buffer[] = [];
  const fail = (reason: VerifyFailure["reason"], detail: string, eventId: string | null): VerifyFailure => ({ streamId, position, eventId, reason, detail });
  for await (const text of texts) {
    const eventIdHint = /"eventId":"([^"]+)"/.exec(text)?.[1] ?? null;
    if (!text.endsWith("\n")) return fail("torn", "last record is incomplete (no line end)", eventIdHint);
    let record: LedgerRecord;
    try {
      record = JSON.parse(text) as LedgerRecord;
    } catch {
      return fail("unparseable", "record is not valid JSON", eventIdHint);
    }
    const eventId = typeof record.event?.eventId === "string" ? record.event.eventId : eventIdHint;
    if (record.position !== position) {
      const reason = record.position < position || (await positionExists(position)) ? "reorder" : "gap";
      return fail(reason, `expected position ${position}, found ${String(record.position)}`, eventId);
    }
    if (record.prevHash !== expectedPrev) return fail("chain-broken", "prevHash does not match the previous record's hash", eventId);
    if (recordHash(record) !== record.hash) return fail("edited", "content does not match its hash", eventId);
    leaves.push(leafHash(text.slice(0, -1)));
    expectedPrev = record.hash;
    position += 1;
  }
  for (const checkpoint of checkpoints) {
    if (checkpoint.treeSize > leaves.length) {
      return fail("truncated", `a checkpoint of ${checkpoint.time} covers ${checkpoint.treeSize} records; only ${leaves.length} remain`, null);
    }
    if (rootOf(leaves, 0, checkpoint.treeSize).toString("hex") !== checkpoint.rootHash) {
      position = checkpoint.treeSize - 1;
      return fail("checkpoint-mismatch", `the records do not give the root signed at ${checkpoint.time} for size ${checkpoint.treeSize}`, null);
    }
    if (publicKeyPem && !verifyCheckpointSignature(checkpoint, publicKeyPem)) {
      position = checkpoint.treeSize - 1;
      return fail("bad-signature", `the checkpoint of ${checkpoint.time} (size ${checkpoint.treeSize}) is not signed by this key`, null);
    }
  }
  return { streamId, count: position, head: expectedPrev, root: rootOf(leaves).toString("hex"), checkpoints: checkpoints.length };
}

/** An inclusion bundle for `eventId` if the stream (its stored texts, in order) holds it. */
export async function proveInStream(
  eventId: string,
  streamId: string,
  texts: AsyncIterable<string>,
  latest: Checkpoint | undefined,
): Promise<InclusionBundle | undefined> {
  const leaves: Buffer[] = [];
  let found: { record: LedgerRecord; index: number } | undefined;
  for await (const text of texts) {
    if (!text.endsWith("\n")) break;
    if (!found && text.includes(eventId)) {
      const record = JSON.parse(text) as LedgerRecord;
      if (record.event.eventId === eventId) found = { record, index: leaves.length };
    }
    leaves.push(leafHash(text.slice(0, -1)));
  }
  if (!found) return undefined;
  if (!latest || latest.treeSize <= found.index) {
    throw new Error(`event ${eventId} (stream ${streamId}, position ${found.index}) is not yet covered by a signed checkpoint`);
  }
  const proof = inclusionProof(leaves, found.index, latest.treeSize);
  return { record: found.record, leafIndex: found.index, treeSize: latest.treeSize, proof: proof.map((h) => h.toString("hex")), checkpoint: latest };
}
