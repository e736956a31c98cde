import { readFile, rename, writeFile } from "node:fs/promises";
import { z } from "zod";
import {
  AuditgraphError,
  canonicalJson,
  isSealed,
  openRecords,
  parseWith,
  streamsOfTenant,
  upcastEvent,
  type AuditEvent,
  type LedgerRecord,
  type SubjectKeyStore,
} from "@auditgraph/core";
import { REVIEW_EVENT_NAME } from "./record-review.js";
import { REPLAY_TAG_PREFIX } from "./replay.js";
import {
  CheckpointSchema,
  InclusionBundleSchema,
  inclusionProof,
  leafHash,
  nodeHash,
  verifyInclusionBundle,
  type Ledger,
  type SubtreeSource,
} from "@auditgraph/ledger";

export const SnapshotFilterSchema = z.object({
  tenantId: z.string().min(1).optional(),
  agentVersion: z.string().min(1).optional(),
  modelVersion: z.string().min(1).optional(),
  /** Traces whose first record the worker stamped at or after this instant. */
  from: z.iso.datetime({ offset: true }).optional(),
  /** ... and before this one. */
  to: z.iso.datetime({ offset: true }).optional(),
  tag: z.string().min(1).optional(),
  /** Only traces with a policy flag or an escalation. */
  flaggedOnly: z.boolean().optional(),
  traceIds: z.array(z.string().min(1)).min(1).optional(),
  /** At most this many traces (the earliest first). */
  limit: z.number().int().positive().optional(),
  /** Replay runs and review records are left out unless this is set. */
  includeReplays: z.boolean().optional(),
  /** Traces whose root run has no end in the ledger (still in progress, or a held call never finished) are left out unless this is set. */
  includeUnfinished: z.boolean().optional(),
});
export type SnapshotFilter = z.infer<typeof SnapshotFilterSchema>;

const hashHex = z.string().regex(/^[0-9a-f]{64}$/);

/** One record as stored, with its audit path; the tree size and root are its stream's checkpoint's. */
export const SnapshotRecordSchema = z.object({
  record: InclusionBundleSchema.shape.record,
  leafIndex: z.number().int().nonnegative(),
  proof: z.array(hashHex),
});
export type SnapshotRecord = z.infer<typeof SnapshotRecordSchema>;

export const SnapshotTraceSchema = z.object({
  traceId: z.string().min(1),
  streamId: z.string().min(1),
  records: z.array(SnapshotRecordSchema).min(1),
});
export type SnapshotTrace = z.infer<typeof SnapshotTraceSchema>;

export const SnapshotManifestSchema = z.object({
  createdAt: z.iso.datetime({ offset: true }),
  filter: SnapshotFilterSchema,
  traceCount: z.number().int().nonnegative(),
  recordCount: z.number().int().nonnegative(),
  /** The checkpoint every record of the stream is proven against (the latest when the snapshot was made). */
  checkpoints: z.array(CheckpointSchema),
});

/** The snapshot file: self-contained, checkable with the ledger's public key alone. */
export const SnapshotSchema = z.object({
  format: z.literal("auditgraph.snapshot"),
  version: z.literal(1),
  manifest: SnapshotManifestSchema,
  traces: z.array(SnapshotTraceSchema),
});
export type Snapshot = z.infer<typeof SnapshotSchema>;

export interface SnapshotProgress {
  stream: string;
  records: number;
}

export interface CreateSnapshotOptions {
  /** Opens sealed events where the filter needs their contents (agent or model version, tag). */
  keyStore?: Pick<SubjectKeyStore, "byId">;
  onProgress?: (progress: SnapshotProgress) => void;
}

/**
 * Node hashes of one tree, each computed once: proofs of many leaves share most of their
 * siblings, so proving k records of a stream costs about one pass over its n leaves, not k.
 */
function memoTree(leaves: readonly Buffer[]): SubtreeSource {
  const memo = new Map<string, Buffer>();
  const root = (start: number, end: number): Buffer => {
    if (end - start === 1) return leaves[start]!;
    const key = `${start}:${end}`;
    let hash = memo.get(key);
    if (!hash) {
      const split = start + 2 ** Math.floor(Math.log2(end - start - 1));
      hash = nodeHash(root(start, split), root(split, end));
      memo.set(key, hash);
    }
    return hash;
  };
  return { size: leaves.length, root };
}

