
UNWIND $rows AS r
MERGE (rv:Review {tenantId: r.tenantId, id: r.reviewId})
SET rv.eventId = r.eventId, rv.at = r.recordedAt, rv.operator = r.operator, rv.traces = r.traces, rv.outputMatchRate = r.outputMatchRate,
    rv.trajectoryMatchRate = r.trajectoryMatchRate, rv.divergences = r.divergences, rv.errors = r.errors,
    rv.tokensOriginal = r.tokensOriginal, rv.tokensCandidate = r.tokensCandidate, rv.gatePassed = r.gatePassed
MERGE (s:Snapshot {tenantId: r.tenantId, id: r.snapshotId})
MERGE (rv)-[:OF_SNAPSHOT]->(s)
MERGE (c:AgentVersion {tenantId: r.tenantId, agentId: r.agentId, version: r.candidateVersion})
MERGE (rv)-[:CANDIDATE]->(c)
FOREACH (v IN r.baselineVersions |
  MERGE (b:AgentVersion {tenantId: r.tenantId, agentId: r.agentId, version: v})
  MERGE (rv)-[:BASELINE]->(b))