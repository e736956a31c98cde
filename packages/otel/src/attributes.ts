// Every span attribute, span event and enum value auditgraph reads from (or writes to) an
// OpenTelemetry span, in one table: the receiver (OTLP in) and the exporter (events out) both
// name attributes through it, so the two directions cannot drift apart. Three vocabularies:
//   - the OpenTelemetry GenAI semantic conventions as they are now (semconv >= 1.37);
//   - the names of semconv 1.36 and earlier that most instrumentations still emit;
//   - OpenInference (Arize Phoenix's conventions, emitted by the openinference-* instrumentations).
// Indexed (flattened) attributes such as `llm.input_messages.0.message.role` are named by a prefix
// and suffixes: `indexed(prefix, i, suffix)` builds one, `INDEXED_*` patterns parse them.

/** OpenTelemetry GenAI semantic conventions, current names. */
export const GEN_AI = {
  // What the span is
  operationName: "gen_ai.operation.name",
  providerName: "gen_ai.provider.name",
  outputType: "gen_ai.output.type",
  // The request
  requestModel: "gen_ai.request.model",
  requestTemperature: "gen_ai.request.temperature",
  requestTopP: "gen_ai.request.top_p",
  requestTopK: "gen_ai.request.top_k",
  requestMaxTokens: "gen_ai.request.max_tokens",
  requestFrequencyPenalty: "gen_ai.request.frequency_penalty",
  requestPresencePenalty: "gen_ai.request.presence_penalty",
  requestStopSequences: "gen_ai.request.stop_sequences",
  requestSeed: "gen_ai.request.seed",
  requestChoiceCount: "gen_ai.request.choice.count",
  requestStream: "gen_ai.request.stream",
  requestEncodingFormats: "gen_ai.request.encoding_formats",
  // The response
  responseModel: "gen_ai.response.model",
  responseId: "gen_ai.response.id",
  responseFinishReasons: "gen_ai.response.finish_reasons",
  responseTimeToFirstChunk: "gen_ai.response.time_to_first_chunk",
  openaiSystemFingerprint: "gen_ai.openai.response.system_fingerprint",
  // Content (opt-in in the conventions: JSON strings, or arrays of structured values)
  inputMessages: "gen_ai.input.messages",
  outputMessages: "gen_ai.output.messages",
  systemInstructions: "gen_ai.system_instructions",
  toolDefinitions: "gen_ai.tool.definitions",
  // Usage
  usageInputTokens: "gen_ai.usage.input_tokens",
  usageOutputTokens: "gen_ai.usage.output_tokens",
  usageCacheReadInputTokens: "gen_ai.usage.cache_read.input_tokens",
  usageCacheCreationInputTokens: "gen_ai.usage.cache_creation.input_tokens",
  usageReasoningOutputTokens: "gen_ai.usage.reasoning.output_tokens",
  // Tools
  toolName: "gen_ai.tool.name",
  toolType: "gen_ai.tool.type",
  toolDescription: "gen_ai.tool.description",
  toolCallId: "gen_ai.tool.call.id",
  toolCallArguments: "gen_ai.tool.call.arguments",
  toolCallResult: "gen_ai.tool.call.result",
  // Agents, workflows, conversations
  agentId: "gen_ai.agent.id",
  agentName: "gen_ai.agent.name",
  agentVersion: "gen_ai.agent.version",
  agentDescription: "gen_ai.agent.description",
  workflowName: "gen_ai.workflow.name",
  conversationId: "gen_ai.conversation.id",
  // Retrieval and embeddings
  dataSourceId: "gen_ai.data_source.id",
  retrievalQueryText: "gen_ai.retrieval.query.text",
  retrievalDocuments: "gen_ai.retrieval.documents",
  embeddingsDimensionCount: "gen_ai.embeddings.dimension.count",
} as const;