interface Candidate {
  traceId: string;
  records: { record: LedgerRecord; index: number }[];
}

async function matches(candidate: Candidate, filter: SnapshotFilter, keyStore: CreateSnapshotOptions["keyStore"]): Promise<boolean> {
  const first = candidate.records[0]!.record;
  if (filter.traceIds && !filter.traceIds.includes(candidate.traceId)) return false;
  if (filter.from && Date.parse(first.recordedAt) < Date.parse(filter.from)) return false;
  if (filter.to && Date.parse(first.recordedAt) >= Date.parse(filter.to)) return false;
  const types = candidate.records.map((r) => r.record.event.type);
  if (filter.flaggedOnly && !types.some((t) => t === "policy.flag" || t === "escalation.opened")) return false;
  // A sealed event keeps its type and run ids in the clear: no key is needed to see this.
  if (!filter.includeUnfinished && isUnfinished(candidate.records.map((r) => r.record.event))) return false;
  const byContent = Boolean(filter.agentVersion || filter.modelVersion || filter.tag);
  if (!byContent && filter.includeReplays) return true;
  // A replay run's events all carry its tag, and a review record is one event: when nothing
  // else needs the contents, the trace's first record tells (one record opened, not all).
  const records = byContent ? candidate.records.map((r) => r.record) : [first];
  if (!keyStore && records.some((r) => isSealed(r.event))) {
    throw new AuditgraphError(
      "AUDITGRAPH_E_TRACE_SEALED",
      `trace ${candidate.traceId} is sealed: filtering by agent version, model version or tag, or leaving replays out (unless includeReplays), needs the key store`,
    );
  }
  const events: AuditEvent[] = keyStore
    ? (await openRecords(records, keyStore)).flatMap((o) => (o.erased ? [] : [upcastEvent(o.record.event)]))
    : records.map((r) => upcastEvent(r.event));
  if (!filter.includeReplays && events.some(isReplayOrReview)) return false;
  if (filter.agentVersion && !events.some((e) => "identity" in e && e.identity.agent.version === filter.agentVersion)) return false;
  if (filter.modelVersion && !events.some((e) => e.type === "llm.end" && e.model.version === filter.modelVersion)) return false;
  if (filter.tag && !events.some((e) => e.tags?.includes(filter.tag!))) return false;
  return true;
}

/** A replay run's event (tagged with the trace it replays) or a replay review's record (a trace of its own, its id the review's). */
const isReplayOrReview = (e: AuditEvent): boolean =>
  (e.type === "custom" && e.payload.name === REVIEW_EVENT_NAME && (e.payload.data as { reviewId?: unknown } | null)?.reviewId === e.traceId) ||
  (e.tags ?? []).some((tag) => tag.startsWith(REPLAY_TAG_PREFIX));

const RUN_ENDS = new Set(["chain.end", "chain.error", "llm.end", "llm.error", "tool.end", "tool.error", "retriever.end", "retriever.error"]);
const RUN_STARTS = new Set(["chain.start", "llm.start", "tool.start", "retriever.start"]);

/**
 * A trace whose root run started and has no end in the ledger: still in progress, or stopped
 * for good (a held call never decided). Its outcome is unknown, so it is no baseline to replay.
 * A trace with no root run at all (a review record) is not in progress.
 */
function isUnfinished(events: readonly { type: string; runId?: unknown; parentRunId?: unknown }[]): boolean {
  const roots = new Set(events.filter((e) => e.parentRunId === null && RUN_STARTS.has(e.type)).map((e) => e.runId));
  if (roots.size === 0) return false;
  const ended = new Set(events.filter((e) => e.parentRunId === null && RUN_ENDS.has(e.type)).map((e) => e.runId));
  return [...roots].some((runId) => !ended.has(runId));
}

/**
 * Selects traces from the ledger and proves every record of them against its stream's latest
 * signed checkpoint. Records are kept exactly as stored (sealed ones stay sealed, redaction as
 * recorded): a snapshot never holds more than the ledger does. One pass per stream. Replay runs,
 * review records and unfinished traces are left out unless the filter includes them.
 */
