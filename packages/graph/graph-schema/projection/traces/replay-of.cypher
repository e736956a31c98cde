
UNWIND $rows AS r
MATCH (t:Trace {tenantId: r.tenantId, id: r.traceId})
MERGE (o:Trace {tenantId: r.tenantId, id: r.originalTraceId})
MERGE (t)-[:REPLAY_OF]->(o)