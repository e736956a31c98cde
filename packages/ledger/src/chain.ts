import { GENESIS_HASH, sealRecordText, textSealed, type AuditEvent, type LedgerRecord } from "@auditgraph/core";
import { verifyCheckpointSignature, type Checkpoint, type CheckpointSigner } from "./checkpoint.js";
import { CompactTree, consistencyProof, inclusionProof, leafHash } from "./merkle.js";
import type { ConsistencyBundle, InclusionBundle } from "./proof.js";
import type { StreamSummary, VerifyFailure } from "./types.js";

/**
 * The end of one stream as its writer knows it: next position, last hash, the Merkle leaves
 * and the last signed checkpoint. Every backend appends through this, so the chain, the tree
 * and the checkpoints are built the same way whatever stores the records.
 */
export class StreamTail {
  nextPosition = 0;
  lastHash = GENESIS_HASH;
  readonly tree = new CompactTree();
  /**
   * Whether the records read so far reproduce the last signed checkpoint's root, checked when
   * the tree passes its size: a stream that does not must never be signed again.
   */
  private extendsLastCheckpoint: boolean;

  constructor(
    readonly streamId: string,
    private lastCheckpoint: Checkpoint | undefined,
  ) {
    this.extendsLastCheckpoint = lastCheckpoint === undefined || lastCheckpoint.treeSize === 0;
  }

  /** Takes in a stored record (its canonical JSON text, as stored). */
  absorb(json: string, record: Pick<LedgerRecord, "position" | "hash">): void {
    this.tree.append(leafHash(json));
    this.nextPosition = record.position + 1;
    this.lastHash = record.hash;
    if (this.lastCheckpoint && this.tree.size === this.lastCheckpoint.treeSize) {
      this.extendsLastCheckpoint = this.tree.root().toString("hex") === this.lastCheckpoint.rootHash;
    }
  }

  /** The next record for `event`, already absorbed: store `json` exactly. */
  seal(event: AuditEvent, recordedAt: string): { record: LedgerRecord; json: string } {
    const sealed = sealRecordText({ position: this.nextPosition, streamId: this.streamId, recordedAt, prevHash: this.lastHash, event });
    this.absorb(sealed.json, sealed.record);
    return sealed;
  }

  /**
   * Signs the current tree head, only if the tree extends the last one signed (its first
   * records give that checkpoint's root): a checkpoint inconsistent with an earlier one is never made.
   */
  sign(signer: CheckpointSigner): Checkpoint {
    const previous = this.lastCheckpoint;
    if (previous && (this.tree.size < previous.treeSize || !this.extendsLastCheckpoint)) {
      throw new Error(
        `stream ${this.streamId}: the records no longer give the root signed for size ${previous.treeSize} at ${previous.time}; refusing to sign (run \`auditgraph verify\`)`,
      );
    }
    const checkpoint = signer.sign({ streamId: this.streamId, treeSize: this.tree.size, rootHash: this.tree.root().toString("hex"), time: new Date().toISOString() });
    this.lastCheckpoint = checkpoint;
    this.extendsLastCheckpoint = true;
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
  const tree = new CompactTree();
  // Checked as the tree passes each checkpoint's size: one pass, whatever their number.
  const pending = [...checkpoints].sort((a, b) => a.treeSize - b.treeSize);
  const fail = (reason: VerifyFailure["reason"], detail: string, eventId: string | null): VerifyFailure => ({ streamId, position, eventId, reason, detail });
  for await (const text of texts) {
    // Only a failing record needs its event id read out of the raw text.
    const eventIdHint = () => /"eventId":"([^"]+)"/.exec(text)?.[1] ?? null;
    if (!text.endsWith("\n")) return fail("torn", "last record is incomplete (no line end)", eventIdHint());
    let record: LedgerRecord;
    try {
      record = JSON.parse(text) as LedgerRecord;
    } catch {
      return fail("unparseable", "record is not valid JSON", eventIdHint());
    }
    const eventId = typeof record.event?.eventId === "string" ? record.event.eventId : eventIdHint();
    if (record.position !== position) {
      const reason = record.position < position || (await positionExists(position)) ? "reorder" : "gap";
      return fail(reason, `expected position ${position}, found ${String(record.position)}`, eventId);
    }
    if (record.prevHash !== expectedPrev) return fail("chain-broken", "prevHash does not match the previous record's hash", eventId);
    if (!textSealed(text.slice(0, -1), record.hash)) return fail("edited", "content does not match its hash", eventId);
    tree.append(leafHash(text.slice(0, -1)));
    expectedPrev = record.hash;
    position += 1;
    while (pending[0]?.treeSize === tree.size) {
      const failure = checkCheckpoint(pending.shift()!);
      if (failure) return failure;
    }
  }
  const covered = pending[0];
  if (covered && covered.treeSize > 0) {
    return fail("truncated", `a checkpoint of ${covered.time} covers ${covered.treeSize} records; only ${position} remain`, null);
  }
  return { streamId, count: position, head: expectedPrev, root: tree.root().toString("hex"), checkpoints: checkpoints.length };

  /** A failing checkpoint is reported at the last record it covers. */
  function checkCheckpoint(checkpoint: Checkpoint): VerifyFailure | undefined {
    const at = (failure: VerifyFailure) => ({ ...failure, position: checkpoint.treeSize - 1 });
    if (tree.root().toString("hex") !== checkpoint.rootHash) {
      return at(fail("checkpoint-mismatch", `the records do not give the root signed at ${checkpoint.time} for size ${checkpoint.treeSize}`, null));
    }
    if (publicKeyPem && !verifyCheckpointSignature(checkpoint, publicKeyPem)) {
      return at(fail("bad-signature", `the checkpoint of ${checkpoint.time} (size ${checkpoint.treeSize}) is not signed by this key`, null));
    }
    return undefined;
  }
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

/**
 * The consistency bundle between the stream's signed checkpoints of `fromSize` and `toSize`
 * records (default: the latest), from its stored texts.
 */
export async function proveConsistencyInStream(
  streamId: string,
  texts: AsyncIterable<string>,
  checkpoints: Checkpoint[],
  fromSize: number,
  toSize?: number,
): Promise<ConsistencyBundle> {
  const from = checkpoints.find((c) => c.treeSize === fromSize);
  const to = toSize === undefined ? checkpoints.at(-1) : checkpoints.find((c) => c.treeSize === toSize);
  const sizes = checkpoints.map((c) => c.treeSize).join(", ") || "none";
  if (!from) throw new RangeError(`stream ${streamId} has no signed checkpoint of size ${fromSize} (it has: ${sizes})`);
  if (!to) throw new RangeError(`stream ${streamId} has no signed checkpoint of size ${String(toSize)} (it has: ${sizes})`);
  if (to.treeSize < from.treeSize) throw new RangeError(`toSize ${to.treeSize} is smaller than fromSize ${from.treeSize}`);
  const leaves: Buffer[] = [];
  for await (const text of texts) {
    if (leaves.length === to.treeSize || !text.endsWith("\n")) break;
    leaves.push(leafHash(text.slice(0, -1)));
  }
  if (leaves.length < to.treeSize) throw new Error(`stream ${streamId} holds ${leaves.length} records, fewer than its checkpoint of size ${to.treeSize}`);
  const proof = consistencyProof(leaves, from.treeSize, to.treeSize);
  return { from, to, proof: proof.map((h) => h.toString("hex")) };
}
