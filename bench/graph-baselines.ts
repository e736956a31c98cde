/**
 * The graph bench's load baselines (bench/graph.ts runs them beside the projection, batch by batch):
 *   plain   one unindexed node per event, its main scalar fields: what a projection that only
 *           stored the events would write (no lookups, no relationships, no MERGE);
 *   linked  the same node under a (tenantId, id) uniqueness constraint, plus a relationship to
 *           its trace's node and one to its session's node (both keyed (tenantId, id) under
 *           uniqueness constraints, MERGEd per distinct trace and session of the batch): the least
 *           a graph that links every event to its trace and session must write;
 *   stored  linked's write, plus each event's content (its payload's JSON text) on its node: the
 *           least a graph that links every event and keeps what it said must write, which is
 *           what the projection does (its prompts, outputs, tool inputs and results, documents).
 * Each batch is a write transaction of its own in a session of its own, as the projection's is.
 */
import type { PlainRecord } from "@auditgraph/core";
import type { Graph } from "@auditgraph/graph";

/** Every label the baselines write (the bench's cleanup deletes them first: BenchLinked before its anchors). */
export const BASELINE_LABELS = ["BenchPlain", "BenchLinked", "BenchStored", "BenchLinkedTrace", "BenchLinkedSession"];

const PROPS = `{tenantId: r.tenantId, id: r.id, type: r.type, traceId: r.traceId, runId: r.runId, parentRunId: r.parentRunId,
  sessionId: r.sessionId, userId: r.userId, agentId: r.agentId, agentVersion: r.agentVersion, name: r.name,
  streamId: r.streamId, position: r.position, recordedAt: r.recordedAt, occurredAt: r.occurredAt}`;

export const PLAIN_CREATE = `
UNWIND $rows AS r
CREATE (n:BenchPlain ${PROPS})`;

// The anchors are MERGEd by a statement of their own before the CREATE (same transaction), so the
// CREATE only seeks them: one MERGE per distinct trace and session, not per event.
const LINKED_ANCHORS = `
FOREACH (k IN $traces | MERGE (:BenchLinkedTrace {tenantId: k.tenantId, id: k.id}))
FOREACH (k IN $sessions | MERGE (:BenchLinkedSession {tenantId: k.tenantId, id: k.id}))`;

// Deployment events carry no session: their node gets the trace relationship only.
const linkedCreateOf = (node: string) => `
UNWIND $rows AS r
MATCH (t:BenchLinkedTrace {tenantId: r.tenantId, id: r.traceId})
CREATE (n:${node})-[:IN_TRACE]->(t)
WITH n, r WHERE r.sessionId IS NOT NULL
MATCH (s:BenchLinkedSession {tenantId: r.tenantId, id: r.sessionId})
CREATE (n)-[:IN_SESSION]->(s)`;
const LINKED_CREATE = linkedCreateOf(`BenchLinked ${PROPS}`);
// The same anchors as linked's: the two write the same links, and only the content differs.
const STORED_CREATE = linkedCreateOf(`BenchStored ${PROPS.slice(0, -1)}, content: r.content}`);

const LINKED_CONSTRAINTS = [
  "CREATE CONSTRAINT bench_linked_key IF NOT EXISTS FOR (n:BenchLinked) REQUIRE (n.tenantId, n.id) IS UNIQUE",
  "CREATE CONSTRAINT bench_stored_key IF NOT EXISTS FOR (n:BenchStored) REQUIRE (n.tenantId, n.id) IS UNIQUE",
  "CREATE CONSTRAINT bench_linked_trace_key IF NOT EXISTS FOR (n:BenchLinkedTrace) REQUIRE (n.tenantId, n.id) IS UNIQUE",
  "CREATE CONSTRAINT bench_linked_session_key IF NOT EXISTS FOR (n:BenchLinkedSession) REQUIRE (n.tenantId, n.id) IS UNIQUE",
];

export type BaselineRow = ReturnType<typeof plainRow>;

export function plainRow(r: PlainRecord, graph: Graph) {
  const e = r.event;
  const identity = "identity" in e ? e.identity : undefined;
  return {
    tenantId: identity?.user.tenantId ?? ("tenantId" in e ? e.tenantId : null),
    id: e.eventId,
    type: e.type,
    traceId: e.traceId,
    runId: e.runId,
    parentRunId: e.parentRunId,
    sessionId: e.sessionId,
    userId: identity?.user.id ?? null,
    agentId: identity?.agent.id ?? null,
    agentVersion: identity?.agent.version ?? null,
    name: e.name ?? null,
    streamId: r.streamId,
    position: graph.int(r.position),
    recordedAt: r.recordedAt,
    occurredAt: e.occurredAt,
  };
}

export type StoredRow = ReturnType<typeof storedRow>;

/** The plain row and the event's content: its payload as JSON text (system events without one: null). */
export function storedRow(r: PlainRecord, graph: Graph) {
  const payload = "payload" in r.event ? r.event.payload : undefined;
  return { ...plainRow(r, graph), content: payload === undefined ? null : JSON.stringify(payload) };
}

async function writeBatch(graph: Graph, statements: [string, Record<string, unknown>][]): Promise<void> {
  const session = graph.driver.session({ database: graph.database, defaultAccessMode: "WRITE" });
  try {
    await session.executeWrite(async (tx) => {
      for (const [cypher, params] of statements) await tx.run(cypher, params);
    });
  } finally {
    await session.close();
  }
}

export async function plainCreate(graph: Graph, rows: unknown[]): Promise<void> {
  await writeBatch(graph, [[PLAIN_CREATE, { rows }]]);
}

/** The linked baseline's constraints (left in place after the run: they cover only its own labels). */
export async function ensureLinkedConstraints(graph: Graph): Promise<void> {
  for (const cypher of LINKED_CONSTRAINTS) await graph.driver.executeQuery(cypher, {}, { database: graph.database });
}

/** The batch's distinct trace and session keys: what `linkedCreate` MERGEs. */
export function linkedAnchors(rows: BaselineRow[]) {
  const traces = new Map<string, { tenantId: string | null; id: string }>();
  const sessions = new Map<string, { tenantId: string | null; id: string }>();
  for (const r of rows) {
    traces.set(`${r.tenantId}\u0000${r.traceId}`, { tenantId: r.tenantId, id: r.traceId });
    if (r.sessionId !== null) sessions.set(`${r.tenantId}\u0000${r.sessionId}`, { tenantId: r.tenantId, id: r.sessionId });
  }
  // Keys tell traces and sessions apart, for a run's count of distinct anchors.
  return {
    traces: [...traces.values()],
    sessions: [...sessions.values()],
    keys: [...traces.keys()].map((k) => `t${k}`).concat([...sessions.keys()].map((k) => `s${k}`)),
  };
}

export async function linkedCreate(graph: Graph, rows: BaselineRow[], anchors: ReturnType<typeof linkedAnchors>): Promise<void> {
  await writeBatch(graph, [
    [LINKED_ANCHORS, { traces: anchors.traces, sessions: anchors.sessions }],
    [LINKED_CREATE, { rows }],
  ]);
}

export async function storedCreate(graph: Graph, rows: StoredRow[], anchors: ReturnType<typeof linkedAnchors>): Promise<void> {
  await writeBatch(graph, [
    [LINKED_ANCHORS, { traces: anchors.traces, sessions: anchors.sessions }],
    [STORED_CREATE, { rows }],
  ]);
}
