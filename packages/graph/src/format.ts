import type { Lineage } from "./lineage.js";

const short = (value: unknown, max = 120): string => {
  const text = typeof value === "string" ? value : JSON.stringify(value);
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
};

/** Message content as text: content blocks are reduced to their text parts. */
export const contentText = (content: unknown): string =>
  Array.isArray(content)
    ? content.map((b) => (typeof b === "object" && b && "text" in b ? String(b.text) : JSON.stringify(b))).join(" ")
    : typeof content === "string"
      ? content
      : JSON.stringify(content);

type PromptMessage = { role: string; content: unknown; toolCalls?: { name: string; args: unknown }[] };

export const messageText = (m: PromptMessage): string =>
  [contentText(m.content), ...(m.toolCalls ?? []).map((t) => `→ ${t.name}(${JSON.stringify(t.args)})`)].filter(Boolean).join(" ");

export const promptMessages = (l: Lineage): PromptMessage[] => (Array.isArray(l.prompt.messages) ? (l.prompt.messages as PromptMessage[]) : []);

/** A human reading of one lineage, as a tree. */
export function formatLineage(l: Lineage): string {
  const messages = promptMessages(l);
  const lines = [
    `Output ${l.output.id}`,
    `│ "${short(l.output.text, 200)}"`,
    `├─ produced by LLM call ${l.llmCall.id} (${l.llmCall.totalTokens ?? 0} tokens)`,
    `├─ model version: ${l.model.provider}/${l.model.name} @ ${l.model.version}`,
    `├─ prompt ${l.prompt.id} (sha256 ${l.prompt.hash.slice(0, 16)}…, ${messages.length} messages)`,
    ...messages.map((m, i) => `│   ${i === messages.length - 1 ? "└" : "├"}─ ${m.role}: ${short(messageText(m), 100)}`),
    `├─ tool calls (${l.toolCalls.length})`,
    ...l.toolCalls.map(
      (t, i) =>
        `│   ${i === l.toolCalls.length - 1 ? "└" : "├"}─ ${t.name ?? "?"}(${short(t.input, 60)}) -> ${
          t.status === "error" ? `error ${short(t.error, 60)}` : short(t.output, 60)
        }`,
    ),
    `├─ trace ${l.trace.id}${l.trace.sessionId ? ` in session ${l.trace.sessionId}` : ""} (${l.trace.status ?? "?"})`,
    `├─ agent ${l.agent.name} (${l.agent.id}) v${l.agent.version}`,
    `│   └─ ACTED_ON_BEHALF_OF`,
    `└─ user ${l.user.id} of tenant ${l.user.tenantId}`,
  ];
  return lines.join("\n");
}
