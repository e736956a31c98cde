import { canonicalJson } from "@auditgraph/core";
import type { Graph } from "@auditgraph/graph";

/**
 * One tenant's part of the graph, in a form two projections can be compared by: every node of
 * the tenant (labels and properties), and every relationship touching one, named by its type,
 * properties and its two ends' labels and properties. Generic over labels and relationship types
 * (whatever the projection adds), and free of Neo4j's internal ids; each item is canonical JSON,
 * sorted, so a difference reads as a line.
 */
export interface TenantDump {
  nodes: string[];
  relationships: string[];
}

const TENANT_NODES = `MATCH (n) WHERE n.tenantId = $tenantId OR (n:Tenant AND n.id = $tenantId)`;

/** Neo4j values as JSON: temporal and spatial values by their text. */
function plain(value: unknown): unknown {
  if (value === null || ["string", "number", "boolean"].includes(typeof value)) return value;
  if (Array.isArray(value)) return value.map(plain);
  if (typeof value === "object" && value.constructor === Object)
    return Object.fromEntries(Object.entries(value as Record<string, unknown>).map(([k, v]) => [k, plain(v)]));
  return String(value);
}

const nodeOf = (labels: unknown, props: unknown) => ({ labels: [...(labels as string[])].sort(), props: plain(props) });

export async function dumpTenant(graph: Graph, tenantId: string): Promise<TenantDump> {
  const nodes = await graph.read(`${TENANT_NODES} RETURN labels(n) AS labels, properties(n) AS props`, { tenantId });
  const relationships = await graph.read(
    `${TENANT_NODES}
     MATCH (n)-[r]-()
     WITH DISTINCT r
     WITH r, startNode(r) AS a, endNode(r) AS b
     RETURN type(r) AS type, properties(r) AS props, labels(a) AS aLabels, properties(a) AS aProps, labels(b) AS bLabels, properties(b) AS bProps`,
    { tenantId },
  );
  return {
    nodes: nodes.map((n) => canonicalJson(nodeOf(n.labels, n.props))).sort(),
    relationships: relationships
      .map((r) => canonicalJson({ start: nodeOf(r.aLabels, r.aProps), type: r.type, props: plain(r.props), end: nodeOf(r.bLabels, r.bProps) }))
      .sort(),
  };
}

/**
 * A dump without what an erasure left behind: the nodes it marked (`erased = true`), the
 * relationships touching them, and the nodes that only they were linked to (the erased traces'
 * own session). That is what the ledger can still give a rebuild: the erased records cannot be read.
 */
export function withoutErased(dump: TenantDump): TenantDump {
  const erased = (node: { props: unknown }) => (node.props as Record<string, unknown>).erased === true;
  const rels = dump.relationships.map((r) => JSON.parse(r) as { start: { props: unknown }; end: { props: unknown } });
  const kept = new Set<string>();
  const touched = new Set<string>();
  for (const r of rels) {
    const ends = [canonicalJson(r.start), canonicalJson(r.end)];
    for (const e of ends) touched.add(e);
    if (!erased(r.start) && !erased(r.end)) for (const e of ends) kept.add(e);
  }
  return {
    nodes: dump.nodes.filter((n) => !erased(JSON.parse(n)) && (kept.has(n) || !touched.has(n))),
    relationships: dump.relationships.filter((_, i) => !erased(rels[i]!.start) && !erased(rels[i]!.end)),
  };
}