export async function createSnapshot(ledger: Ledger, filterInput: SnapshotFilter = {}, options: CreateSnapshotOptions = {}): Promise<Snapshot> {
  const filter = parseWith(SnapshotFilterSchema, filterInput, "snapshot filter");
  // A tenant's traces are in any of its streams (shards), whatever the shard count when written.
  const all = await ledger.streams();
  const streams = filter.tenantId ? streamsOfTenant(all, filter.tenantId) : all;
  const traces: SnapshotTrace[] = [];
  const checkpoints: z.infer<typeof CheckpointSchema>[] = [];
  for (const streamId of streams) {
    const checkpoint = await ledger.latestCheckpoint(streamId);
    const leaves: Buffer[] = [];
    const byTrace = new Map<string, Candidate>();
    let firstPosition: number | undefined;
    for await (const record of ledger.readStream(streamId)) {
      firstPosition ??= record.position;
      // Past the latest checkpoint nothing can be proven yet: those records wait for the next snapshot.
      if (checkpoint && record.position >= checkpoint.treeSize) break;
      leaves.push(leafHash(canonicalJson(record)));
      // An access event (a reader of the audit trail) is a trace of its own and no agent's run:
      // nothing to replay. It stays a leaf of the tree the other records are proven against.
      if (record.event.type !== "access") {
        let candidate = byTrace.get(record.event.traceId);
        if (!candidate) byTrace.set(record.event.traceId, (candidate = { traceId: record.event.traceId, records: [] }));
        candidate.records.push({ record, index: record.position });
      }
      if (leaves.length % 1000 === 0) options.onProgress?.({ stream: streamId, records: leaves.length });
    }
    if (leaves.length === 0) continue;
    const selected: Candidate[] = [];
    for (const candidate of byTrace.values()) if (await matches(candidate, filter, options.keyStore)) selected.push(candidate);
    if (selected.length === 0) continue;
    if (!checkpoint)
      throw new AuditgraphError(
        "AUDITGRAPH_E_NO_CHECKPOINT",
        `stream ${streamId} has no signed checkpoint: a snapshot needs a ledger that signs them (set AUDITGRAPH_SIGNING_KEY)`,
      );
    // Retention cut the stream's head: its proofs need the frontier the ledger keeps, so ask it.
    const tree = firstPosition === 0 ? memoTree(leaves) : undefined;
    for (const candidate of selected) {
      const records: SnapshotRecord[] = [];
      for (const { record, index } of candidate.records) {
        if (tree) records.push({ record, leafIndex: index, proof: inclusionProof(tree, index, checkpoint.treeSize).map((h) => h.toString("hex")) });
        else {
          // This stream's: an event id is unique within a tenant only.
          const bundle = await ledger.prove(record.event.eventId, { streamId });
          if (bundle.checkpoint.treeSize !== checkpoint.treeSize)
            throw new AuditgraphError("AUDITGRAPH_E_STREAM_GREW", `stream ${streamId} grew while the snapshot was made; run it again`);
          records.push({ record, leafIndex: bundle.leafIndex, proof: bundle.proof });
        }
      }
      traces.push({ traceId: candidate.traceId, streamId, records });
    }
    checkpoints.push(checkpoint);
  }
  const at = (t: SnapshotTrace) => String(t.records[0]!.record.recordedAt);
  traces.sort((a, b) => at(a).localeCompare(at(b)));
  const kept = filter.limit ? traces.slice(0, filter.limit) : traces;
  const usedStreams = new Set(kept.map((t) => t.streamId));
  return {
    format: "auditgraph.snapshot",
    version: 1,
    manifest: {
      createdAt: new Date().toISOString(),
      filter,
      traceCount: kept.length,
      recordCount: kept.reduce((n, t) => n + t.records.length, 0),
      checkpoints: checkpoints.filter((c) => usedStreams.has(c.streamId)),
    },
    traces: kept,
  };
}

export async function writeSnapshot(path: string, snapshot: Snapshot): Promise<void> {
  // Written whole, then renamed: an interrupted write never leaves a snapshot that looks complete.
  await writeFile(`${path}.partial`, JSON.stringify(snapshot));
  await rename(`${path}.partial`, path);
}

export async function readSnapshot(path: string): Promise<Snapshot> {
  return parseWith(SnapshotSchema, await readSnapshotJson(path), `snapshot ${path}`);
}

