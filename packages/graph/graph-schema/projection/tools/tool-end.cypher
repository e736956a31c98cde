
UNWIND $rows AS r
MATCH (t:Trace {tenantId: r.tenantId, id: r.traceId})
MERGE (x:ToolCall {tenantId: r.tenantId, runId: r.runId})
SET x.traceId = r.traceId, x.callId = r.callId, x.endedAt = r.recordedAt, x.endEventId = r.eventId,
    x.status = r.status, x.output = r.output, x.error = r.error,
    // The end's name too (its start's wins): approval-integrity finds a run whose start never came.
    x.name = coalesce(x.name, r.name), x.refused = r.refused
MERGE (x)-[:PART_OF]->(t)