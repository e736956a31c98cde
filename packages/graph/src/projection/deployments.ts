import neo4j from "neo4j-driver";
import { DEFAULT_ENVIRONMENT, canonicalJson } from "@auditgraph/core";
import { type Batch, type Step, distinctBy, ofType } from "./common.js";

// Deployments of agent and model versions, and the chain of deployments each one replaced.

// A deployment creates the version it deploys if no trace has used it yet: a rollout is on
// record before its first call.
const DEPLOYMENTS = `
UNWIND $rows AS r
MERGE (tn:Tenant {id: r.tenantId}) ON CREATE SET tn.tenantId = r.tenantId
MERGE (d:Deployment {tenantId: r.tenantId, id: r.id})
SET d += r.props
WITH r, d
CALL (r, d) {
  WITH r, d WHERE r.props.target = 'agent'
  MERGE (a:Agent {tenantId: r.tenantId, id: r.props.agentId}) ON CREATE SET a.name = coalesce(r.props.agentName, r.props.agentId)
  MERGE (av:AgentVersion {tenantId: r.tenantId, agentId: r.props.agentId, version: r.props.version}) ON CREATE SET av.name = a.name
  MERGE (a)-[:HAS_VERSION]->(av)
  MERGE (d)-[:DEPLOYED]->(av)
}
CALL (r, d) {
  WITH r, d WHERE r.props.target = 'model'
  MERGE (m:ModelVersion {tenantId: r.tenantId, provider: r.props.provider, name: r.props.model, version: r.props.version})
  MERGE (d)-[:DEPLOYED]->(m)
}`;

// Each deployment points at the one it replaced (PREVIOUS), per tenant, target and environment,
// in the order they were recorded: worker time, then ledger position (one stream per tenant).
// Recomputed whole for each target a batch deploys, so a deployment projected late still lands
// in its place.
const DEPLOYMENT_CHAIN = `
WITH d ORDER BY d.at, d.position
WITH collect(d) AS ds
UNWIND range(0, size(ds) - 1) AS i
WITH ds[i] AS d, CASE WHEN i > 0 THEN ds[i - 1] ELSE null END AS prev
OPTIONAL MATCH (d)-[stale:PREVIOUS]->(other) WHERE prev IS NULL OR other <> prev
DELETE stale
WITH DISTINCT d, prev WHERE prev IS NOT NULL
MERGE (d)-[:PREVIOUS]->(prev)`;

const AGENT_DEPLOYMENT_CHAIN = `
UNWIND $rows AS g
CALL (g) {
  MATCH (d:Deployment {tenantId: g.tenantId, agentId: g.agentId, environment: g.environment}) WHERE d.target = 'agent'
  ${DEPLOYMENT_CHAIN}
}`;

const MODEL_DEPLOYMENT_CHAIN = `
UNWIND $rows AS g
CALL (g) {
  MATCH (d:Deployment {tenantId: g.tenantId, provider: g.provider, model: g.model, environment: g.environment}) WHERE d.target = 'model'
  ${DEPLOYMENT_CHAIN}
}`;

function deploymentRows(b: Batch) {
  return ofType(b.all, "deployment").map((r) => {
    const p = r.event.payload;
    return {
      tenantId: r.event.tenantId,
      id: r.event.eventId,
      props: {
        target: p.target,
        action: p.action,
        environment: p.environment ?? DEFAULT_ENVIRONMENT,
        version: p.version,
        agentId: p.target === "agent" ? p.agentId : null,
        agentName: p.target === "agent" ? (p.agentName ?? null) : null,
        provider: p.target === "model" ? p.provider : null,
        model: p.target === "model" ? p.name : null,
        previousVersion: p.previousVersion ?? null,
        reason: p.reason ?? null,
        by: p.by ?? null,
        // The worker's time counts, as for outputs: "live when an output was produced" compares the two.
        at: r.recordedAt,
        occurredAt: r.event.occurredAt,
        streamId: r.streamId,
        position: neo4j.int(r.position),
      },
    };
  });
}

const targets = (b: Batch) => b.derive(deploymentRows).map((d) => ({ tenantId: d.tenantId, ...d.props }));

export const deploymentSteps = {
  deployments: { cypher: DEPLOYMENTS, rows: (b) => b.derive(deploymentRows) },
  agentDeploymentChain: {
    cypher: AGENT_DEPLOYMENT_CHAIN,
    rows: (b) =>
      distinctBy(
        b.derive(targets).filter((t) => t.target === "agent"),
        (t) => canonicalJson([t.tenantId, t.agentId, t.environment]),
      ).map(({ tenantId, agentId, environment }) => ({ tenantId, agentId, environment })),
  },
  modelDeploymentChain: {
    cypher: MODEL_DEPLOYMENT_CHAIN,
    rows: (b) =>
      distinctBy(
        b.derive(targets).filter((t) => t.target === "model"),
        (t) => canonicalJson([t.tenantId, t.provider, t.model, t.environment]),
      ).map(({ tenantId, provider, model, environment }) => ({ tenantId, provider, model, environment })),
  },
} satisfies Record<string, Step>;
