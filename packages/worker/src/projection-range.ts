import {
  AuditgraphError,
  ValidationError,
  isSealed,
  openRecords,
  upcastEvent,
  type AuditEvent,
  type LedgerRecord,
  type PlainRecord,
  type SubjectKeyStore,
} from "@auditgraph/core";
import type { Ledger } from "@auditgraph/ledger";
import type { Graph, ProjectionRange } from "@auditgraph/graph";

// Reading the ledger for the projection: records into ranges the graph takes, and how far it lags.

/** One batch ready for `Graph.projectRange`: the range it covers (but the ledger's id) and its readable records. */
export interface OpenedRange {
  range: Omit<ProjectionRange, "ledgerId">;
  records: PlainRecord[];
  /** Records of the range left out because their subject was erased. */
  erased: number;
}

/** A stored event in the current schema version, or an error naming its place in the ledger. */
export function current(record: LedgerRecord, event: unknown): AuditEvent {
  try {
    return upcastEvent(event);
  } catch (error) {
    const message = error instanceof ValidationError || error instanceof Error ? error.message : String(error);
    throw new AuditgraphError("AUDITGRAPH_E_PROJECTION_UNREADABLE", `stream ${record.streamId} position ${record.position}: ${message}`, { cause: error });
  }
}

/**
 * Ledger records of one stream, consecutive, as one projection range: opened with the key store
 * (an erased subject's left out: their plaintext never comes back) and upcast to the current
 * schema. Throws on records that are not consecutive, and on a sealed one with no key store.
 */
export async function openRange(batch: LedgerRecord[], keyStore?: Pick<SubjectKeyStore, "byId">): Promise<OpenedRange> {
  const first = batch[0];
  if (!first) throw new AuditgraphError("AUDITGRAPH_E_PROJECTION_EMPTY_RANGE", "openRange: no records");
  batch.forEach((r, i) => {
    if (r.streamId !== first.streamId || r.position !== first.position + i)
      throw new AuditgraphError(
        "AUDITGRAPH_E_PROJECTION_NOT_CONSECUTIVE",
        `stream ${first.streamId}: position ${first.position + i} expected, the ledger gave ${r.streamId} position ${r.position}`,
      );
  });
  let opened: Awaited<ReturnType<typeof openRecords>> | typeof batch;
  if (keyStore) opened = await openRecords(batch, keyStore);
  else {
    const sealed = batch.find((r) => isSealed(r.event));
    if (sealed)
      throw new AuditgraphError(
        "AUDITGRAPH_E_PROJECTION_SEALED",
        `stream ${sealed.streamId} position ${sealed.position} is sealed for its data subject: the projection needs the key store to open it`,
      );
    opened = batch.map((record) => ({ erased: false as const, record: record as PlainRecord }));
  }
  const records: PlainRecord[] = [];
  for (const o of opened) if (!o.erased) records.push({ ...o.record, event: current(o.record, o.record.event) });
  return { range: rangeOf(batch), records, erased: batch.length - records.length };
}

export const rangeOf = (batch: LedgerRecord[]): OpenedRange["range"] => ({
  streamId: batch[0]!.streamId,
  from: batch[0]!.position,
  prevHash: batch[0]!.prevHash,
  hashes: batch.map((r) => r.hash),
});

/** A stream's records with positions in [from, to), at most `limit` of them. */
export async function readBatch(ledger: Ledger, streamId: string, from: number, to: number, limit: number): Promise<LedgerRecord[]> {
  const out: LedgerRecord[] = [];
  for await (const record of ledger.readStream(streamId, from, to)) {
    out.push(record);
    if (out.length >= limit) break;
  }
  return out;
}

/**
 * How far the graph lags behind the ledger, stream by stream: the cursor, the ledger's last
 * position, the difference, and the records set aside (in the ledger, past the cursor, but left
 * out of the graph: see `dead-letters`).
 */
export async function projectionLag(
  ledger: Ledger,
  graph: Pick<Graph, "cursors">,
): Promise<{ streamId: string; cursor: number; last: number; behind: number; setAside: number }[]> {
  const ledgerId = await ledger.id();
  const setAside = new Map<string, number>();
  for (const l of await ledger.readDeadLetters())
    if (l.kind === "projection" && l.projection) setAside.set(l.projection.streamId, (setAside.get(l.projection.streamId) ?? 0) + 1);
  // Another ledger's cursor is not this ledger's progress.
  const cursors = new Map((await graph.cursors()).filter((c) => c.ledgerId === undefined || c.ledgerId === ledgerId).map((c) => [c.streamId, c.position]));
  const out = [];
  for (const streamId of await ledger.streams()) {
    const cursor = cursors.get(streamId) ?? -1;
    let last = cursor;
    for await (const record of ledger.readStream(streamId, cursor + 1)) last = record.position;
    out.push({ streamId, cursor, last, behind: last - cursor, setAside: setAside.get(streamId) ?? 0 });
  }
  return out;
}
