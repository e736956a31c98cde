// A tenant's traces, newest first: the console's trace explorer (and `auditgraph query
// trace-search`). Metadata only (who, which agent and model versions, when, status, how many
// flags), never content, so a search is no read of audited content. Every filter is optional;
// pages are keyset-paginated on (startedAt, id): the next page starts before the last row's
// $beforeStartedAt and $beforeId. Replay runs and review records are left out unless $includeReplays.
// "unfinished" is a trace whose root has not ended (running, or no root run projected yet).
// The time bounds are written as one range on startedAt (coalesce: '' and '~' sort before and after
// every ISO time), so the (tenantId, startedAt) index seeks straight to the page; ordering by
// tenantId first lets the index give the rows in order, so a page reads about a page of entries.
// The other filters are checked on the rows the seek gives, newest first, until the page is full.
MATCH (t:Trace {tenantId: $tenantId})
WHERE t.startedAt >= coalesce($since, '')
  AND t.startedAt < coalesce($until, '~')
  AND t.startedAt <= coalesce($beforeStartedAt, '~')
  AND ($beforeStartedAt IS NULL OR t.startedAt < $beforeStartedAt OR t.id < $beforeId)
  AND ($includeReplays OR t.kind IS NULL)
  AND ($status IS NULL OR ($status = 'unfinished' AND coalesce(t.status, 'running') = 'running') OR t.status = $status)
  AND ($userId IS NULL OR EXISTS { (t)-[:REQUESTED_BY]->(:User {tenantId: $tenantId, id: $userId}) })
  AND ($agentId IS NULL OR EXISTS {
    MATCH (t)-[:HANDLED_BY]->(av:AgentVersion {tenantId: $tenantId})
    WHERE av.agentId = $agentId AND ($agentVersion IS NULL OR av.version = $agentVersion) })
  AND ($sessionId IS NULL OR EXISTS { (t)-[:IN_SESSION]->(:Session {tenantId: $tenantId, id: $sessionId}) })
  AND ($modelVersion IS NULL OR EXISTS {
    MATCH (t)<-[:PART_OF]-(:LLMCall {tenantId: $tenantId})-[:USED_MODEL]->(m:ModelVersion {tenantId: $tenantId})
    WHERE m.version = $modelVersion })
  AND ($flagged IS NULL
    OR ($flagged AND EXISTS { (:PolicyFlag {tenantId: $tenantId, traceId: t.id}) })
    OR (NOT $flagged AND NOT EXISTS { (:PolicyFlag {tenantId: $tenantId, traceId: t.id}) }))
  AND ($policyId IS NULL OR EXISTS { (:PolicyFlag {tenantId: $tenantId, traceId: t.id, policyId: $policyId}) })
WITH t ORDER BY t.tenantId DESC, t.startedAt DESC, t.id DESC LIMIT $limit
OPTIONAL MATCH (t)-[:REQUESTED_BY]->(u:User {tenantId: $tenantId})
OPTIONAL MATCH (t)-[:HANDLED_BY]->(av:AgentVersion {tenantId: $tenantId})
OPTIONAL MATCH (t)-[:IN_SESSION]->(s:Session {tenantId: $tenantId})
CALL (t) {
  OPTIONAL MATCH (t)<-[:PART_OF]-(:LLMCall {tenantId: $tenantId})-[:USED_MODEL]->(m:ModelVersion {tenantId: $tenantId})
  WITH m ORDER BY m.provider, m.name, m.version
  RETURN collect(DISTINCT CASE WHEN m IS NULL THEN null ELSE m {.provider, .name, .version} END) AS models
}
RETURN t.id AS traceId, t.tenantId AS tenantId, t.name AS name, t.startedAt AS startedAt, t.endedAt AS endedAt,
       t.status AS status, t.kind AS kind, u.id AS userId, t.operator AS operator,
       CASE WHEN av IS NULL THEN null ELSE {id: av.agentId, name: av.name, version: av.version} END AS agent,
       s.id AS sessionId, models,
       COUNT { (:PolicyFlag {tenantId: $tenantId, traceId: t.id}) } AS flags
ORDER BY startedAt DESC, traceId DESC
