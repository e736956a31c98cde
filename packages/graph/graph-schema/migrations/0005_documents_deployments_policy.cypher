// Retriever runs and the documents they returned, per tenant.
CREATE CONSTRAINT retrieval_tenant_key IF NOT EXISTS FOR (n:Retrieval) REQUIRE (n.tenantId, n.id) IS UNIQUE;
CREATE CONSTRAINT retrieved_document_tenant_key IF NOT EXISTS FOR (n:RetrievedDocument) REQUIRE (n.tenantId, n.id) IS UNIQUE;
// A tool run finds the retriever runs inside it by their parent run.
CREATE INDEX retrieval_parent IF NOT EXISTS FOR (n:Retrieval) ON (n.tenantId, n.traceId, n.parentRunId);
// Deployments, and "which version of this agent / model was live at T": the latest deployment
// of the target in the environment at or before T.
CREATE CONSTRAINT deployment_tenant_key IF NOT EXISTS FOR (n:Deployment) REQUIRE (n.tenantId, n.id) IS UNIQUE;
CREATE INDEX deployment_agent IF NOT EXISTS FOR (n:Deployment) ON (n.tenantId, n.agentId, n.environment);
CREATE INDEX deployment_model IF NOT EXISTS FOR (n:Deployment) ON (n.tenantId, n.provider, n.model, n.environment);
// Policies, the flags they raise and the escalations of flags: keys only, projected by the
// policy engine (see graph-schema/README.md).
CREATE CONSTRAINT policy_tenant_key IF NOT EXISTS FOR (n:Policy) REQUIRE (n.tenantId, n.id) IS UNIQUE;
CREATE CONSTRAINT policy_flag_tenant_key IF NOT EXISTS FOR (n:PolicyFlag) REQUIRE (n.tenantId, n.id) IS UNIQUE;
CREATE CONSTRAINT escalation_tenant_key IF NOT EXISTS FOR (n:Escalation) REQUIRE (n.tenantId, n.id) IS UNIQUE;
