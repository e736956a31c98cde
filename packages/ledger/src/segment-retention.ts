import { mkdir, open, readdir, readFile, unlink } from "node:fs/promises";
import { join } from "node:path";
import type { z } from "zod";
import { appendSynced, newEventId, parseWith, streamIdFor, subjectRef, type LedgerRecord } from "@auditgraph/core";
import type { Checkpoint } from "./checkpoint.js";
import { LedgerErrorCodes, ledgerError } from "./errors.js";
import { readLines } from "./line-reader.js";
import { CompactTree, leafHash } from "./merkle.js";
import {
  ExpiredRangeSchema,
  HoldRequestSchema,
  LegalHoldSchema,
  RetentionPolicySchema,
  expiresAt,
  holding,
  type ExpireOptions,
  type ExpiredRange,
  type ExpiryReport,
  type HoldRequest,
  type LegalHold,
  type Retention,
} from "./retention.js";
import { EXPIRED, SEGMENT_FILE, type SegmentFiles } from "./segment-files.js";
import type { SegmentWriter, StreamState } from "./segment-writer.js";

const HOLDS = "holds.jsonl";

/** Retention and legal holds of a segment ledger: holds in `holds.jsonl`, expiry by whole segment. */
export class SegmentRetention implements Retention {
  constructor(
    private readonly files: SegmentFiles,
    private readonly writer: SegmentWriter,
  ) {}

  /** Places a legal hold: no record it covers expires until it is released. */
  async placeHold(request: HoldRequest): Promise<LegalHold> {
    const { tenantId, userId, traceId, reason, placedBy } = parseWith(HoldRequestSchema, request, "legal hold");
    const hold = LegalHoldSchema.parse({
      id: newEventId(),
      // The tenant's base stream stands for the tenant: the hold keeps every shard of it (see `holding`).
      streamId: streamIdFor(tenantId),
      ...(userId ? { subject: subjectRef(tenantId, userId) } : {}),
      ...(traceId ? { traceId } : {}),
      reason,
      placedAt: new Date().toISOString(),
      ...(placedBy ? { placedBy } : {}),
    });
    await mkdir(this.files.dir, { recursive: true });
    await appendSynced(join(this.files.dir, HOLDS), `${JSON.stringify({ place: hold })}\n`);
    return hold;
  }

  /** Releases a hold (a new line in the holds file: nothing is edited). */
  async releaseHold(id: string, releasedBy?: string): Promise<LegalHold> {
    const hold = (await this.holds()).find((h) => h.id === id);
    if (!hold) throw ledgerError(LedgerErrorCodes.holdNotFound, `no legal hold with id ${JSON.stringify(id)}`);
    if (hold.releasedAt) throw ledgerError(LedgerErrorCodes.holdReleased, `legal hold ${id} was already released at ${hold.releasedAt}`);
    const release = { id, releasedAt: new Date().toISOString(), ...(releasedBy ? { releasedBy } : {}) };
    await appendSynced(join(this.files.dir, HOLDS), `${JSON.stringify({ release })}\n`);
    return { ...hold, ...release };
  }

  /** Every hold ever placed, released ones with their release. */
  async holds(): Promise<LegalHold[]> {
    const text = await readFile(join(this.files.dir, HOLDS), "utf8").catch(() => "");
    const holds = new Map<string, LegalHold>();
    for (const line of text.split("\n").filter(Boolean)) {
      const entry = JSON.parse(line) as { place?: LegalHold; release?: Pick<LegalHold, "id" | "releasedAt" | "releasedBy"> };
      if (entry.place) holds.set(entry.place.id, LegalHoldSchema.parse(entry.place));
      else if (entry.release && holds.has(entry.release.id)) holds.set(entry.release.id, { ...holds.get(entry.release.id)!, ...entry.release });
    }
    return [...holds.values()];
  }

  /** The runs of records removed by retention, oldest first; they are always the stream's start. */
  expiredRanges(streamId: string): Promise<ExpiredRange[]> {
    return this.files.expiredRanges(streamId);
  }

