import neo4j from "neo4j-driver";
import { canonicalJson, isSystemEvent, type AuditEvent, type EventOf, type PlainRecord, type UserEvent } from "@auditgraph/core";

// Every node is keyed within its tenant, (tenantId, id) or (tenantId, ...its natural key): ids
// come from the agent process, so one tenant's ids can never reach another tenant's nodes, and
// every query is scoped by starting from the tenant's key. Agents, models and tools are nodes
// per tenant for the same reason (see graph-schema/README.md).

/** Properties hold JSON text where the value is structured: Neo4j properties cannot be maps. */
export const json = (value: unknown): string => canonicalJson(value ?? null);

export type UserRecord = PlainRecord & { event: UserEvent };

export const base = (r: UserRecord) => ({
  traceId: r.event.traceId,
  tenantId: r.event.identity.user.tenantId,
  runId: r.event.runId,
  parentRunId: r.event.parentRunId,
  eventId: r.event.eventId,
  streamId: r.streamId,
  position: neo4j.int(r.position),
  recordedAt: r.recordedAt,
  // No occurredAt: no statement reads it, and every row is packed, sent and unpacked.
});

// The records of a batch by type, grouped once per list of records rather than filtered by each of
// the two dozen steps that ask for a type (most ask for types a batch does not hold).
const byTypeOf = new WeakMap<readonly PlainRecord[], Map<string, PlainRecord[]>>();

/** The records of `types`, in record order. The list may be shared by other callers: do not change it. */
export function ofType<T extends AuditEvent["type"]>(records: readonly PlainRecord[], ...types: T[]): (PlainRecord & { event: EventOf<T> })[] {
  let byType = byTypeOf.get(records);
  if (!byType) {
    byType = new Map();
    for (const r of records) {
      const group = byType.get(r.event.type);
      if (group) group.push(r);
      else byType.set(r.event.type, [r]);
    }
    byTypeOf.set(records, byType);
  }
  const present = types.filter((t) => byType.has(t));
  if (present.length <= 1) return (byType.get(present[0] ?? "") ?? []) as (PlainRecord & { event: EventOf<T> })[];
  const wanted = new Set<string>(types);
  return records.filter((r): r is PlainRecord & { event: EventOf<T> } => wanted.has(r.event.type));
}

/**
 * A map key of strings, unambiguous (JSON of the list): JSON.stringify of a list of strings is
 * already its canonical form, without canonicalJson's key sorting, for a key taken per record.
 */
export const keyOf = (...parts: readonly string[]): string => JSON.stringify(parts);

/** One row per distinct key: a batch often holds many events of one trace, session or target. */
export function distinctBy<T>(rows: T[], key: (row: T) => string): T[] {
  return [...new Map(rows.map((row) => [key(row), row] as const)).values()];
}

/**
 * The records of one projection batch, and what the steps derive from them: a value several
 * steps read (the batch's traces, its tool-call groups, its erasures) is built once, by the
 * first step that asks for it.
 */
export class Batch {
  /** The records that name a user: every type but the system events. */
  readonly records: UserRecord[];
  private readonly derived = new Map<(batch: Batch) => unknown, unknown>();

  constructor(readonly all: PlainRecord[]) {
    this.records = all.filter((r): r is UserRecord => !isSystemEvent(r.event));
  }

  derive<T>(build: (batch: Batch) => T): T {
    if (!this.derived.has(build)) this.derived.set(build, build(this));
    return this.derived.get(build) as T;
  }
}

/** One projection statement and the rows it runs over (none: it is not sent). */
export interface Step {
  readonly cypher: string;
  readonly rows: (batch: Batch) => readonly unknown[];
  /** One statement per row, in row order (a fold over them), instead of one for all rows. */
  readonly eachRow?: true;
}
