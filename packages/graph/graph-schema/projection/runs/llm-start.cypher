
UNWIND $rows AS r
MATCH (t:Trace {tenantId: r.tenantId, id: r.traceId})
MERGE (c:LLMCall {tenantId: r.tenantId, id: r.runId})
SET c.traceId = r.traceId, c.startedAt = r.recordedAt,
    c.requestedProvider = r.provider, c.requestedModel = r.model, c.params = r.params,
    c.status = coalesce(c.status, 'running')
MERGE (c)-[:PART_OF]->(t)
MERGE (p:Prompt {tenantId: r.tenantId, id: r.eventId})
SET p.traceId = r.traceId, p.hash = r.promptHash, p.messages = r.messages,
    p.templateHash = r.templateHash, p.streamId = r.streamId, p.position = r.position, p.recordedAt = r.recordedAt
MERGE (p)-[:INPUT_TO]->(c)
WITH r, t, c
CALL (r, t, c) {
  MATCH (t)<-[:PART_OF]-(ret:Retrieval)-[:RETURNED]->(d:RetrievedDocument)
  WHERE ret.endEventId < r.eventId
  MERGE (d)-[:USED_BY]->(c)
}