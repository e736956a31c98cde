import type { Document, Usage } from "@auditgraph/core";
import { GEN_AI, GEN_AI_LEGACY, OPENINFERENCE, OPENINFERENCE_INDEXED as OI } from "./attributes.js";
import { inputMessages, llmOutput } from "./messages.js";
import type { AttributeValue } from "./model.js";
import { jsonOrText, type SpanReader } from "./read.js";

// What each family of span becomes: the event types, and the fields of its start and end events
// read from the span. One entry per family; the tables in map.ts say which spans are which.

export type Family = "llm" | "tool" | "chain" | "retriever";

export interface Built {
  /** The run's name when the family has a better one than the span's (a tool's, an agent's). */
  name?: string | undefined;
  start: Record<string, unknown>;
  end: Record<string, unknown>;
  /** Fields of the error event besides `error` (a tool's call id). */
  errorExtra?: Record<string, unknown>;
}

interface FamilyMapper {
  start: string;
  end: string;
  error: string;
  build(r: SpanReader, failed: boolean): Built;
}

/** Invocation parameters: our name -> the attributes read for it, first present wins. */
const NUMBER_PARAMS = {
  temperature: [GEN_AI.requestTemperature],
  top_p: [GEN_AI.requestTopP],
  top_k: [GEN_AI.requestTopK],
  frequency_penalty: [GEN_AI.requestFrequencyPenalty],
  presence_penalty: [GEN_AI.requestPresencePenalty],
} satisfies Record<string, string[]>;
const COUNT_PARAMS = {
  max_tokens: [GEN_AI.requestMaxTokens],
  seed: [GEN_AI.requestSeed, GEN_AI_LEGACY.openaiRequestSeed],
  n: [GEN_AI.requestChoiceCount],
} satisfies Record<string, string[]>;

function paramsOf(r: SpanReader): Record<string, unknown> {
  const params: Record<string, unknown> = {};
  const invocation = r.json(OPENINFERENCE.llmInvocationParameters);
  if (invocation !== undefined) {
    if (typeof invocation !== "object" || invocation === null || Array.isArray(invocation))
      r.fail(OPENINFERENCE.llmInvocationParameters, "must be a JSON object");
    Object.assign(params, invocation);
  }
  for (const [key, names] of Object.entries(NUMBER_PARAMS)) {
    const v = r.num(...names);
    if (v !== undefined) params[key] = v;
  }
  for (const [key, names] of Object.entries(COUNT_PARAMS)) {
    const v = r.count(...names);
    if (v !== undefined) params[key] = v;
  }
  const stop = r.strings(GEN_AI.requestStopSequences);
  if (stop) params.stop = stop;
  const stream = r.json(GEN_AI.requestStream);
  if (typeof stream === "boolean") params.stream = stream;
  return params;
}

/** Token counts: current names, then 1.36's, then OpenInference's; undefined when the span has none. */
const USAGE = {
  inputTokens: [GEN_AI.usageInputTokens, GEN_AI_LEGACY.usagePromptTokens, OPENINFERENCE.llmTokenCountPrompt],
  outputTokens: [GEN_AI.usageOutputTokens, GEN_AI_LEGACY.usageCompletionTokens, OPENINFERENCE.llmTokenCountCompletion],
  totalTokens: [OPENINFERENCE.llmTokenCountTotal, GEN_AI_LEGACY.usageTotalTokens],
  cacheReadTokens: [GEN_AI.usageCacheReadInputTokens, OPENINFERENCE.llmTokenCountCacheRead],
  cacheCreationTokens: [GEN_AI.usageCacheCreationInputTokens, OPENINFERENCE.llmTokenCountCacheWrite],
  reasoningTokens: [GEN_AI.usageReasoningOutputTokens, OPENINFERENCE.llmTokenCountReasoning],
} satisfies Record<keyof Usage, string[]>;

function usageOf(r: SpanReader): Usage | undefined {
  const read = Object.fromEntries(Object.entries(USAGE).map(([k, names]) => [k, r.count(...names)])) as Partial<Record<keyof Usage, number>>;
  if (Object.values(read).every((v) => v === undefined)) return undefined;
  const inputTokens = read.inputTokens ?? 0;
  const outputTokens = read.outputTokens ?? 0;
  const usage: Usage = { inputTokens, outputTokens, totalTokens: read.totalTokens ?? inputTokens + outputTokens };
  for (const k of ["cacheReadTokens", "cacheCreationTokens", "reasoningTokens"] as const) if (read[k] !== undefined) usage[k] = read[k];
  return usage;
}

const latencyOf = (r: SpanReader) => ({ latencyMs: Number(r.span.endNs - r.span.startNs) / 1e6 });
const orEmpty = (v: unknown) => (v === undefined ? {} : v);

