import { z } from "zod";
import { AuditgraphError } from "@auditgraph/core";
import { count, id, includeReplays, optionalText, time, window } from "./investigation-fields.js";

// The trace explorer's search, spread into INVESTIGATIONS (its own file: investigations.ts is near its size).

export const SEARCH_INVESTIGATIONS = {
  "trace-search": {
    description:
      "a tenant's traces newest first, by user, agent (and version), model version, session, time window, flags and status: metadata only, keyset-paginated on (startedAt, id)",
    params: z
      .strictObject({
        tenantId: id,
        // One page: the console shows at most 100 rows at a time.
        limit: z.coerce.number().int().positive().max(100).default(50),
        includeReplays,
        ...window,
        userId: id.nullable().default(null),
        agentId: id.nullable().default(null),
        agentVersion: id.nullable().default(null),
        modelVersion: id.nullable().default(null),
        sessionId: id.nullable().default(null),
        status: z.enum(["ok", "error", "unfinished"]).nullable().default(null),
        /** true: traces with a policy flag; false: traces without one. */
        flagged: z.preprocess((v) => (v === "true" ? true : v === "false" ? false : v), z.boolean().nullable()).default(null),
        policyId: id.nullable().default(null),
        /** The last row of the previous page (both or neither). */
        beforeStartedAt: time.nullable().default(null),
        beforeId: id.nullable().default(null),
      })
      .refine((p) => (p.beforeStartedAt === null) === (p.beforeId === null), { path: ["beforeId"], message: "beforeStartedAt and beforeId go together" })
      .refine((p) => p.agentVersion === null || p.agentId !== null, { path: ["agentId"], message: "agentVersion needs agentId" }),
    /**
     * Where the walk starts: one user's traces are found from the user (an index seek), not by
     * walking the tenant's traces newest first until a page of that user's is full.
     */
    start: (p: { userId: string | null }) => (p.userId !== null ? "trace-search.from-user" : undefined),
    row: z.object({
      traceId: z.string(),
      tenantId: z.string(),
      name: optionalText,
      startedAt: z.string(),
      endedAt: optionalText,
      /** running, ok, error; null: no root run projected. */
      status: optionalText,
      /** null: production; replay; review. */
      kind: optionalText,
      userId: optionalText,
      /** A review record's operator (it has no user). */
      operator: optionalText,
      agent: z.object({ id: z.string(), name: optionalText, version: z.string() }).nullable(),
      sessionId: optionalText,
      models: z.array(z.object({ provider: z.string(), name: z.string(), version: z.string() })),
      flags: count,
    }),
  },
} as const;

/** The query with its first MATCH line replaced by the start fragment's statement lines (its `//` comments left out). */
export function startingAt(query: string, fragment: string, name: string): string {
  const lines = query.split("\n");
  const at = lines.findIndex((l) => l.startsWith("MATCH "));
  const start = fragment.split("\n").filter((l) => l.trim() !== "" && !l.trimStart().startsWith("//"));
  if (at < 0 || start.length === 0)
    throw new AuditgraphError("AUDITGRAPH_E_INVESTIGATION_START", `investigation start ${name}: no MATCH line to replace, or an empty fragment`);
  return [...lines.slice(0, at), ...start, ...lines.slice(at + 1)].join("\n");
}
