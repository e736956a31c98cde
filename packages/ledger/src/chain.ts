import { hash as hashOnce } from "node:crypto";
import { GENESIS_HASH, sealRecordBytes, type StoredEvent, type LedgerRecord } from "@auditgraph/core";
import { verifyCheckpointSignature, type Checkpoint, type CheckpointSigner } from "./checkpoint.js";
import { CompactTree, consistencyProof, inclusionProof, leafHash, scratch, subtreesAfter } from "./merkle.js";
import type { ConsistencyBundle, InclusionBundle } from "./proof.js";
import type { ExpiredRange } from "./retention.js";

/** The tree as the expired range `range` left it (empty when nothing has expired). */
export const treeAfter = (range: ExpiredRange | undefined): CompactTree =>
  range
    ? CompactTree.restore(
        range.to,
        range.frontier.map((h) => Buffer.from(h, "hex")),
      )
    : new CompactTree();
import type { StreamSummary, VerifyFailure, VerifyOptions } from "./types.js";
import { LedgerErrorCodes, ledgerError } from "./errors.js";

/**
 * The end of one stream as its writer knows it: next position, last hash, the Merkle leaves
 * and the last signed checkpoint. Every backend appends through this, so the chain, the tree
 * and the checkpoints are built the same way whatever stores the records.
 */
export class StreamTail {
  nextPosition: number;
  lastHash: string;
  readonly tree: CompactTree;
  /**
   * Whether the records read so far reproduce the last signed checkpoint's root, checked when
   * the tree passes its size: a stream that does not must never be signed again.
   */
  private extendsLastCheckpoint: boolean;

  /** `expired`: the range the stream's first live record follows, if its start has expired. */
  constructor(
    readonly streamId: string,
    private lastCheckpoint: Checkpoint | undefined,
    expired?: ExpiredRange,
  ) {
    this.tree = treeAfter(expired);
    this.nextPosition = expired?.to ?? 0;
    this.lastHash = expired?.lastHash ?? GENESIS_HASH;
    this.extendsLastCheckpoint =
      lastCheckpoint === undefined ||
      lastCheckpoint.treeSize === 0 ||
      (lastCheckpoint.treeSize === this.tree.size && this.tree.root().toString("hex") === lastCheckpoint.rootHash);
  }

  /** Takes in a stored record (its canonical JSON, as stored: text or its UTF-8 bytes); gives its leaf hash. */
  absorb(stored: string | Buffer, record: Pick<LedgerRecord, "position" | "hash">): Buffer {
    const leaf = leafHash(stored);
    this.tree.append(leaf);
    this.nextPosition = record.position + 1;
    this.lastHash = record.hash;
    if (this.lastCheckpoint && this.tree.size === this.lastCheckpoint.treeSize) {
      this.extendsLastCheckpoint = this.tree.root().toString("hex") === this.lastCheckpoint.rootHash;
    }
    return leaf;
  }

  /** The next record for `event`, already absorbed: store `bytes` exactly (`leaf` is its leaf hash, for the tiles). */
  seal(event: StoredEvent, recordedAt: string): { record: LedgerRecord; bytes: Buffer; leaf: Buffer } {
    const sealed = sealRecordBytes({ position: this.nextPosition, streamId: this.streamId, recordedAt, prevHash: this.lastHash, event });
    const leaf = this.absorb(sealed.bytes, sealed.record);
    return { ...sealed, leaf };
  }

  /**
   * Signs the current tree head, only if the tree extends the last one signed (its first
   * records give that checkpoint's root): a checkpoint inconsistent with an earlier one is never made.
   */
  sign(signer: CheckpointSigner): Checkpoint {
    const previous = this.lastCheckpoint;
    if (previous && (this.tree.size < previous.treeSize || !this.extendsLastCheckpoint)) {
      throw ledgerError(
        LedgerErrorCodes.checkpointMismatch,
        `stream ${this.streamId}: the records no longer give the root signed for size ${previous.treeSize} at ${previous.time}; refusing to sign (run \`auditgraph verify\`)`,
      );
    }
    const checkpoint = signer.sign({
      streamId: this.streamId,
      treeSize: this.tree.size,
      rootHash: this.tree.root().toString("hex"),
      time: new Date().toISOString(),
    });
    this.lastCheckpoint = checkpoint;
    this.extendsLastCheckpoint = true;
    return checkpoint;
  }
}

/** The members that end a stored record's canonical JSON (they sort after `event`). */
const SEAL = /,"hash":"([0-9a-f]{64})","position":(\d{1,16}),"prevHash":"([0-9a-f]{64})","recordedAt":"[^"\\]*","streamId":"[A-Za-z0-9_.-]{1,132}"\}$/;
const HASH_MEMBER = Buffer.from(',"hash":"');

