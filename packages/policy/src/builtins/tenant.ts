import { z } from "zod";
import { isSystemEvent } from "@auditgraph/core";
import { definePolicyFunction } from "../function.js";

/**
 * An agent acting for a user of a tenant it is not registered for. The agent's tenants are this
 * policy's parameter (`agents`: agent id -> tenant ids), not anything the event says about
 * itself: an event cannot vouch for its own agent. Reasons name the agent, not the tenant.
 */
export const crossTenant = definePolicyFunction({
  name: "cross-tenant",
  version: "1",
  params: z.strictObject({
    agents: z.record(z.string().min(1), z.array(z.string().min(1)).min(1)).refine((a) => Object.keys(a).length > 0, "register at least one agent"),
    /** An agent missing from `agents`: flagged (its tenant is unknown), or let through. */
    unknownAgent: z.enum(["flag", "ignore"]).default("flag"),
  }),
  // Where an agent acts: one flag per model call, tool call or retrieval, not per chain step.
  eventTypes: ["llm.start", "tool.start", "retriever.start"],
  create: ({ agents, unknownAgent }) => {
    const tenants = new Map(Object.entries(agents).map(([agent, ids]) => [agent, new Set(ids)]));
    return (event) => {
      if (isSystemEvent(event)) return undefined;
      const { agent, user } = event.identity;
      const registered = tenants.get(agent.id);
      const fields = ["identity.agent.id", "identity.user.tenantId"];
      if (!registered) {
        return unknownAgent === "flag" ? { reason: `agent "${agent.id}" has no registered tenant`, fields, measures: {} } : undefined;
      }
      if (registered.has(user.tenantId)) return undefined;
      return { reason: `agent "${agent.id}" acted for a user of a tenant it is not registered for`, fields, measures: {} };
    };
  },
});
