import { z } from "zod";
import type { AuditEvent } from "@auditgraph/core";
import { definePolicyFunction } from "../function.js";
import { NamedPatternSchema, compile, type NamedPattern } from "../regex.js";
import { matchStrings } from "./common.js";

/**
 * Phrases by which text fed back to a model tries to take it over. Markers, not proof: a page
 * about prompt engineering will say "system prompt" too, so this raises flags for a human
 * rather than guessing intent. Matched case-insensitively anywhere in a string.
 */
export const INJECTION_MARKERS: readonly NamedPattern[] = [
  {
    id: "ignore-instructions",
    pattern: String.raw`\b(?:ignore|disregard|forget|override)\s+(?:(?:all|any|the|your|my|of)\s+)*(?:previous|prior|above|earlier|preceding|original|system)\s+(?:instructions?|prompts?|messages?|rules|directions|guidelines)`,
    flags: "i",
  },
  { id: "system-prompt", pattern: String.raw`\b(?:system|developer)\s+(?:prompt|message)\b`, flags: "i" },
  {
    id: "new-instructions",
    pattern: String.raw`\b(?:new|updated|real|actual)\s+instructions?\s*:|\byour\s+(?:new\s+)?(?:task|instructions?|goal)\s+(?:is|are)\s+now\b`,
    flags: "i",
  },
  {
    id: "role-play-jailbreak",
    pattern: String.raw`\b(?:pretend|act|role-?play|imagine)\b[^.\n]{0,60}\b(?:no|without|free\s+(?:of|from))\s+(?:restrictions|rules|filters|limits|guidelines|censorship)\b|\bdo\s+anything\s+now\b|\bDAN\s+mode\b|\bdeveloper\s+mode\s+(?:enabled|on)\b|\bjailbr(?:oken|eak)\b|\byou\s+are\s+(?:now|no\s+longer)\s+(?:an?\s+)?(?:unrestricted|unfiltered|uncensored|jailbroken|bound\s+by)\b`,
    flags: "i",
  },
  {
    id: "chat-template-tokens",
    pattern: String.raw`<\|im_(?:start|end)\|>|\[/?INST\]|<</?SYS>>|<\|(?:system|user|assistant|endoftext)\|>`,
    flags: "i",
  },
];

/** Where the text fed back to the model is, per event type (other types: the whole payload). */
function sourceOf(event: AuditEvent): { value: unknown; path: string; what: string; kind?: "tool_call" | "document" | "prompt" } {
  switch (event.type) {
    case "tool.end":
      return { value: event.payload.output, path: "payload.output", what: "the tool result", kind: "tool_call" };
    case "retriever.end":
      return { value: event.payload.documents, path: "payload.documents", what: "retrieved documents", kind: "document" };
    case "llm.start":
      return { value: event.payload.messages, path: "payload.messages", what: "the prompt", kind: "prompt" };
    default:
      return { value: event.payload, path: "payload", what: "the event" };
  }
}

export const promptInjection = definePolicyFunction({
  name: "prompt-injection",
  version: "1",
  params: z
    .strictObject({
      /** Markers of the deployment's own, beside (or instead of) INJECTION_MARKERS. */
      markers: z.array(NamedPatternSchema).default([]),
      builtinMarkers: z.boolean().default(true),
    })
    .refine((p) => p.builtinMarkers || p.markers.length > 0, { path: ["markers"], message: "no markers: list some or keep builtinMarkers" }),
  eventTypes: ["tool.end", "retriever.end"],
  create: ({ markers, builtinMarkers }) => {
    const compiled = [...(builtinMarkers ? INJECTION_MARKERS : []), ...markers].map((m) => ({ id: m.id, regex: compile(m) }));
    return (event) => {
      const source = sourceOf(event);
      const { measures, fields } = matchStrings(source.value, source.path, compiled);
      if (fields.length === 0) return undefined;
      return {
        reason: `prompt-injection markers in ${source.what}: ${Object.keys(measures).join(", ")}`,
        ...(source.kind ? { kind: source.kind } : {}),
        fields,
        measures,
      };
    };
  },
});