const llm: FamilyMapper = {
  start: "llm.start",
  end: "llm.end",
  error: "llm.error",
  build(r, failed) {
    const provider = r.str(GEN_AI.providerName, GEN_AI_LEGACY.system, OPENINFERENCE.llmProvider, OPENINFERENCE.llmSystem) ?? "unknown";
    const requested = r.str(GEN_AI.requestModel, OPENINFERENCE.llmModelName);
    const served = r.str(GEN_AI.responseModel) ?? requested;
    const params = paramsOf(r);
    const fingerprint = r.str(GEN_AI.openaiSystemFingerprint);
    const messages = inputMessages(r);
    const output = failed ? undefined : llmOutput(r);
    const usage = usageOf(r);
    const ttft = r.num(GEN_AI.responseTimeToFirstChunk);
    const timing = { ...latencyOf(r), ...(ttft !== undefined ? { timeToFirstTokenMs: ttft * 1000 } : {}) };
    return {
      start: { model: { provider, name: requested ?? served ?? "unknown", params }, payload: { messages } },
      end: {
        model: { provider, name: served ?? "unknown", ...(fingerprint ? { fingerprint } : {}), params },
        ...(usage ? { usage } : {}),
        payload: { output: output ?? { text: "", toolCalls: [] }, timing },
      },
    };
  },
};

const tool: FamilyMapper = {
  start: "tool.start",
  end: "tool.end",
  error: "tool.error",
  build(r) {
    const name = r.str(GEN_AI.toolName, OPENINFERENCE.toolName, OPENINFERENCE.toolCallFunctionName);
    const id = r.str(GEN_AI.toolCallId, OPENINFERENCE.toolCallId);
    const toolCallId = id ? { toolCallId: id } : {};
    const input = r.json(GEN_AI.toolCallArguments, OPENINFERENCE.toolCallFunctionArguments, OPENINFERENCE.inputValue);
    const output = r.json(GEN_AI.toolCallResult, OPENINFERENCE.outputValue);
    return {
      name,
      start: { payload: { ...toolCallId, input: orEmpty(input) } },
      end: { payload: { ...toolCallId, output: output ?? null, timing: latencyOf(r) } },
      errorExtra: toolCallId,
    };
  },
};

const chain: FamilyMapper = {
  start: "chain.start",
  end: "chain.end",
  error: "chain.error",
  build(r) {
    const inputs = r.json(OPENINFERENCE.inputValue, GEN_AI.inputMessages);
    const outputs = r.json(OPENINFERENCE.outputValue, GEN_AI.outputMessages);
    const node = r.str(OPENINFERENCE.graphNodeName, OPENINFERENCE.graphNodeId);
    const name = r.str(GEN_AI.workflowName) ?? r.attributes[GEN_AI.agentName];
    return {
      name: typeof name === "string" ? name : undefined,
      start: { payload: { inputs: orEmpty(inputs), ...(node ? { graph: { node } } : {}) } },
      end: { payload: { outputs: orEmpty(outputs) } },
    };
  },
};

const str = (v: AttributeValue | unknown) => (typeof v === "string" ? v : v === undefined || v === null ? undefined : JSON.stringify(v));

function documentsOf(r: SpanReader): Document[] {
  const flat = r.indexed(OPENINFERENCE.retrievalDocuments);
  if (flat.length > 0)
    return flat.map((d) => {
      const metadata = jsonOrText(d[OI.documentMetadata] ?? {});
      const score = d[OI.documentScore];
      const id = str(d[OI.documentId]);
      return {
        ...(id ? { id } : {}),
        pageContent: str(d[OI.documentContent]) ?? "",
        metadata: {
          ...(typeof metadata === "object" && metadata !== null && !Array.isArray(metadata) ? metadata : { value: metadata }),
          ...(score !== undefined ? { score } : {}),
        },
      } as Document;
    });
  const docs = r.list(GEN_AI.retrievalDocuments) ?? [];
  return docs.map((d, i) => {
    if (typeof d !== "object" || d === null) r.fail(GEN_AI.retrievalDocuments, `entry ${i} must be an object`);
    const { id, content, score, ...rest } = d as Record<string, unknown>;
    const docId = str(id);
    return { ...(docId ? { id: docId } : {}), pageContent: str(content) ?? "", metadata: { ...rest, ...(score !== undefined ? { score } : {}) } } as Document;
  });
}

const retriever: FamilyMapper = {
  start: "retriever.start",
  end: "retriever.end",
  error: "retriever.error",
  build(r, failed) {
    const query = r.json(GEN_AI.retrievalQueryText, OPENINFERENCE.inputValue);
    const documents = failed ? [] : documentsOf(r);
    return {
      name: r.str(GEN_AI.dataSourceId),
      start: { payload: { query: str(query) ?? "" } },
      end: { payload: { documents, timing: latencyOf(r) } },
    };
  },
};

export const FAMILIES = { llm, tool, chain, retriever } satisfies Record<Family, FamilyMapper>;
