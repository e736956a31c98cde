import { z } from "zod";
import { ACCESS_ACTIONS } from "@auditgraph/core";
import { id, limit, optionalText, time } from "./investigation-fields.js";

// The investigations of the audit trail's readers (access events, see projection/access.ts), spread into
// INVESTIGATIONS (their own file: investigations.ts is near its size).
const action = z.enum(ACCESS_ACTIONS);

export const ACCESS_INVESTIGATIONS = {
  "trace-readers": {
    description: "who has read a trace through the console (or an API token): reader, how signed in, what, when, from where; newest first",
    params: z.strictObject({ tenantId: id, traceId: id, limit }),
    row: z.object({
      actorId: z.string(),
      actorName: optionalText,
      via: z.enum(["password", "oidc", "token"]),
      action,
      at: z.string(),
      ip: z.string(),
    }),
  },
  "data-readers": {
    description:
      "who read one audited user's data: reads of her traces, of escalations about them, and of anything recorded as hers; newest first, in an optional window [from, to)",
    params: z.strictObject({ tenantId: id, userId: id, from: time.nullable().default(null), to: time.nullable().default(null), limit }),
    row: z.object({
      actorId: z.string(),
      actorName: optionalText,
      action,
      /** The trace read (an escalation's trace when an escalation was read); null when the read named none. */
      traceId: optionalText,
      at: z.string(),
      ip: z.string(),
    }),
  },
} as const;
