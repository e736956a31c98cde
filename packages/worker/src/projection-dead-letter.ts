import { MAX_ID_LENGTH, type PlainRecord } from "@auditgraph/core";
import type { DeadLetter, Ledger } from "@auditgraph/ledger";
import type { Graph, ProjectionRange, RangeOutcome } from "@auditgraph/graph";

/**
 * Graph error codes that belong to the data written, not to the graph's state: the same record
 * fails the same way however often it is tried (a value too large for an index, a type the
 * graph cannot store, a constraint it breaks). Transient and connection errors are retried as
 * before; a syntax error or a missing parameter is a bug of the projection's own statements and
 * would refuse every record, so it is retried (and seen) rather than setting the stream aside.
 */
const PER_RECORD: RegExp[] = [
  /^Neo\.ClientError\.Statement\.(?!SyntaxError$|ParameterMissing$)/,
  /^Neo\.ClientError\.Schema\.ConstraintValidationFailed$/,
  // Neo4j 5 reports "Property value is too large to index" under this code.
  /^Neo\.DatabaseError\.Statement\.ExecutionFailed$/,
];

/** The code and a content-free message of an error that no retry of the same record can cure; else undefined. */
export function unprojectable(error: unknown): { code: string; message: string } | undefined {
  if (typeof error !== "object" || error === null) return undefined;
  const { code, message, retriable } = error as { code?: unknown; message?: unknown; retriable?: unknown };
  if (typeof code !== "string" || retriable === true || !PER_RECORD.some((p) => p.test(code))) return undefined;
  return { code, message: contentFree(typeof message === "string" ? message : "") };
}

/**
 * The graph's message without what it may quote of the record (a value, a map): its first
 * sentence, and of the rest only the index it names and the size it measured.
 */
export function contentFree(message: string): string {
  const first = (/^[^\n]*?[.!](?=\s|$)/.exec(message)?.[0] ?? message.split("\n")[0] ?? "").slice(0, 200);
  const index = /Index\(\s*id=\d+,\s*name='([\w-]{1,100})'/.exec(message)?.[1];
  const size = /property size: (\d+)/.exec(message)?.[1];
  return [first, index ? `index ${index}` : "", size ? `property size ${size}` : ""].filter(Boolean).join("; ");
}

/** The dead letter of a ledger record the graph refused: where it is and why, no user content. */
export function projectionDeadLetter(record: PlainRecord, fault: { code: string; message: string }, recordedAt = new Date().toISOString()): DeadLetter {
  const { streamId, position } = record;
  // An id from before the schema's limits may be any length: a dead letter names it, shortened.
  const cut = (id: string) => (id.length > MAX_ID_LENGTH ? `${id.slice(0, MAX_ID_LENGTH)}…` : id);
  const tenantId = "identity" in record.event ? record.event.identity.user.tenantId : undefined;
  return {
    id: `projection/${streamId}/${position}`,
    recordedAt,
    jobId: null,
    reason: `not projected: ${fault.code}: ${fault.message}`,
    // The record stays in the ledger: its content is not copied here.
    input: null,
    kind: "projection",
    projection: {
      streamId,
      position,
      eventId: cut(record.event.eventId),
      ...(typeof tenantId === "string" ? { tenantId: cut(tenantId) } : {}),
      code: fault.code,
    },
  };
}

export interface SetAsideOutcome {
  outcome: RangeOutcome;
  /** Records set aside (their dead letters recorded) while projecting the range. */
  setAside: DeadLetter[];
}

/**
 * Projects a range like `Graph.projectRange`, but a record the graph refuses for good is set aside
 * rather than holding the stream for ever: the range is halved until the refused record stands
 * alone, its dead letter is recorded durably (before the cursor moves past it, so a crash between
 * repeats the attempt rather than losing the letter; the letter's id makes a repeat a no-op), and
 * its position is projected without it, as an erased subject's record is. The rest of the range is
 * projected as usual. That empty write also shows the graph takes writes at all: a graph refusing
 * everything fails it, and the error goes back to the caller's retry instead.
 */
export async function projectSettingAside(
  graph: Pick<Graph, "projectRange">,
  ledger: Pick<Ledger, "deadLetter">,
  range: ProjectionRange,
  records: PlainRecord[],
): Promise<SetAsideOutcome> {
  const setAside: DeadLetter[] = [];
  const go = async (part: ProjectionRange, partRecords: PlainRecord[]): Promise<RangeOutcome> => {
    try {
      return await graph.projectRange(part, partRecords);
    } catch (error) {
      const fault = unprojectable(error);
      if (!fault) throw error;
      if (part.hashes.length === 1) {
        const record = partRecords[0];
        // Nothing of it was written: the graph refuses the cursor's move itself, not a record.
        if (!record) throw error;
        const letter = projectionDeadLetter(record, fault);
        await ledger.deadLetter(letter);
        const outcome = await graph.projectRange(part, []);
        if (outcome.status === "projected") setAside.push(letter);
        return outcome;
      }
      const half = Math.ceil(part.hashes.length / 2);
      const mid = part.from + half;
      const first: ProjectionRange = { ...part, hashes: part.hashes.slice(0, half) };
      // Only the first part takes the cursor over (restart, hand-over); the second extends it.
      const second: ProjectionRange = {
        ...part,
        from: mid,
        prevHash: part.hashes[half - 1]!,
        hashes: part.hashes.slice(half),
        restart: false,
        handOver: false,
      };
      const a = await go(
        first,
        partRecords.filter((r) => r.position < mid),
      );
      if (a.status !== "projected" && a.status !== "behind") return a;
      const b = await go(
        second,
        partRecords.filter((r) => r.position >= mid),
      );
      const before = a.status === "projected" ? a.projected : 0;
      if (b.status === "projected") return { ...b, projected: b.projected + before };
      if (b.status === "behind" && a.status === "projected") return { status: "projected", position: b.position, hash: b.hash, projected: before };
      return b;
    }
  };
  const outcome = await go(range, records);
  return { outcome, setAside };
}