/** position, prevHash and hash of a stored record read from its end, or undefined if it is not in the form the ledger writes. */
function sealOf(body: Buffer): Pick<LedgerRecord, "position" | "prevHash" | "hash"> | undefined {
  // The members are ASCII: the tail is read without decoding the whole record.
  const match = SEAL.exec(body.toString("latin1", Math.max(0, body.length - 400)));
  return match ? { hash: match[1]!, position: Number(match[2]), prevHash: match[3]! } : undefined;
}

/** `textSealed` over bytes: SHA-256 of the record without its `hash` member is that hash. */
function bytesSealed(body: Buffer, hash: string): boolean {
  const at = body.lastIndexOf(HASH_MEMBER);
  const end = at + HASH_MEMBER.length + 64;
  if (at === -1 || body[end] !== 0x22 || body.toString("latin1", at + HASH_MEMBER.length, end) !== hash) return false;
  const unsealed = scratch(body.length - (end + 1 - at));
  body.copy(unsealed, 0, 0, at);
  body.copy(unsealed, at, end + 1);
  return hashOnce("sha256", unsealed, "hex") === hash;
}

/** Stored lines (strings, as PostgreSQL gives them) as the byte batches `verifyStream` reads. */
export async function* asLineBatches(texts: AsyncIterable<string>, size = 1000): AsyncGenerator<Buffer[]> {
  let batch: Buffer[] = [];
  for await (const text of texts) {
    batch.push(Buffer.from(text, "utf8"));
    if (batch.length === size) {
      yield batch;
      batch = [];
    }
  }
  if (batch.length > 0) yield batch;
}

/**
 * Recomputes a stream from its first record (its stored texts, in storage order): positions,
 * the hash chain, each record's hash, then each checkpoint's root and signature.
 * `positionExists` tells a reorder from a gap.
 */
export async function verifyStream(
  streamId: string,
  lines: AsyncIterable<readonly Buffer[]>,
  checkpoints: Checkpoint[],
  publicKeyPem: string | undefined,
  positionExists: (position: number) => Promise<boolean>,
  expired?: ExpiredRange,
  onProgress?: VerifyOptions["onProgress"],
): Promise<StreamSummary | VerifyFailure> {
  let expectedPrev = expired?.lastHash ?? GENESIS_HASH;
  let position = expired?.to ?? 0;
  const tree = treeAfter(expired);
  // Checked as the tree passes each checkpoint's size: one pass, whatever their number. Those over
  // expired records alone cannot be recomputed; the expired range's own checkpoint, at its end,
  // must give the root its frontier gives, and so anchors what follows.
  const all = expired ? [...checkpoints, expired.checkpoint] : checkpoints;
  const pending = all.filter((c) => c.treeSize >= position).sort((a, b) => a.treeSize - b.treeSize);
  const fail = (reason: VerifyFailure["reason"], detail: string, eventId: string | null): VerifyFailure => ({ streamId, position, eventId, reason, detail });
  while (expired && pending[0]?.treeSize === tree.size) {
    const failure = checkCheckpoint(pending.shift()!);
    if (failure) return failure;
  }
  // Bytes, in batches: decoding each record and awaiting each line would cost more than hashing it.
  for await (const batch of lines) {
    for (const line of batch) {
      // Only a failing record needs its event id read out of the raw text.
      const eventIdHint = () => /"eventId":"([^"]+)"/.exec(line.toString("utf8"))?.[1] ?? null;
      if (line[line.length - 1] !== 0x0a) return fail("torn", "last record is incomplete (no line end)", eventIdHint());
      const body = line.subarray(0, -1);
      // The record's own members close its canonical text, so they are read from there without
      // parsing the event: parsing is most of the cost of a verify, and the hash covers it anyway.
      let record = sealOf(body);
      if (!record) {
        try {
          record = JSON.parse(body.toString("utf8")) as LedgerRecord;
        } catch {
          return fail("unparseable", "record is not valid JSON", eventIdHint());
        }
      }
      if (record.position !== position) {
        const reason = record.position < position || (await positionExists(position)) ? "reorder" : "gap";
        return fail(reason, `expected position ${position}, found ${String(record.position)}`, eventIdHint());
      }
      if (record.prevHash !== expectedPrev) return fail("chain-broken", "prevHash does not match the previous record's hash", eventIdHint());
      if (!bytesSealed(body, record.hash)) return fail("edited", "content does not match its hash", eventIdHint());
      tree.append(leafHash(body));
      expectedPrev = record.hash;
      position += 1;
      while (pending[0]?.treeSize === tree.size) {
        const failure = checkCheckpoint(pending.shift()!);
        if (failure) return failure;
      }
    }
    onProgress?.({ streamId, verified: position - (expired?.to ?? 0) });
  }
  const covered = pending[0];
  if (covered && covered.treeSize > 0) {
    return fail("truncated", `a checkpoint of ${covered.time} covers ${covered.treeSize} records; only ${position} remain`, null);
  }
  return {
    streamId,
    count: position - (expired?.to ?? 0),
    head: expectedPrev,
    root: tree.root().toString("hex"),
    checkpoints: checkpoints.length,
    signaturesVerified: publicKeyPem ? checkpoints.length : 0,
    ...(expired ? { expired: { from: 0, to: expired.to } } : {}),
  };

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
  expired?: ExpiredRange,
): Promise<InclusionBundle | undefined> {
  const first = expired?.to ?? 0;
  const leaves: Buffer[] = [];
  let found: { record: LedgerRecord; index: number } | undefined;
  for await (const text of texts) {
    if (!text.endsWith("\n")) break;
    if (!found && text.includes(eventId)) {
      const record = JSON.parse(text) as LedgerRecord;
      if (record.event.eventId === eventId) found = { record, index: first + leaves.length };
    }
    leaves.push(leafHash(text.slice(0, -1)));
  }
  if (!found) return undefined;
  if (!latest || latest.treeSize <= found.index) {
    throw notCovered(eventId, streamId, found.index);
  }
  const proof = inclusionProof(subtreesAfter(treeAfter(expired), leaves), found.index, latest.treeSize);
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
  expired?: ExpiredRange,
): Promise<ConsistencyBundle> {
  const { from, to, first } = consistencyEnds(streamId, checkpoints, fromSize, toSize, expired);
  const leaves: Buffer[] = [];
  for await (const text of texts) {
    if (first + leaves.length === to.treeSize || !text.endsWith("\n")) break;
    leaves.push(leafHash(text.slice(0, -1)));
  }
  const held = first + leaves.length;
  if (held < to.treeSize) throw shortStream(streamId, held, to.treeSize);
  const proof = consistencyProof(subtreesAfter(treeAfter(expired), leaves), from.treeSize, to.treeSize);
  return { from, to, proof: proof.map((h) => h.toString("hex")) };
}

