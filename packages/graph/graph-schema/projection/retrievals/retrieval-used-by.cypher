
UNWIND $rows AS r
MATCH (ret:Retrieval {tenantId: r.tenantId, id: r.runId})-[:PART_OF]->(t:Trace)
MATCH (t)<-[:PART_OF]-(c:LLMCall)<-[:INPUT_TO]-(p:Prompt)
WHERE p.id > r.eventId
MATCH (ret)-[:RETURNED]->(d:RetrievedDocument)
MERGE (d)-[:USED_BY]->(c)