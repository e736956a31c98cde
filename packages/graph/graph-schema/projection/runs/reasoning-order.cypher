
UNWIND $rows AS r
UNWIND r.steps AS step
MATCH (prev:ReasoningStep {tenantId: r.tenantId, id: step.prevId}), (s:ReasoningStep {tenantId: r.tenantId, id: step.id})
MERGE (prev)-[:NEXT]->(s)