import { z } from "zod";
import { subjectRef, type AuditEvent } from "@auditgraph/core";
import { definePolicyFunction } from "../function.js";

const round = (n: number): number => Math.round(n * 1e9) / 1e9;

/**
 * Tokens or spend per trace or per user past a limit. Each `llm.end` adds its usage and cost
 * (schema v2: beside `usage`, on the envelope) and is flagged once the total is past the limit;
 * an `llm.start` is flagged when the budget is already spent, which is what lets an inline
 * `block` stop the next model call. Cost in another currency than `currency` is not counted.
 */
export const budget = definePolicyFunction({
  name: "budget",
  version: "1",
  params: z
    .strictObject({
      scope: z.enum(["trace", "user"]),
      maxTokens: z.int().positive().optional(),
      maxCost: z.number().positive().optional(),
      currency: z.string().length(3).default("USD"),
      /** Fixed windows (by the event's clock) after which the count starts again; absent: never. */
      windowMs: z.int().positive().optional(),
    })
    .refine((p) => p.maxTokens !== undefined || p.maxCost !== undefined, { path: ["maxTokens"], message: "set maxTokens, maxCost or both" }),
  eventTypes: ["llm.end", "llm.start"],
  create: ({ scope, maxTokens, maxCost, currency, windowMs }) => {
    // Per user, the key is the user's pseudonym: the shared state (Redis) should hold no user ids.
    const keyOf = (event: AuditEvent & { identity: { user: { id: string; tenantId: string } } }): string => {
      const who = scope === "trace" ? `trace:${event.traceId}` : `user:${subjectRef(event.identity.user.tenantId, event.identity.user.id)}`;
      return windowMs === undefined ? who : `${who}:w${Math.floor(Date.parse(event.occurredAt) / windowMs)}`;
    };
    return async (event, { state }) => {
      if (event.type !== "llm.end" && event.type !== "llm.start") return undefined;
      const key = keyOf(event);
      let tokens: number;
      let cost: number;
      if (event.type === "llm.end") {
        const used = event.usage?.totalTokens ?? 0;
        const spent = event.cost && event.cost.currency === currency ? event.cost.total : 0;
        tokens = await state.add(`${key}:tokens`, event.eventId, used);
        cost = await state.add(`${key}:cost`, event.eventId, spent);
      } else {
        tokens = await state.get(`${key}:tokens`);
        cost = await state.get(`${key}:cost`);
      }
      // After a call, past the limit; before one, at it already (the call could only add).
      const over = (total: number, limit: number | undefined) => limit !== undefined && (event.type === "llm.end" ? total > limit : total >= limit);
      const overTokens = over(tokens, maxTokens);
      const overCost = over(cost, maxCost);
      if (!overTokens && !overCost) return undefined;
      const spent = [...(overTokens ? [`${tokens} of ${maxTokens} tokens`] : []), ...(overCost ? [`${round(cost)} of ${maxCost} ${currency}`] : [])].join(", ");
      const measures: Record<string, number> = { tokens, cost: round(cost) };
      if (maxTokens !== undefined) measures.maxTokens = maxTokens;
      if (maxCost !== undefined) measures.maxCost = maxCost;
      return event.type === "llm.end"
        ? { reason: `budget per ${scope} exceeded: ${spent}`, kind: "output", fields: overCost ? ["usage", "cost"] : ["usage"], measures }
        : { reason: `budget per ${scope} already spent before this model call: ${spent}`, kind: "prompt", fields: [], measures };
    };
  },
});
