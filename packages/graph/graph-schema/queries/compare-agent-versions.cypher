// Past replay reviews of an agent (or all agents) of a tenant, newest first: the candidate
// version, the versions it was compared with, the snapshot and what the review found. Reviews
// are what this reads (the Review nodes, not the review records' traces): $includeReplays
// changes nothing here.
MATCH (rv:Review {tenantId: $tenantId})-[:CANDIDATE]->(c:AgentVersion)
WHERE ($agentId IS NULL OR c.agentId = $agentId)
  AND ($version IS NULL OR c.version = $version OR EXISTS { (rv)-[:BASELINE]->(:AgentVersion {version: $version}) })
OPTIONAL MATCH (rv)-[:BASELINE]->(b:AgentVersion)
OPTIONAL MATCH (rv)-[:OF_SNAPSHOT]->(s:Snapshot)
WITH rv, c, s, collect(DISTINCT b.version) AS baselines
RETURN rv.id AS reviewId, rv.at AS at, c.agentId AS agentId, c.version AS candidateVersion,
       baselines AS baselineVersions, s.id AS snapshotId, rv.traces AS traces,
       rv.outputMatchRate AS outputMatchRate, rv.trajectoryMatchRate AS trajectoryMatchRate,
       rv.divergences AS divergences, rv.errors AS errors, rv.gatePassed AS gatePassed
ORDER BY at DESC
LIMIT $limit
