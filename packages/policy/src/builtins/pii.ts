import { z } from "zod";
import type { AuditEvent } from "@auditgraph/core";
import { definePolicyFunction } from "../function.js";
import type { PolicyState } from "../state.js";
import { AGENT_EVENT_TYPES } from "./common.js";

/** Whether `event` is the first of its trace to hold the value `digest` of `kind` (a redelivery of it still is). */
async function firstInTrace(state: PolicyState, event: AuditEvent, kind: string, digest: string): Promise<boolean> {
  const tenant = "identity" in event ? event.identity.user.tenantId : event.tenantId;
  // Digest only, never the value: the digest is keyed in the agent process.
  const key = `value|${tenant}|${event.traceId}|${kind}|${digest}`;
  if (state.claim) return state.claim(key, event.eventId);
  return (await state.add(key, event.eventId, 1)) === 1;
}

/**
 * Personal data or a secret was in the event: read from the redactor's counts (`redactions`)
 * and digests (`redactionDigests`), which is all that is left of it once the event left the
 * agent process.
 *
 * A value is one finding per trace: chains and models repeat a tool's result in every later
 * event of the trace, so only the event that first holds a value (by its digest) counts it.
 * Kinds an event counts without digests (an older agent) count in that event as before, and so
 * does every value for a `block` or `hold` rule, which must stop each call that carries one.
 */
export const piiOrSecret = definePolicyFunction({
  name: "pii-or-secret",
  version: "2",
  params: z.strictObject({
    /** Detector kinds that count (`email`, `secret`, a custom detector's name); absent: every kind. */
    kinds: z.array(z.string().min(1)).min(1).optional(),
    /** Fires from this many values new to the trace on. */
    minCount: z.int().positive().default(1),
  }),
  eventTypes: AGENT_EVENT_TYPES,
  create:
    ({ kinds, minCount }) =>
    async (event, { state, action }) => {
      if (!event.redactions) return undefined;
      // A block or hold acts on each call that carries a value, however often the trace held it before.
      const digests = action === "block" || action === "hold" ? {} : (event.redactionDigests ?? {});
      const measures: Record<string, number> = {};
      let total = 0;
      for (const [kind, count] of Object.entries(event.redactions)) {
        if (kinds && !kinds.includes(kind)) continue;
        const values = digests[kind];
        let fresh = count;
        if (values && values.length > 0) {
          fresh = 0;
          for (const digest of values) if (await firstInTrace(state, event, kind, digest)) fresh += 1;
        }
        if (fresh === 0) continue;
        measures[kind] = fresh;
        total += fresh;
      }
      if (total < minCount) return undefined;
      return {
        reason: `redaction replaced ${total} personal or secret value(s) first seen in this trace in this event (${Object.keys(measures).sort().join(", ")})`,
        fields: ["redactions"],
        measures,
      };
    },
});
