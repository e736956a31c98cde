import { SCHEMA_VERSION, hashCanonical, newEventId, type AgentIdentitySchema, type AuditEvent } from "@auditgraph/core";
import type { z } from "zod";
import type { Snapshot } from "./snapshot.js";
import type { Review } from "./review.js";
import type { TraceResult } from "./replay.js";

/** The `custom` event name the projection turns into a (:Review) node. */
export const REVIEW_EVENT_NAME = "auditgraph.review";

/** A snapshot's identity: the hash of its manifest, which names every checkpoint its proofs rest on. */
export const snapshotIdOf = (snapshot: Snapshot): string => hashCanonical(snapshot.manifest);

/**
 * The review as events to append (one per tenant of the snapshot, each in that tenant's stream),
 * so that it is stored like everything else: ledger first, the graph projected from it. They
 * carry counts and versions only, never an output: a review holds no more than the ledger does.
 */
export function reviewEvents(
  review: Review,
  results: readonly TraceResult[],
  snapshot: Snapshot,
  options: { candidate: z.infer<typeof AgentIdentitySchema>; operator: string },
): AuditEvent[] {
  const snapshotId = snapshotIdOf(snapshot);
  const tenants = new Map<string, Set<string>>();
  for (const r of results) {
    // From the opened trace: a sealed record shows no tenant.
    const tenant = r.original.tenantId;
    if (!tenant) continue;
    let versions = tenants.get(tenant);
    if (!versions) tenants.set(tenant, (versions = new Set()));
    if (r.original.agentVersion && (!r.original.agentId || r.original.agentId === options.candidate.id)) versions.add(r.original.agentVersion);
  }
  const reviewId = newEventId();
  const a = review.aggregate;
  return [...tenants].map(([tenantId, baselineVersions]) => ({
    eventId: newEventId(),
    schemaVersion: SCHEMA_VERSION,
    occurredAt: new Date().toISOString(),
    traceId: reviewId,
    runId: reviewId,
    parentRunId: null,
    sessionId: null,
    identity: { user: { id: options.operator, tenantId }, agent: options.candidate },
    type: "custom",
    payload: {
      name: REVIEW_EVENT_NAME,
      data: {
        reviewId,
        snapshotId,
        agentId: options.candidate.id,
        candidateVersion: options.candidate.version,
        baselineVersions: [...baselineVersions].sort(),
        traces: a.traces,
        outputMatchRate: a.outputMatchRate,
        trajectoryMatchRate: a.trajectoryMatchRate,
        divergences: a.divergences,
        errors: a.errors,
        tokensOriginal: a.tokens.original,
        tokensCandidate: a.tokens.candidate,
        gatePassed: review.gate.passed,
      },
    },
  }));
}