/** `gen_ai.operation.name` values (current conventions). */
export const GEN_AI_OPERATIONS = {
  chat: "chat",
  textCompletion: "text_completion",
  generateContent: "generate_content",
  invokeAgent: "invoke_agent",
  createAgent: "create_agent",
  invokeWorkflow: "invoke_workflow",
  executeTool: "execute_tool",
  embeddings: "embeddings",
  retrieval: "retrieval",
} as const;
export type GenAiOperation = (typeof GEN_AI_OPERATIONS)[keyof typeof GEN_AI_OPERATIONS];

/**
 * Semantic conventions 1.36 and earlier: renamed or replaced since, still emitted by most
 * instrumentations (OpenLLMetry, older OpenTelemetry contrib ones). Read, never written.
 */
export const GEN_AI_LEGACY = {
  /** Replaced by `gen_ai.provider.name`. */
  system: "gen_ai.system",
  /** Replaced by `gen_ai.input.messages` / `gen_ai.output.messages` (a string, or indexed below). */
  prompt: "gen_ai.prompt",
  completion: "gen_ai.completion",
  /** Replaced by `gen_ai.usage.input_tokens` / `output_tokens`. */
  usagePromptTokens: "gen_ai.usage.prompt_tokens",
  usageCompletionTokens: "gen_ai.usage.completion_tokens",
  /** OpenLLMetry's total. */
  usageTotalTokens: "llm.usage.total_tokens",
  openaiRequestSeed: "gen_ai.openai.request.seed",
} as const;

/**
 * OpenLLMetry's flattened messages: `gen_ai.prompt.<i>.role`, `gen_ai.prompt.<i>.content`,
 * `gen_ai.completion.<i>.finish_reason`, `gen_ai.completion.<i>.tool_calls.<j>.name` ...
 */
export const GEN_AI_LEGACY_INDEXED = {
  promptPrefix: "gen_ai.prompt",
  completionPrefix: "gen_ai.completion",
  role: "role",
  content: "content",
  finishReason: "finish_reason",
  toolCallId: "tool_call_id",
  toolCallsPrefix: "tool_calls",
  toolCallName: "name",
  toolCallArguments: "arguments",
  toolCallIdInCall: "id",
} as const;

/**
 * Span events of semconv 1.36 (content as events, one per message): `body` in their attributes
 * (or `content`, `role`, `tool_calls`, `id`, `index`, `finish_reason`, `message`).
 */
export const GEN_AI_LEGACY_EVENTS = {
  systemMessage: "gen_ai.system.message",
  userMessage: "gen_ai.user.message",
  assistantMessage: "gen_ai.assistant.message",
  toolMessage: "gen_ai.tool.message",
  choice: "gen_ai.choice",
} as const;

/** Event attribute names of the legacy content events. */
export const GEN_AI_LEGACY_EVENT_FIELDS = {
  content: "content",
  role: "role",
  id: "id",
  toolCalls: "tool_calls",
  index: "index",
  finishReason: "finish_reason",
  message: "message",
} as const;

/** The current conventions' one content event (messages as attributes of an event, not a span). */
export const GEN_AI_EVENTS = {
  inferenceOperationDetails: "gen_ai.client.inference.operation.details",
} as const;

