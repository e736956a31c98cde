import { z } from "zod";
import { PolicyFindingSchema, type ConcernKind, type EventType } from "@auditgraph/core";

/** A policy finding as the evaluator returns it: the recorded finding, plus the trace it belongs to. */
export const FindingSchema = PolicyFindingSchema.extend({
  concerns: PolicyFindingSchema.shape.concerns.extend({ traceId: z.string().min(1) }),
});
export type Finding = z.infer<typeof FindingSchema>;

const KINDS: Partial<Record<EventType, ConcernKind>> = {
  "chain.start": "prompt",
  "llm.start": "prompt",
  "llm.error": "prompt",
  "retriever.start": "prompt",
  "tool.start": "tool_call",
  "tool.end": "tool_call",
  "tool.error": "tool_call",
  "agent.action": "tool_call",
  "retriever.end": "document",
  "retriever.error": "document",
};

/** What an event of `type` is about, by default: the graph links a flag on it to that node. */
export const concernKindOf = (type: EventType): ConcernKind => KINDS[type] ?? "output";
