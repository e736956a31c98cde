// Flags per 1,000 outputs, per day (worker time, UTC) and per model version ($by = 'model') or
// agent version ($by = 'agent'), within one tenant. An output counts for the model version that
// served it and the agent version that handled its trace; a flag counts for the agent version of
// its trace and for every model version its trace's model calls were served by (a flag is about
// the run, and a run may use several). Days with outputs and no flags say 0; flags on a day
// without outputs of that version have no rate (null). Outputs and flags of replay runs and
// review records are left out unless $includeReplays.
CALL () {
  MATCH (o:Output {tenantId: $tenantId})
  WHERE ($since IS NULL OR o.recordedAt >= $since) AND ($until IS NULL OR o.recordedAt < $until)
  MATCH (o)<-[:GENERATED]-(c:LLMCall)-[:PART_OF]->(ot:Trace)
  WHERE $includeReplays OR ot.kind IS NULL
  CALL (c) {
    WITH c WHERE $by = 'model'
    MATCH (c)-[:USED_MODEL]->(m:ModelVersion)
    RETURN m.provider + '/' + m.name AS subject, m.version AS version
    UNION
    WITH c WHERE $by = 'agent'
    MATCH (c)-[:PART_OF]->(:Trace)-[:HANDLED_BY]->(av:AgentVersion)
    RETURN av.agentId AS subject, av.version AS version
  }
  RETURN subject, version, substring(o.recordedAt, 0, 10) AS day, count(DISTINCT o) AS outputs, 0 AS flags
  UNION ALL
  MATCH (f:PolicyFlag {tenantId: $tenantId})
  WHERE ($since IS NULL OR f.at >= $since) AND ($until IS NULL OR f.at < $until)
  MATCH (t:Trace {tenantId: $tenantId, id: f.traceId})
  WHERE $includeReplays OR t.kind IS NULL
  CALL (t) {
    WITH t WHERE $by = 'model'
    MATCH (t)<-[:PART_OF]-(:LLMCall)-[:USED_MODEL]->(m:ModelVersion)
    RETURN DISTINCT m.provider + '/' + m.name AS subject, m.version AS version
    UNION
    WITH t WHERE $by = 'agent'
    MATCH (t)-[:HANDLED_BY]->(av:AgentVersion)
    RETURN av.agentId AS subject, av.version AS version
  }
  RETURN subject, version, substring(f.at, 0, 10) AS day, 0 AS outputs, count(DISTINCT f) AS flags
}
WITH subject, version, day, sum(outputs) AS outputs, sum(flags) AS flags
RETURN day, subject, version, outputs, flags,
       CASE WHEN outputs = 0 THEN null ELSE toFloat(flags) * 1000.0 / outputs END AS flagsPer1000
ORDER BY day, subject, version
LIMIT $limit
