
UNWIND $rows AS r
MERGE (tn:Tenant {id: r.tenantId}) ON CREATE SET tn.tenantId = r.tenantId
MERGE (d:Deployment {tenantId: r.tenantId, id: r.id})
SET d += r.props
WITH r, d
CALL (r, d) {
  WITH r, d WHERE r.props.target = 'agent'
  MERGE (a:Agent {tenantId: r.tenantId, id: r.props.agentId}) ON CREATE SET a.name = coalesce(r.props.agentName, r.props.agentId)
  MERGE (av:AgentVersion {tenantId: r.tenantId, agentId: r.props.agentId, version: r.props.version}) ON CREATE SET av.name = a.name
  MERGE (a)-[:HAS_VERSION]->(av)
  MERGE (d)-[:DEPLOYED]->(av)
}
CALL (r, d) {
  WITH r, d WHERE r.props.target = 'model'
  MERGE (m:ModelVersion {tenantId: r.tenantId, provider: r.props.provider, name: r.props.model, version: r.props.version})
  MERGE (d)-[:DEPLOYED]->(m)
}