/** OpenInference (https://github.com/Arize-ai/openinference, spec/semantic_conventions.md). */
export const OPENINFERENCE = {
  spanKind: "openinference.span.kind",
  // Generic input/output of any span (a JSON string when mime type is application/json)
  inputValue: "input.value",
  inputMimeType: "input.mime_type",
  outputValue: "output.value",
  outputMimeType: "output.mime_type",
  // LLM
  llmModelName: "llm.model_name",
  llmProvider: "llm.provider",
  llmSystem: "llm.system",
  llmInvocationParameters: "llm.invocation_parameters",
  llmInputMessages: "llm.input_messages",
  llmOutputMessages: "llm.output_messages",
  llmTools: "llm.tools",
  llmPrompts: "llm.prompts",
  llmFinishReason: "llm.finish_reason",
  llmTokenCountPrompt: "llm.token_count.prompt",
  llmTokenCountCompletion: "llm.token_count.completion",
  llmTokenCountTotal: "llm.token_count.total",
  llmTokenCountCacheRead: "llm.token_count.prompt_details.cache_read",
  llmTokenCountCacheWrite: "llm.token_count.prompt_details.cache_write",
  llmTokenCountReasoning: "llm.token_count.completion_details.reasoning",
  // Tool
  toolName: "tool.name",
  toolDescription: "tool.description",
  toolParameters: "tool.parameters",
  toolId: "tool.id",
  toolCallId: "tool_call.id",
  toolCallFunctionName: "tool_call.function.name",
  toolCallFunctionArguments: "tool_call.function.arguments",
  // Retrieval, embeddings, reranking
  retrievalDocuments: "retrieval.documents",
  embeddingModelName: "embedding.model_name",
  embeddingEmbeddings: "embedding.embeddings",
  // Agents and graphs
  agentName: "agent.name",
  graphNodeId: "graph.node.id",
  graphNodeName: "graph.node.name",
  graphNodeParentId: "graph.node.parent_id",
  // Context
  sessionId: "session.id",
  userId: "user.id",
  metadata: "metadata",
  tagTags: "tag.tags",
} as const;

/** Suffixes of OpenInference's flattened lists (`llm.input_messages.<i>.message.role` ...). */
export const OPENINFERENCE_INDEXED = {
  messageRole: "message.role",
  messageContent: "message.content",
  messageName: "message.name",
  messageToolCallId: "message.tool_call_id",
  /** `message.contents.<j>.message_content.type` / `.text`: multi-part content. */
  messageContentsPrefix: "message.contents",
  messageContentType: "message_content.type",
  messageContentText: "message_content.text",
  /** `message.tool_calls.<j>.tool_call.id` / `.function.name` / `.function.arguments`. */
  messageToolCallsPrefix: "message.tool_calls",
  toolCallId: "tool_call.id",
  toolCallFunctionName: "tool_call.function.name",
  toolCallFunctionArguments: "tool_call.function.arguments",
  /** `retrieval.documents.<i>.document.id` / `.content` / `.score` / `.metadata`. */
  documentId: "document.id",
  documentContent: "document.content",
  documentScore: "document.score",
  documentMetadata: "document.metadata",
  /** `llm.tools.<i>.tool.json_schema`. */
  toolJsonSchema: "tool.json_schema",
} as const;

/** `openinference.span.kind` values. */
export const OPENINFERENCE_SPAN_KINDS = {
  llm: "LLM",
  chain: "CHAIN",
  tool: "TOOL",
  agent: "AGENT",
  retriever: "RETRIEVER",
  embedding: "EMBEDDING",
  reranker: "RERANKER",
  guardrail: "GUARDRAIL",
  evaluator: "EVALUATOR",
  prompt: "PROMPT",
  unknown: "UNKNOWN",
} as const;
export type OpenInferenceSpanKind = (typeof OPENINFERENCE_SPAN_KINDS)[keyof typeof OPENINFERENCE_SPAN_KINDS];

/** General OpenTelemetry attributes auditgraph reads besides the GenAI ones. */
export const GENERAL = {
  /** The end user (semconv's deprecated `enduser.id` is still common). */
  endUserId: "enduser.id",
  userId: "user.id",
  sessionId: "session.id",
  errorType: "error.type",
  exceptionType: "exception.type",
  exceptionMessage: "exception.message",
  exceptionStacktrace: "exception.stacktrace",
} as const;

/** The exception span event (`recordException`). */
export const EXCEPTION_EVENT = "exception";

/** Resource attributes: the agent's fallback identity when the span names none. */
export const RESOURCE = {
  serviceName: "service.name",
  serviceVersion: "service.version",
  serviceInstanceId: "service.instance.id",
  deploymentEnvironment: "deployment.environment.name",
} as const;

