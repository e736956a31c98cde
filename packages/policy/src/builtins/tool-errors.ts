import { z } from "zod";
import { canonicalJson, sha256Hex } from "@auditgraph/core";
import { definePolicyFunction } from "../function.js";
import { toolArgs } from "../paths.js";

/**
 * Repeated tool errors, or one call retried over and over, in one trace. A `tool.error` is
 * flagged once its trace has `errors` of them; a `tool.start` once its trace already has (so an
 * inline `block` stops the next call), or once the same tool was started `identicalCalls` times
 * with the same arguments.
 */
export const repeatedToolErrors = definePolicyFunction({
  name: "repeated-tool-errors",
  version: "1",
  params: z.strictObject({
    errors: z.int().positive().default(3),
    identicalCalls: z.int().min(2).optional(),
  }),
  eventTypes: ["tool.error", "tool.start"],
  create:
    ({ errors, identicalCalls }) =>
    async (event, { state }) => {
      const errorKey = `errors:${event.traceId}`;
      if (event.type === "tool.error") {
        const count = await state.add(errorKey, event.eventId, 1);
        if (count < errors) return undefined;
        return {
          reason: `${count} tool errors in this trace (threshold ${errors})`,
          fields: ["payload.error"],
          measures: { errors: count, threshold: errors },
        };
      }
      if (event.type !== "tool.start") return undefined;
      const reasons: string[] = [];
      const measures: Record<string, number> = {};
      const errorCount = await state.get(errorKey);
      if (errorCount >= errors) {
        reasons.push(`this trace already had ${errorCount} tool errors (threshold ${errors})`);
        Object.assign(measures, { errors: errorCount, threshold: errors });
      }
      if (identicalCalls !== undefined) {
        // A digest, not the arguments: the state is shared, and arguments can be personal.
        const digest = sha256Hex(canonicalJson([event.name ?? "", toolArgs(event.payload.input)]));
        const calls = await state.add(`calls:${event.traceId}:${digest}`, event.eventId, 1);
        if (calls >= identicalCalls) {
          reasons.push(`tool "${event.name ?? "unnamed"}" started ${calls} times with the same arguments in this trace`);
          Object.assign(measures, { identicalCalls: calls, identicalCallsThreshold: identicalCalls });
        }
      }
      if (reasons.length === 0) return undefined;
      return { reason: reasons.join("; "), fields: [], measures };
    },
});
