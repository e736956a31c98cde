import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import { parseWith } from "@auditgraph/core";
import type { Graph } from "./graph.js";

export const DEFAULT_QUERIES_DIR = fileURLToPath(new URL("../../../graph-schema/queries/", import.meta.url));

const id = z.string().min(1);
const time = z.iso.datetime({ offset: true });
/** Every investigation is scoped to the tenant the caller names, and bounded. */
const scoped = { tenantId: id, limit: z.coerce.number().int().positive().max(10_000).default(100) };
const window = { since: time.nullable().default(null), until: time.nullable().default(null) };
const count = z.number().int().nonnegative();
const optionalText = z.string().nullable();

/**
 * The named investigations: each a `.cypher` file in graph-schema/queries, a zod schema for its
 * parameters and one for its rows. They run in read transactions only.
 */
export const INVESTIGATIONS = {
  "on-behalf-of": {
    description: "which users an agent (version) acted for, how often, first and last time",
    params: z.object({ ...scoped, ...window, agentId: id, agentVersion: id.nullable().default(null) }),
    row: z.object({ userId: z.string(), agentVersion: z.string(), traces: count, firstAt: optionalText, lastAt: optionalText }),
  },
  "blast-radius": {
    description: "everything a served model version produced in a window, per user and agent version",
    params: z.object({ ...scoped, ...window, modelVersion: id }),
    row: z.object({
      userId: z.string(),
      agentId: z.string(),
      agentVersion: z.string(),
      outputs: count,
      traces: count,
      firstAt: optionalText,
      lastAt: optionalText,
    }),
  },
  "user-activity": {
    description: "one user's traces and their final outputs, newest first (a subject access request)",
    params: z.object({ ...scoped, userId: id }),
    row: z.object({
      traceId: z.string(),
      sessionId: optionalText,
      agentId: optionalText,
      agentVersion: optionalText,
      startedAt: optionalText,
      status: optionalText,
      outputId: optionalText,
      output: optionalText,
    }),
  },
} as const;

export type InvestigationName = keyof typeof INVESTIGATIONS;
export type InvestigationParams<N extends InvestigationName> = z.input<(typeof INVESTIGATIONS)[N]["params"]>;
export type InvestigationRow<N extends InvestigationName> = z.output<(typeof INVESTIGATIONS)[N]["row"]>;

export const isInvestigation = (name: string): name is InvestigationName => Object.hasOwn(INVESTIGATIONS, name);

/** Runs a named investigation: parameters checked (the bad field named), read transaction, rows checked. */
export async function investigate<N extends InvestigationName>(
  graph: Graph,
  name: N,
  params: InvestigationParams<N>,
  dir = DEFAULT_QUERIES_DIR,
): Promise<InvestigationRow<N>[]> {
  const spec = INVESTIGATIONS[name];
  const parsed = parseWith(spec.params, params, `parameters of ${name}`) as Record<string, unknown>;
  const cypher = await readFile(`${dir}${name}.cypher`, "utf8");
  const rows = await graph.read(cypher, { ...parsed, limit: graph.int(parsed.limit as number) });
  return rows.map((row, i) => parseWith(spec.row, row, `row ${i} of ${name}`) as InvestigationRow<N>);
}
