
UNWIND $rows AS r
MATCH (f:PolicyFlag {tenantId: r.tenantId, id: r.id})
CALL (r, f) {
  WITH r, f WHERE r.kind = 'output'
  MATCH (n:Output {tenantId: r.tenantId, id: r.eventId})
  MERGE (n)-[:FLAGGED]->(f)
}
CALL (r, f) {
  WITH r, f WHERE r.kind = 'prompt'
  OPTIONAL MATCH (direct:Prompt {tenantId: r.tenantId, id: r.eventId})
  OPTIONAL MATCH (viaCall:Prompt)-[:INPUT_TO]->(:LLMCall {tenantId: r.tenantId, id: r.runId})
  WITH f, coalesce(direct, viaCall) AS n LIMIT 1
  WITH f, n WHERE n IS NOT NULL
  MERGE (n)-[:FLAGGED]->(f)
}
CALL (r, f) {
  WITH r, f WHERE r.kind = 'tool_call'
  MATCH (n:ToolCall {tenantId: r.tenantId, runId: r.runId})
  MERGE (n)-[:FLAGGED]->(f)
}
CALL (r, f) {
  WITH r, f WHERE r.kind = 'document'
  MATCH (:Retrieval {tenantId: r.tenantId, id: r.runId})-[rel:RETURNED]->(n:RetrievedDocument)
  WHERE size(r.ranks) = 0 OR rel.rank IN r.ranks
  MERGE (n)-[:FLAGGED]->(f)
}
CALL (r, f) {
  WITH r, f WHERE NOT EXISTS { ()-[:FLAGGED]->(f) }
  OPTIONAL MATCH (c:LLMCall {tenantId: r.tenantId, id: r.runId})
  OPTIONAL MATCH (t:Trace {tenantId: r.tenantId, id: r.traceId})
  WITH f, coalesce(c, t) AS n WHERE n IS NOT NULL
  MERGE (n)-[:FLAGGED]->(f)
}