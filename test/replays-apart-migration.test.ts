// Migration 0012 on a graph projected before it: a tenant's session with a replay run in its
// order, and a review record projected as if its operator were a user the agent acted for. The
// migration's statements are run as `migrate` runs them (it was applied to this database when
// the graph was migrated, and it only changes what still has the old shape).
import { randomUUID } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import neo4j, { type Driver } from "neo4j-driver";
import { afterAll, describe, expect, it } from "vitest";
import { DEFAULT_MIGRATIONS_DIR, Graph, investigate, splitStatements } from "@auditgraph/graph";
import { loadConfig } from "@auditgraph/cli";

const config = loadConfig();
let graph: Graph | undefined;
let driver: Driver | undefined;
afterAll(async () => {
  await graph?.close();
  await driver?.close();
});

// The shape the projection gave before 0012: no `kind`, the replay in the session's order, the
// review's operator a User with REQUESTED_BY and ACTED_ON_BEHALF_OF.
const OLD_SHAPE = `
CREATE (tn:Tenant {id: $tenantId, tenantId: $tenantId})
CREATE (ana:User {tenantId: $tenantId, id: 'ana'})-[:MEMBER_OF]->(tn)
CREATE (op:User {tenantId: $tenantId, id: 'op'})-[:MEMBER_OF]->(tn)
CREATE (a:Agent {tenantId: $tenantId, id: 'orders'})
CREATE (v1:AgentVersion {tenantId: $tenantId, agentId: 'orders', version: '1.0.0'}), (v2:AgentVersion {tenantId: $tenantId, agentId: 'orders', version: '2.0.0'})
CREATE (a)-[:HAS_VERSION]->(v1), (a)-[:HAS_VERSION]->(v2)
CREATE (s:Session {tenantId: $tenantId, id: 's-ana'})
CREATE (t1:Trace {tenantId: $tenantId, id: 't1', firstEventId: '01', startedAt: '2026-01-01T00:00:01.000Z'})
CREATE (r1:Trace {tenantId: $tenantId, id: 'r1', firstEventId: '02', startedAt: '2026-01-01T00:00:02.000Z'})
CREATE (t2:Trace {tenantId: $tenantId, id: 't2', firstEventId: '03', startedAt: '2026-01-01T00:00:03.000Z'})
CREATE (rv:Trace {tenantId: $tenantId, id: 'rv', firstEventId: '04', startedAt: '2026-01-01T00:00:04.000Z'})
CREATE (review:Review {tenantId: $tenantId, id: 'rv'})
CREATE (r1)-[:REPLAY_OF]->(t1)
FOREACH (t IN [t1, t2] | CREATE (t)-[:REQUESTED_BY]->(ana), (t)-[:HANDLED_BY]->(v1), (t)-[:IN_SESSION]->(s))
CREATE (a)-[:ACTED_ON_BEHALF_OF {traceId: 't1'}]->(ana), (a)-[:ACTED_ON_BEHALF_OF {traceId: 't2'}]->(ana)
CREATE (r1)-[:REQUESTED_BY]->(ana), (r1)-[:HANDLED_BY]->(v2), (r1)-[:IN_SESSION]->(s), (a)-[:ACTED_ON_BEHALF_OF {traceId: 'r1'}]->(ana)
CREATE (rv)-[:REQUESTED_BY]->(op), (rv)-[:HANDLED_BY]->(v2), (a)-[:ACTED_ON_BEHALF_OF {traceId: 'rv'}]->(op)
CREATE (s)-[:FIRST_TRACE]->(t1), (t1)-[:NEXT_TRACE]->(r1), (r1)-[:NEXT_TRACE]->(t2)`;

describe("migration 0012_replays_apart", () => {
  it("marks replays and review records, unlinks the operator and orders the session without them", async () => {
    graph = new Graph(config.neo4j);
    await graph.migrate();
    driver = neo4j.driver(config.neo4j.uri, neo4j.auth.basic(config.neo4j.user, config.neo4j.password));
    const tenantId = `apart-mig-${randomUUID().slice(0, 8)}`;
    const write = (cypher: string, params: Record<string, unknown> = {}) => driver!.executeQuery(cypher, params, { database: config.neo4j.database });
    await write(OLD_SHAPE, { tenantId });
    const text = await readFile(join(DEFAULT_MIGRATIONS_DIR, "0012_replays_apart.cypher"), "utf8");
    for (const statement of splitStatements(text)) await write(statement);

    const [row] = await graph.read(
      `MATCH (s:Session {tenantId: $tenantId, id: 's-ana'})-[:FIRST_TRACE]->(first:Trace)
       MATCH path = (first)-[:NEXT_TRACE*0..]->(last) WHERE NOT (last)-[:NEXT_TRACE]->()
       RETURN [t IN nodes(path) | t.id] AS order,
              COUNT { MATCH (r:Trace {tenantId: $tenantId})-[:NEXT_TRACE]-() WHERE r.kind IS NOT NULL } AS apartInOrder,
              COLLECT { MATCH (t:Trace {tenantId: $tenantId}) WHERE t.kind IS NOT NULL RETURN t.id + ':' + t.kind } AS kinds,
              COUNT { MATCH (u:User {tenantId: $tenantId, id: 'op'}) } AS operatorUsers,
              COLLECT { MATCH (t:Trace {tenantId: $tenantId, id: 'rv'}) RETURN t.operator }[0] AS traceOperator,
              COLLECT { MATCH (rv:Review {tenantId: $tenantId}) RETURN rv.operator }[0] AS reviewOperator`,
      { tenantId },
    );
    expect(row).toEqual({
      order: ["t1", "t2"],
      apartInOrder: expect.anything(),
      kinds: expect.any(Array),
      operatorUsers: expect.anything(),
      traceOperator: "op",
      reviewOperator: "op",
    });
    expect(Number(row!.apartInOrder)).toBe(0);
    expect((row!.kinds as string[]).sort()).toEqual(["r1:replay", "rv:review"]);
    expect(Number(row!.operatorUsers)).toBe(0);
    // And the investigations read the migrated graph as production only.
    const acted = await investigate(graph, "on-behalf-of", { tenantId, agentId: "orders" });
    expect(acted.map((r) => [r.userId, r.agentVersion, r.traces])).toEqual([["ana", "1.0.0", 2]]);
    expect((await investigate(graph, "user-activity", { tenantId, userId: "ana" })).map((r) => r.traceId).sort()).toEqual(["t1", "t2"]);
  });
});
