// Every node is keyed within its tenant: ids come from agent processes, so a key without the
// tenant would let one tenant's ids reach another tenant's nodes. Agents, agent versions, model
// versions and tools were shared across tenants; they become one node per tenant. The old
// uniqueness constraints go first: a per-tenant copy of a shared node would break them.
DROP CONSTRAINT agent_id IF EXISTS;
DROP CONSTRAINT agent_version_key IF EXISTS;
DROP CONSTRAINT model_version_key IF EXISTS;
DROP CONSTRAINT tool_name IF EXISTS;
DROP CONSTRAINT trace_id IF EXISTS;
DROP CONSTRAINT prompt_id IF EXISTS;
DROP CONSTRAINT llm_call_id IF EXISTS;
DROP CONSTRAINT output_id IF EXISTS;
DROP CONSTRAINT tool_call_key IF EXISTS;
DROP CONSTRAINT reasoning_step_id IF EXISTS;
CREATE CONSTRAINT agent_tenant_key IF NOT EXISTS FOR (n:Agent) REQUIRE (n.tenantId, n.id) IS UNIQUE;
CREATE CONSTRAINT agent_version_tenant_key IF NOT EXISTS FOR (n:AgentVersion) REQUIRE (n.tenantId, n.agentId, n.version) IS UNIQUE;
CREATE CONSTRAINT model_version_tenant_key IF NOT EXISTS FOR (n:ModelVersion) REQUIRE (n.tenantId, n.provider, n.name, n.version) IS UNIQUE;
CREATE CONSTRAINT tool_tenant_key IF NOT EXISTS FOR (n:Tool) REQUIRE (n.tenantId, n.name) IS UNIQUE;
CREATE CONSTRAINT trace_tenant_key IF NOT EXISTS FOR (n:Trace) REQUIRE (n.tenantId, n.id) IS UNIQUE;
CREATE CONSTRAINT prompt_tenant_key IF NOT EXISTS FOR (n:Prompt) REQUIRE (n.tenantId, n.id) IS UNIQUE;
CREATE CONSTRAINT llm_call_tenant_key IF NOT EXISTS FOR (n:LLMCall) REQUIRE (n.tenantId, n.id) IS UNIQUE;
CREATE CONSTRAINT output_tenant_key IF NOT EXISTS FOR (n:Output) REQUIRE (n.tenantId, n.id) IS UNIQUE;
CREATE CONSTRAINT tool_call_tenant_key IF NOT EXISTS FOR (n:ToolCall) REQUIRE (n.tenantId, n.traceId, n.callId) IS UNIQUE;
CREATE CONSTRAINT reasoning_step_tenant_key IF NOT EXISTS FOR (n:ReasoningStep) REQUIRE (n.tenantId, n.id) IS UNIQUE;
// `auditgraph trace <id>` is given an id without its tenant.
CREATE INDEX trace_id_lookup IF NOT EXISTS FOR (n:Trace) ON (n.id);
CREATE INDEX output_id_lookup IF NOT EXISTS FOR (n:Output) ON (n.id);
// A trace's tool calls (those the model asked for but that never ran have no PART_OF).
CREATE INDEX tool_call_trace IF NOT EXISTS FOR (n:ToolCall) ON (n.tenantId, n.traceId);
// The graph projected before this migration, brought to the new keys (a graph rebuilt from the
// ledger needs none of it). Tool calls first created by a reasoning step had no tenant.
MATCH (x:ToolCall) WHERE x.tenantId IS NULL
MATCH (t:Trace {id: x.traceId})
SET x.tenantId = t.tenantId;
MATCH (n:Tenant) WHERE n.tenantId IS NULL
SET n.tenantId = n.id;
MATCH (a:Agent) WHERE a.tenantId IS NULL
MATCH (a)-[r:ACTED_ON_BEHALF_OF]->(u:User)
MERGE (b:Agent {tenantId: u.tenantId, id: a.id}) ON CREATE SET b.name = a.name
MERGE (b)-[:ACTED_ON_BEHALF_OF {traceId: r.traceId}]->(u);
MATCH (av:AgentVersion) WHERE av.tenantId IS NULL
MATCH (t:Trace)-[:HANDLED_BY]->(av)
MERGE (b:AgentVersion {tenantId: t.tenantId, agentId: av.agentId, version: av.version}) ON CREATE SET b.name = av.name
MERGE (t)-[:HANDLED_BY]->(b)
MERGE (a:Agent {tenantId: t.tenantId, id: av.agentId}) ON CREATE SET a.name = av.name
MERGE (a)-[:HAS_VERSION]->(b);
MATCH (m:ModelVersion) WHERE m.tenantId IS NULL
MATCH (c:LLMCall)-[:USED_MODEL]->(m)
MERGE (b:ModelVersion {tenantId: c.tenantId, provider: m.provider, name: m.name, version: m.version})
MERGE (c)-[:USED_MODEL]->(b);
MATCH (tool:Tool) WHERE tool.tenantId IS NULL
MATCH (x:ToolCall)-[:INVOKED]->(tool)
MERGE (b:Tool {tenantId: x.tenantId, name: tool.name})
MERGE (x)-[:INVOKED]->(b);
MATCH (n) WHERE (n:Agent OR n:AgentVersion OR n:ModelVersion OR n:Tool) AND n.tenantId IS NULL
DETACH DELETE n;