/**
 * The checkpoints a consistency proof between sizes `fromSize` and `toSize` (default: the
 * latest) runs between, or the error saying why there is none; `first` is the first live position.
 */
export function consistencyEnds(
  streamId: string,
  checkpoints: Checkpoint[],
  fromSize: number,
  toSize: number | undefined,
  expired: ExpiredRange | undefined,
): { from: Checkpoint; to: Checkpoint; first: number } {
  const from = checkpoints.find((c) => c.treeSize === fromSize);
  const to = toSize === undefined ? checkpoints.at(-1) : checkpoints.find((c) => c.treeSize === toSize);
  const sizes = checkpoints.map((c) => c.treeSize).join(", ") || "none";
  if (!from) throw ledgerError(LedgerErrorCodes.noCheckpoint, `stream ${streamId} has no signed checkpoint of size ${fromSize} (it has: ${sizes})`);
  if (!to) throw ledgerError(LedgerErrorCodes.noCheckpoint, `stream ${streamId} has no signed checkpoint of size ${String(toSize)} (it has: ${sizes})`);
  if (to.treeSize < from.treeSize) throw ledgerError(LedgerErrorCodes.noCheckpoint, `toSize ${to.treeSize} is smaller than fromSize ${from.treeSize}`);
  const first = expired?.to ?? 0;
  if (from.treeSize < first)
    throw ledgerError(
      LedgerErrorCodes.expired,
      `stream ${streamId}: the records up to position ${first} have expired; prove from a checkpoint of size ${first} or more`,
    );
  return { from, to, first };
}

/** The error of a stream holding fewer records than the checkpoint a proof is asked against. */
export const shortStream = (streamId: string, held: number, size: number) =>
  ledgerError(LedgerErrorCodes.short, `stream ${streamId} holds ${held} records, fewer than its checkpoint of size ${size}`);

/** The error of an event not yet covered by a signed checkpoint. */
export const notCovered = (eventId: string, streamId: string, index: number) =>
  ledgerError(LedgerErrorCodes.notCovered, `event ${eventId} (stream ${streamId}, position ${index}) is not yet covered by a signed checkpoint`);