/**
 * Attributes auditgraph itself writes on exported spans (and reads back on re-import), for
 * what no convention names: the event's own id and the tenant are never read from a span.
 */
export const AUDITGRAPH = {
  eventId: "auditgraph.event.id",
  runId: "auditgraph.run.id",
  parentRunId: "auditgraph.run.parent_id",
  traceId: "auditgraph.trace.id",
  userRoles: "auditgraph.user.roles",
  tags: "auditgraph.tags",
} as const;

// What the exporter writes besides the conventions: what links an exported span back to its
// tamper-evident ledger record. Not in ATTRIBUTE_TABLES: spans of ours ingested again keep them as extra data.
/** auditgraph's own attributes on exported spans (beside `AUDITGRAPH` of attributes.ts). */
export const AUDITGRAPH_EXPORT = {
  tenantId: "auditgraph.tenant.id",
  /** The event's type (`policy.flag`, ...) on a span or span event made of one event. */
  eventType: "auditgraph.event.type",
  /** Every event a span is made of, in ledger order (a run's start and its end). */
  eventIds: "auditgraph.event.ids",
  /** The ledger stream the events are in (one per tenant). */
  ledgerStream: "auditgraph.ledger.stream_id",
  /** Their positions in that stream, and their record hashes: `auditgraph verify` / `prove` take them. */
  ledgerPositions: "auditgraph.ledger.positions",
  ledgerHashes: "auditgraph.ledger.hashes",
  /** On a single event's span or span event. */
  ledgerPosition: "auditgraph.ledger.position",
  ledgerHash: "auditgraph.ledger.hash",
  /** A run whose end was not recorded when the worker closed (or whose start was). */
  incomplete: "auditgraph.incomplete",
  /** What redaction replaced in the run's events, by detector kind (JSON counts, never values). */
  redactions: "auditgraph.redactions",
  /** A non-run event's payload as recorded (JSON), for the event types no convention covers. */
  payload: "auditgraph.payload",
  /** The run's type as auditgraph records it (`llm`, `tool`, `chain`, `retriever`). */
  runType: "auditgraph.run.type",
  /** Policy findings, as attributes a backend can filter on. */
  policyId: "auditgraph.policy.id",
  policySeverity: "auditgraph.policy.severity",
  policyOutcome: "auditgraph.policy.outcome",
  escalationId: "auditgraph.escalation.id",
} as const;

/** The span event name of an annotation event (`auditgraph.agent.action`, ...): the event type, prefixed. */
export const annotationEventName = (type: string): string => `auditgraph.${type}`;

/** The instrumentation scope of every exported span. */
export const EXPORT_SCOPE = { name: "@auditgraph/otel", version: "0.1.0" } as const;

/** A flattened attribute name: `indexed("llm.input_messages", 0, "message.role")`. */
export function indexed(prefix: string, index: number, suffix: string): string {
  return `${prefix}.${index}.${suffix}`;
}

/** Every name above, for "is this attribute mapped?" (unmapped ones are kept as extra data). */
export const ATTRIBUTE_TABLES = { GEN_AI, GEN_AI_LEGACY, OPENINFERENCE, GENERAL, AUDITGRAPH } as const;

/** Prefixes of flattened lists a mapper consumes whole: any attribute under them is mapped. */
export const INDEXED_PREFIXES = [
  GEN_AI_LEGACY_INDEXED.promptPrefix,
  GEN_AI_LEGACY_INDEXED.completionPrefix,
  OPENINFERENCE.llmInputMessages,
  OPENINFERENCE.llmOutputMessages,
  OPENINFERENCE.llmTools,
  OPENINFERENCE.llmPrompts,
  OPENINFERENCE.retrievalDocuments,
  OPENINFERENCE.embeddingEmbeddings,
] as const;
