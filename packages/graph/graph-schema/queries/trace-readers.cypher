// Who has read one trace of the tenant (access events the console appended before it showed the
// trace): the reader, how they signed in, what they did, when (the ledger's time) and from where,
// newest first. Only accesses of the same tenant can READ its trace (the projection keys both by it).
MATCH (:Trace {tenantId: $tenantId, id: $traceId})<-[:READ]-(a:Access {tenantId: $tenantId})
RETURN a.actorId AS actorId, a.actorName AS actorName, a.via AS via, a.action AS action, a.at AS at, a.ip AS ip
ORDER BY at DESC, a.id DESC
LIMIT $limit
