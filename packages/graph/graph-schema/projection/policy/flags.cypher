
UNWIND $rows AS r
MERGE (f:PolicyFlag {tenantId: r.tenantId, id: r.id})
SET f += r.props
MERGE (pol:Policy {tenantId: r.tenantId, id: r.policyKey})
ON CREATE SET pol.policyId = r.props.policyId, pol.version = r.props.policyVersion
MERGE (f)-[:OF_POLICY]->(pol)