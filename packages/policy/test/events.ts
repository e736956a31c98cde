import { randomUUID } from "node:crypto";
import { EventSchema, SCHEMA_VERSION, newEventId, type AuditEvent, type Cost, type EventOf, type Identity, type Usage } from "@auditgraph/core";

type UserEventType = Exclude<AuditEvent["type"], "subject.erased" | "deployment">;

/**
 * One trace of an agent run, event by event, as the handler would record it. Every event is
 * checked against the schema, so a policy is never tested on an event that could not exist.
 */
export function trace(options: { user?: Identity["user"]; agent?: Identity["agent"]; traceId?: string; occurredAt?: string } = {}) {
  const traceId = options.traceId ?? randomUUID();
  const identity: Identity = {
    user: options.user ?? { id: "alice", tenantId: "acme" },
    agent: options.agent ?? { id: "order-assistant", name: "Order assistant", version: "1.4.0" },
  };
  const make = <T extends UserEventType>(type: T, payload: unknown, extra: Record<string, unknown> = {}, runId: string = randomUUID()): EventOf<T> =>
    EventSchema.parse({
      eventId: newEventId(),
      schemaVersion: SCHEMA_VERSION,
      type,
      occurredAt: options.occurredAt ?? new Date().toISOString(),
      traceId,
      runId,
      parentRunId: traceId,
      sessionId: null,
      identity,
      payload,
      ...extra,
    }) as EventOf<T>;
  const model = { provider: "openai", name: "gpt-4o", params: {} };
  return {
    traceId,
    identity,
    make,
    llmStart: (content = "What does KB-ERGO-2 cost?", extra: Record<string, unknown> = {}) =>
      make("llm.start", { messages: [{ role: "user", content }] }, { model, ...extra }),
    llmEnd: (text: string, opts: { usage?: Usage; cost?: Cost; version?: string; redactions?: Record<string, number> } = {}) =>
      make(
        "llm.end",
        { output: { text, toolCalls: [] } },
        {
          model: { ...model, version: opts.version ?? "gpt-4o-2024-08-06" },
          ...(opts.usage ? { usage: opts.usage } : {}),
          ...(opts.cost ? { cost: opts.cost } : {}),
          ...(opts.redactions ? { redactions: opts.redactions } : {}),
        },
      ),
    // LangChain hands tool inputs to callbacks as JSON text.
    toolStart: (name: string, args: unknown, runId?: string) =>
      make("tool.start", { toolCallId: `call-${name}`, input: JSON.stringify(args) }, { name }, runId),
    toolEnd: (name: string, output: unknown) => make("tool.end", { toolCallId: `call-${name}`, output }, { name }),
    toolError: (name: string, message = "upstream timed out") =>
      make("tool.error", { toolCallId: `call-${name}`, error: { name: "Error", message } }, { name }),
    retrieverEnd: (documents: Array<{ pageContent: string; metadata?: Record<string, string> }>) =>
      make("retriever.end", { documents: documents.map((d) => ({ pageContent: d.pageContent, metadata: d.metadata ?? {} })) }),
  };
}
