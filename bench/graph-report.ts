/** The printed report of bench/graph.ts: the load, the queries, the goals and what each baseline is. */
import { table } from "./common.js";
import type { GraphBenchResult } from "./graph.js";

export const fmtRate = (r: number) => (r >= 100 ? Math.round(r).toLocaleString("en-US") : r.toFixed(1));
export const fmtMs = (ms: number) => (ms >= 100 ? ms.toFixed(0) : ms >= 10 ? ms.toFixed(1) : ms.toFixed(2));
export const pct = (r: number) => `${(r * 100).toFixed(1)}%`;
const ratio = (r: number | undefined) => (r === undefined ? "-" : r.toFixed(2));

export function formatReport(result: GraphBenchResult): string {
  const out: string[] = [];
  const o = result.options;
  const e = result.environment;
  const g = result.generated;
  out.push(
    `graph: the Neo4j projection and the investigations, ${g.events.toLocaleString("en-US")} events, against a plain, a linked and a stored CREATE and a plain id lookup`,
    `code ${e.code} (as built in dist/); node ${e.node}, ${e.cpus} cpus, load average at start ${e.loadavg}, at end ${e.loadavgEnd}; ${e.neo4j}`,
    `batch ${o.batch}, projection through ${o.api === "range" ? "Graph.projectRange (cursor + projectRecords, one write transaction)" : "Graph.project"}; seed ${JSON.stringify(o.seed)}; tenant ${result.tenantId}`,
    "",
    `events: ${g.traces.toLocaleString("en-US")} traces in ${g.sessions.toLocaleString("en-US")} sessions of ${g.users.toLocaleString("en-US")} users, ${g.outputs.toLocaleString("en-US")} outputs, ` +
      `${g.agentVersions.length} agent versions, ${g.servedModelVersions.length} served model versions, ${g.startedAt.slice(0, 10)} to ${g.endedAt.slice(0, 10)}; ` +
      `${Math.round(g.meanEventBytes)} B canonical JSON per event (mean of ${g.validated.toLocaleString("en-US")} checked against EventSchema)`,
    `  by type: ${Object.entries(g.byType)
      .sort((a, b) => b[1] - a[1])
      .map(([t, n]) => `${t} ${n.toLocaleString("en-US")}`)
      .join(", ")}`,
    `graph: ${result.graph.totalNodes.toLocaleString("en-US")} nodes, ${result.graph.relationships.toLocaleString("en-US")} relationships for the tenant: ${Object.entries(
      result.graph.nodes,
    )
      .map(([l, n]) => `${l} ${n.toLocaleString("en-US")}`)
      .join(", ")}`,
    "",
    `load (the four take turns batch by batch; only the write calls are timed, ${result.load.wallSeconds.toFixed(0)} s wall in all, ${g.generateSeconds.toFixed(0)} s of it generating and sealing):`,
    table(
      ["variant", "events", "batches", "s", "events/s", "batch p50 ms", "batch p95 ms", "batch p99 ms", "/ plain", "/ linked", "/ stored"],
      [result.load.projection, result.load.plain, result.load.linked, result.load.stored].map((c) => [
        c.variant,
        c.events.toLocaleString("en-US"),
        String(c.batches),
        c.seconds.toFixed(1),
        fmtRate(c.eventsPerSec),
        fmtMs(c.batchMs.p50),
        fmtMs(c.batchMs.p95),
        fmtMs(c.batchMs.p99),
        ratio(c.eventsPerSec / result.load.plain.eventsPerSec),
        ratio(c.eventsPerSec / result.load.linked.eventsPerSec),
        ratio(c.eventsPerSec / result.load.stored.eventsPerSec),
      ]),
    ),
    "",
    "queries (after the load; each call beside a plain lookup, in rotating order):",
    table(
      ["query", "calls", "p50 ms", "p95 ms", "p99 ms", "max ms", "rows", "p50 / plain", "p95 / plain"],
      result.queries.map((q) => [
        q.name,
        String(q.ms.n),
        fmtMs(q.ms.p50),
        fmtMs(q.ms.p95),
        fmtMs(q.ms.p99),
        fmtMs(q.ms.max),
        q.rows.toFixed(1),
        q.name === "plain lookup" ? "1.00" : ratio(q.overPlainP50),
        q.name === "plain lookup" ? "1.00" : ratio(q.overPlainP95),
      ]),
    ),
    ...result.queries.map((q) => `  ${q.name}: ${q.what}`),
    "",
    "goals:",
  );
  for (const goal of result.goals) out.push(`  [${goal.holds === undefined ? "n/a" : goal.holds ? "HOLDS" : "MISSED"}] ${goal.name}: ${goal.detail}`);
  out.push(
    "",
    `cleanup: the tenant's ${result.cleanup.nodes.toLocaleString("en-US")} nodes (the baselines' included) deleted in ${result.cleanup.seconds.toFixed(0)} s`,
    "notes: plain = one CREATE per event of its scalar fields (no MERGE, no lookups, no relationships): the cost of",
    "  getting the same rows into the same database and nothing else. The projection MERGEs every node on its tenant key,",
    "  links it (trace, session order, prompt -> call -> output, tool calls, reasoning, documents, deployments) and, through",
    "  projectRange, locks and moves the stream's cursor in the same transaction. Queries run on a store that also holds other",
    "  tenants' data (the database is shared); Neo4j's page cache is what its launcher sets (scripts/neo4j: 256 MB).",
    `  linked = plain's node under a (tenantId, id) uniqueness constraint, with a relationship to its trace's and its session's`,
    `  node (${result.load.linkedAnchors.toLocaleString("en-US")} BenchLinkedTrace/BenchLinkedSession nodes, each MERGEd once per batch it appears in, by a statement`,
    `  before the CREATE in the same transaction): the least a graph linking every event to its trace and session writes.`,
    `  stored = linked's write with each event's content (its payload's JSON text) on its node, linked to the same anchors:`,
    `  the least a graph that links every event and keeps what was said writes, with no lookup and no MERGE.`,
    `  The projection runs at ${pct(result.load.linkedRatio)} of linked's events/s and ${pct(result.load.storedRatio)} of stored's (${pct(result.load.ratio)} of plain's).`,
  );
  return out.join("\n");
}
