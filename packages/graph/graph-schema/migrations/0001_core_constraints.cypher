// Uniqueness constraints the projection MERGEs on (each also backs an index).
// Community edition: single and composite property uniqueness; no node keys.
CREATE CONSTRAINT migration_version IF NOT EXISTS FOR (n:Migration) REQUIRE n.version IS UNIQUE;
CREATE CONSTRAINT tenant_id IF NOT EXISTS FOR (n:Tenant) REQUIRE n.id IS UNIQUE;
CREATE CONSTRAINT user_key IF NOT EXISTS FOR (n:User) REQUIRE (n.tenantId, n.id) IS UNIQUE;
CREATE CONSTRAINT agent_id IF NOT EXISTS FOR (n:Agent) REQUIRE n.id IS UNIQUE;
CREATE CONSTRAINT agent_version_key IF NOT EXISTS FOR (n:AgentVersion) REQUIRE (n.agentId, n.version) IS UNIQUE;
CREATE CONSTRAINT session_key IF NOT EXISTS FOR (n:Session) REQUIRE (n.tenantId, n.id) IS UNIQUE;
CREATE CONSTRAINT trace_id IF NOT EXISTS FOR (n:Trace) REQUIRE n.id IS UNIQUE;
CREATE CONSTRAINT prompt_id IF NOT EXISTS FOR (n:Prompt) REQUIRE n.id IS UNIQUE;
CREATE CONSTRAINT llm_call_id IF NOT EXISTS FOR (n:LLMCall) REQUIRE n.id IS UNIQUE;
CREATE CONSTRAINT model_version_key IF NOT EXISTS FOR (n:ModelVersion) REQUIRE (n.provider, n.name, n.version) IS UNIQUE;
CREATE CONSTRAINT output_id IF NOT EXISTS FOR (n:Output) REQUIRE n.id IS UNIQUE;
CREATE CONSTRAINT tool_call_key IF NOT EXISTS FOR (n:ToolCall) REQUIRE (n.traceId, n.callId) IS UNIQUE;
CREATE CONSTRAINT tool_name IF NOT EXISTS FOR (n:Tool) REQUIRE n.name IS UNIQUE;
CREATE INDEX output_trace IF NOT EXISTS FOR (n:Output) ON (n.traceId);
