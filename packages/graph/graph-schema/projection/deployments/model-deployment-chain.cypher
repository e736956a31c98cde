
UNWIND $rows AS g
CALL (g) {
  MATCH (d:Deployment {tenantId: g.tenantId, provider: g.provider, model: g.model, environment: g.environment}) WHERE d.target = 'model'
  
WITH d ORDER BY d.at, d.position
WITH collect(d) AS ds
UNWIND range(0, size(ds) - 1) AS i
WITH ds[i] AS d, CASE WHEN i > 0 THEN ds[i - 1] ELSE null END AS prev
OPTIONAL MATCH (d)-[stale:PREVIOUS]->(other) WHERE prev IS NULL OR other <> prev
DELETE stale
WITH DISTINCT d, prev WHERE prev IS NOT NULL
MERGE (d)-[:PREVIOUS]->(prev)
}