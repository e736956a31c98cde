// trace-search's start when a user is given: that user's traces, from the user (an index seek on
// User (tenantId, id)), in place of trace-search.cypher's first MATCH (the tenant's traces, newest
// first). The rest of the query (filters, order, page) is trace-search.cypher's.
MATCH (:User {tenantId: $tenantId, id: $userId})<-[:REQUESTED_BY]-(t:Trace {tenantId: $tenantId})
