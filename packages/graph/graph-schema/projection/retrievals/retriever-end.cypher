
UNWIND $rows AS r
MATCH (t:Trace {tenantId: r.tenantId, id: r.traceId})
MERGE (ret:Retrieval {tenantId: r.tenantId, id: r.runId})
SET ret.traceId = r.traceId, ret.parentRunId = r.parentRunId, ret.endedAt = r.recordedAt, ret.endEventId = r.eventId,
    ret.status = 'ok', ret.documentCount = size(r.documents)
MERGE (ret)-[:PART_OF]->(t)
WITH r, ret, t
CALL (r, ret) {
  UNWIND r.documents AS doc
  MERGE (d:RetrievedDocument {tenantId: r.tenantId, id: doc.id})
  SET d.sourceId = doc.sourceId, d.content = doc.content, d.metadata = doc.metadata, d.contentHash = doc.contentHash
  MERGE (ret)-[rel:RETURNED]->(d)
  ON CREATE SET rel.rank = doc.rank, rel.contentHash = doc.contentHash
}
// USED_BY, after the documents and this batch's prompts (see retrievals.ts for the rule).
CALL (r, ret, t) {
  MATCH (t)<-[:PART_OF]-(c:LLMCall)<-[:INPUT_TO]-(p:Prompt)
  WHERE p.id > r.eventId
  MATCH (ret)-[:RETURNED]->(d:RetrievedDocument)
  MERGE (d)-[:USED_BY]->(c)
}