/**
 * A snapshot file's JSON, not yet checked: `verifySnapshot` takes it as it is, so that a file
 * that is no snapshot fails verification rather than reading. A file that cannot be read or is
 * not JSON throws an error with code AUDITGRAPH_SNAPSHOT_UNREADABLE.
 */
export async function readSnapshotJson(path: string): Promise<unknown> {
  return (await readSnapshotBytes(path)).json;
}

/** A snapshot file's bytes (a review hashes them) and their JSON, not yet checked; errors as `readSnapshotJson`'s. */
export async function readSnapshotBytes(path: string): Promise<{ bytes: Buffer; json: unknown }> {
  const unreadable = (message: string) => new AuditgraphError("AUDITGRAPH_SNAPSHOT_UNREADABLE", message);
  const bytes = await readFile(path).catch((error: Error) => {
    throw unreadable(`snapshot ${path}: ${error.message}`);
  });
  try {
    return { bytes, json: JSON.parse(bytes.toString("utf8")) as unknown };
  } catch (error) {
    throw unreadable(`snapshot ${path} is not JSON: ${(error as Error).message}`);
  }
}

export interface SnapshotVerifyReport {
  ok: boolean;
  traces: number;
  records: number;
  /** The first problem found: which trace, record and what does not hold. */
  failure?: { traceId?: string; eventId?: string; reason: string };
}

/**
 * Checks a snapshot with nothing but the ledger's public key: every record's inclusion proof
 * against its stream's signed checkpoint, that each record belongs to the trace it is filed
 * under, no record twice, and the manifest's counts.
 */
export function verifySnapshot(input: unknown, publicKeyPem: string): SnapshotVerifyReport {
  const parsed = SnapshotSchema.safeParse(input);
  if (!parsed.success)
    return {
      ok: false,
      traces: 0,
      records: 0,
      failure: {
        reason: `not a snapshot: ${parsed.error.issues
          .map((i) => `${i.path.join(".")}: ${i.message}`)
          .slice(0, 3)
          .join("; ")}`,
      },
    };
  const snapshot = parsed.data;
  const checkpoints = new Map(snapshot.manifest.checkpoints.map((c) => [c.streamId, c]));
  const seen = new Set<string>();
  let records = 0;
  for (const trace of snapshot.traces) {
    const checkpoint = checkpoints.get(trace.streamId);
    if (!checkpoint)
      return {
        ok: false,
        traces: snapshot.traces.length,
        records,
        failure: { traceId: trace.traceId, reason: `manifest.checkpoints has none for stream ${trace.streamId}` },
      };
    for (const entry of trace.records) {
      const eventId = entry.record.event.eventId;
      const fail = (reason: string): SnapshotVerifyReport => ({
        ok: false,
        traces: snapshot.traces.length,
        records,
        failure: { traceId: trace.traceId, eventId, reason },
      });
      if ((entry.record.event as { traceId?: unknown }).traceId !== trace.traceId)
        return fail(`record's event is of trace ${String((entry.record.event as { traceId?: unknown }).traceId)}`);
      if (entry.record.streamId !== trace.streamId) return fail(`record is in stream ${entry.record.streamId}, filed under ${trace.streamId}`);
      if (seen.has(eventId)) return fail("record appears twice");
      seen.add(eventId);
      try {
        verifyInclusionBundle(
          { record: entry.record, leafIndex: entry.leafIndex, treeSize: checkpoint.treeSize, proof: entry.proof, checkpoint },
          publicKeyPem,
        );
      } catch (error) {
        return fail((error as Error).message);
      }
      records++;
    }
  }
  const { traceCount, recordCount } = snapshot.manifest;
  if (traceCount !== snapshot.traces.length)
    return {
      ok: false,
      traces: snapshot.traces.length,
      records,
      failure: { reason: `manifest.traceCount is ${traceCount}, the snapshot has ${snapshot.traces.length} traces` },
    };
  if (recordCount !== records)
    return {
      ok: false,
      traces: snapshot.traces.length,
      records,
      failure: { reason: `manifest.recordCount is ${recordCount}, the snapshot has ${records} records` },
    };
  return { ok: true, traces: snapshot.traces.length, records };
}
