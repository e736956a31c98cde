import neo4j from "neo4j-driver";
import { DEFAULT_ENVIRONMENT, canonicalJson } from "@auditgraph/core";
import { type Batch, type Step, distinctBy, ofType } from "./common.js";
import { statement } from "./statement.js";

// Deployments of agent and model versions, and the chain of deployments each one replaced.

// A deployment creates the version it deploys if no trace has used it yet: a rollout is on
// record before its first call.
const DEPLOYMENTS = statement("deployments", "deployments");

// Each deployment points at the one it replaced (PREVIOUS), per tenant, target and environment,
// in the order they were recorded: worker time, then ledger position (one stream per tenant).
// Recomputed whole for each target a batch deploys, so a deployment projected late still lands
// in its place. The agent's and the model's statements differ only in the MATCH of the target's
// deployments; the chain after it is the same text in both files.
const AGENT_DEPLOYMENT_CHAIN = statement("deployments", "agent-deployment-chain");

const MODEL_DEPLOYMENT_CHAIN = statement("deployments", "model-deployment-chain");

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
