import { z } from "zod";
import { definePolicyFunction } from "../function.js";
import { AGENT_EVENT_TYPES } from "./common.js";

/**
 * Personal data or a secret was in the event: read from the redactor's counts (`redactions`),
 * which is all that is left of it once the event left the agent process.
 */
export const piiOrSecret = definePolicyFunction({
  name: "pii-or-secret",
  version: "1",
  params: z.strictObject({
    /** Detector kinds that count (`email`, `secret`, a custom detector's name); absent: every kind. */
    kinds: z.array(z.string().min(1)).min(1).optional(),
    /** Fires from this many replaced values on. */
    minCount: z.int().positive().default(1),
  }),
  eventTypes: AGENT_EVENT_TYPES,
  create: ({ kinds, minCount }) => (event) => {
    if (!event.redactions) return undefined;
    const measures: Record<string, number> = {};
    let total = 0;
    for (const [kind, count] of Object.entries(event.redactions)) {
      if (kinds && !kinds.includes(kind)) continue;
      measures[kind] = count;
      total += count;
    }
    if (total < minCount) return undefined;
    return {
      reason: `redaction replaced ${total} personal or secret value(s) in this event (${Object.keys(measures).sort().join(", ")})`,
      fields: ["redactions"],
      measures,
    };
  },
});