  /**
   * Removes, from the start of each stream, the whole segments every record of which has passed
   * its retention and is under no legal hold, and whose end is a signed checkpoint that has been
   * exported (is in `exported`): so an outside party can still hold the ledger to what was there.
   * The stream's last segment is never removed. Each removal leaves an expired range first.
   */
  async expire(options: ExpireOptions): Promise<ExpiryReport[]> {
    const policy = parseWith(RetentionPolicySchema, options.policy, "retention policy");
    const now = (options.now ?? new Date()).getTime();
    const holds = await this.holds();
    const reports: ExpiryReport[] = [];
    for (const streamId of await this.files.streams()) {
      // The writer lease: nothing is appended to (or cut from) the stream meanwhile.
      reports.push(
        await this.writer.withLease(streamId, (state) => this.expireStream(streamId, policy, holds, options.exported, now, options.dryRun ?? false, state)),
      );
    }
    return reports;
  }

  private async expireStream(
    streamId: string,
    policy: z.output<typeof RetentionPolicySchema>,
    holds: LegalHold[],
    exported: Checkpoint[],
    now: number,
    dryRun: boolean,
    state: StreamState,
  ): Promise<ExpiryReport> {
    const dir = this.files.streamDir(streamId);
    let last = await this.files.lastExpired(streamId);
    // A removal that was cut short (its range written, its file not yet gone) is finished first.
    for (const name of await readdir(dir)) {
      const index = Number(SEGMENT_FILE.exec(name)?.[1] ?? NaN);
      if (!dryRun && last && index <= last.segment) await unlink(join(dir, name));
    }
    const checkpoints = await this.files.checkpoints(streamId);
    const expired: ExpiredRange[] = [];
    const live = await this.files.segmentIndices(streamId, last);
    const report = (keptBecause: string): ExpiryReport => ({ streamId, expired, keptBecause });
    for (const index of live.slice(0, -1)) {
      const tree = CompactTree.restore(
        last?.to ?? 0,
        (last?.frontier ?? []).map((h) => Buffer.from(h, "hex")),
      );
      let lastHash = last?.lastHash ?? "";
      let newest = "";
      for await (const { line } of readLines(this.files.segmentPath(streamId, index))) {
        const record = JSON.parse(line) as LedgerRecord;
        const hold = holding(record, holds);
        if (hold) return report(`segment ${index}: position ${record.position} is under legal hold ${hold.id} (${hold.reason})`);
        const until = expiresAt(record, policy);
        if (until > now)
          return report(
            `segment ${index}: position ${record.position} (${record.event.type}) is kept until ${Number.isFinite(until) ? new Date(until).toISOString() : "forever"}`,
          );
        tree.append(leafHash(line.slice(0, -1)));
        lastHash = record.hash;
        if (record.recordedAt > newest) newest = record.recordedAt;
      }
      const to = tree.size;
      const root = tree.root().toString("hex");
      const checkpoint = checkpoints.find((c) => c.treeSize === to);
      if (!checkpoint) return report(`segment ${index}: no signed checkpoint of size ${to} (its end)`);
      if (checkpoint.rootHash !== root)
        throw ledgerError(
          LedgerErrorCodes.checkpointMismatch,
          `stream ${streamId}: the records do not give the root signed for size ${to}; run \`auditgraph verify\``,
        );
      if (!exported.some((c) => c.streamId === streamId && c.treeSize === to && c.rootHash === root)) {
        return report(`segment ${index}: its checkpoint (size ${to}) has not been exported`);
      }
      const range = ExpiredRangeSchema.parse({
        streamId,
        segment: index,
        from: 0,
        to,
        lastHash,
        frontier: tree.frontier().map((h) => h.toString("hex")),
        checkpoint,
        newestRecordedAt: newest,
        expiredAt: new Date(now).toISOString(),
      });
      expired.push(range);
      last = range;
      if (dryRun) continue;
      // The range first, then the file: a crash in between leaves a range whose file is removed next time.
      await appendSynced(join(dir, EXPIRED), `${JSON.stringify(range)}\n`);
      await unlink(this.files.segmentPath(streamId, index));
      const directory = await open(dir, "r");
      await directory.sync().finally(() => directory.close());
      for (const [eventId, at] of state.byEventId) if (at.segment <= index) state.byEventId.delete(eventId);
    }
    return report(`segment ${String(live.at(-1) ?? 0)} is the one being written, and is never removed`);
  }
}
