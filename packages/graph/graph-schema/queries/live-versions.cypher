// Which version of each agent and model was live in an environment at a time: per target, the
// latest deployment at or before it (a rollback is a deployment of the version it goes back to).
// Deployments are never replays: $includeReplays changes nothing here.
MATCH (d:Deployment {tenantId: $tenantId, environment: $environment})
WHERE d.at <= $at
  AND ($agentId IS NULL OR d.agentId = $agentId)
  AND ($provider IS NULL OR d.provider = $provider)
  AND ($model IS NULL OR d.model = $model)
WITH d ORDER BY d.at DESC, d.position DESC
WITH d.target AS target, d.agentId AS agentId, d.provider AS provider, d.model AS model, head(collect(d)) AS live
RETURN target, agentId, provider, model, live.version AS version, live.action AS action,
       live.at AS deployedAt, live.id AS deploymentId, live.previousVersion AS previousVersion
ORDER BY target, agentId, provider, model
LIMIT $limit
