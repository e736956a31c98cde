import { z } from "zod";
import { AuditgraphError } from "@auditgraph/core";
import { AIMessage } from "@langchain/core/messages";
import { fakeModel } from "@langchain/core/testing";
import { DynamicStructuredTool, type StructuredToolInterface } from "@langchain/core/tools";
import { canonicalArgs, toolSteps, type RecordedTrace } from "./trace.js";

export const DivergenceSchema = z.object({
  tool: z.string(),
  args: z.string(),
  reason: z.enum(["no-recorded-call", "unknown-tool"]),
  /** What was done about it: the trace failed, or the live tool ran. */
  resolution: z.enum(["failed", "live"]),
});
export type Divergence = z.infer<typeof DivergenceSchema>;

export class ToolDivergenceError extends AuditgraphError {
  override readonly name = "ToolDivergenceError";
  declare readonly code: "AUDITGRAPH_E_TOOL_DIVERGENCE";
  constructor(readonly divergence: Divergence) {
    super("AUDITGRAPH_E_TOOL_DIVERGENCE", `tool ${divergence.tool} was called with ${divergence.args}, which the recorded trace has no result for`);
  }
}

export interface RecordedToolsOptions {
  /** On a call the trace has no result for: fail the trace (default), or call the live tool. */
  onMismatch?: "fail" | "live";
  /** Receives each divergence as it happens. */
  divergences?: Divergence[];
}

/**
 * The candidate's tools, answering from the recorded trace: a call of the same tool with equal
 * canonical arguments gets the recorded result (each recorded call serves once, in order), so a
 * replay does not depend on the world having stayed the same. Other calls are divergences.
 */
export function recordedTools(
  trace: RecordedTrace,
  liveTools: readonly StructuredToolInterface[],
  options: RecordedToolsOptions = {},
): StructuredToolInterface[] {
  const pending = toolSteps(trace.events);
  const divergences = options.divergences ?? [];
  return liveTools.map(
    (live) =>
      new DynamicStructuredTool({
        name: live.name,
        description: live.description,
        schema: live.schema as z.ZodObject,
        func: async (input: unknown) => {
          const args = canonicalArgs(input);
          const at = pending.findIndex((s) => s.name === live.name && s.args === args);
          if (at >= 0) {
            const [step] = pending.splice(at, 1);
            // The recorded tool's own failure, played back as the tool threw it: no auditgraph error.
            if (step!.error !== undefined) throw new Error(step!.error);
            return step!.output ?? "";
          }
          const divergence: Divergence = { tool: live.name, args, reason: "no-recorded-call", resolution: options.onMismatch === "live" ? "live" : "failed" };
          divergences.push(divergence);
          if (divergence.resolution === "failed") throw new ToolDivergenceError(divergence);
          const out: unknown = await live.invoke(input as never);
          return typeof out === "string" ? out : JSON.stringify(out);
        },
      }),
  );
}

/**
 * A chat model that answers with the trace's recorded model outputs, in order: the original
 * agent driven by it must reproduce the trace exactly (the `--control` run).
 */
export function recordedModel(trace: RecordedTrace) {
  const model = fakeModel();
  for (const e of trace.events) {
    if (e.type !== "llm.end") continue;
    const usage = e.usage;
    model.respond(
      new AIMessage({
        content: e.payload.output.text,
        tool_calls: e.payload.output.toolCalls.map((c) => ({ id: c.id, name: c.name, args: c.args as Record<string, unknown>, type: "tool_call" as const })),
        response_metadata: { model_name: e.model.version ?? e.model.name },
        ...(usage ? { usage_metadata: { input_tokens: usage.inputTokens, output_tokens: usage.outputTokens, total_tokens: usage.totalTokens } } : {}),
      }),
    );
  }
  return model;
}
