import { z } from "zod";
import { AuditgraphError } from "@auditgraph/core";
import type { Driver } from "neo4j-driver";

/** Parsed from the JSON text the projection stores in properties. */
const jsonText = z
  .string()
  .nullable()
  .transform((s) => (s === null ? null : (JSON.parse(s) as unknown)));

/** How text the graph dropped for an erased data subject reads (see graph-schema/README.md, Erasure). */
export const ERASED_TEXT = "[erased]";
const erasable = z
  .string()
  .nullable()
  .transform((s) => s ?? ERASED_TEXT);

export const LineageSchema = z.object({
  output: z.object({ id: z.string(), text: erasable, recordedAt: z.string(), position: z.number() }),
  prompt: z.object({ id: z.string(), hash: erasable, messages: jsonText }),
  llmCall: z.object({ id: z.string(), params: jsonText, requestedModel: z.string().nullable(), totalTokens: z.number().nullable() }),
  model: z.object({ provider: z.string(), name: z.string(), version: z.string() }),
  trace: z.object({ id: z.string(), name: z.string().nullable(), status: z.string().nullable(), sessionId: z.string().nullable() }),
  user: z.object({ id: z.string(), tenantId: z.string() }),
  agent: z.object({ id: z.string(), name: z.string(), version: z.string() }),
  toolCalls: z.array(
    z.object({
      callId: z.string(),
      name: z.string().nullable(),
      input: jsonText,
      output: jsonText,
      error: jsonText,
      status: z.string().nullable(),
      requestedBy: z.string().nullable(),
    }),
  ),
});
export type Lineage = z.infer<typeof LineageSchema>;

// An id names an Output, or a Trace (then: its final output, the one recorded last). Ids are
// unique within a tenant only (they come from agent processes, and a producer of one tenant can
// send another tenant's ids), so every node read is held to the tenant, not only the first: the
// projection keys nodes by tenant, and this read does not rely on that alone.
const LINEAGE = `
MATCH (o:Output {tenantId: $tenantId}) WHERE o.id = $id OR o.traceId = $id
WITH o ORDER BY o.position DESC LIMIT 1
MATCH (p:Prompt {tenantId: $tenantId})-[:INPUT_TO]->(c:LLMCall {tenantId: $tenantId})-[:GENERATED]->(o)
MATCH (c)-[:USED_MODEL]->(m:ModelVersion {tenantId: $tenantId})
MATCH (c)-[:PART_OF]->(t:Trace {tenantId: $tenantId})-[:REQUESTED_BY]->(u:User {tenantId: $tenantId})
MATCH (t)-[:HANDLED_BY]->(av:AgentVersion {tenantId: $tenantId})<-[:HAS_VERSION]-(a:Agent {tenantId: $tenantId})-[:ACTED_ON_BEHALF_OF {traceId: t.id}]->(u)
OPTIONAL MATCH (t)-[:IN_SESSION]->(s:Session {tenantId: $tenantId})
CALL (t) {
  OPTIONAL MATCH (x:ToolCall {tenantId: $tenantId})-[:PART_OF]->(t)
  OPTIONAL MATCH (req:LLMCall {tenantId: $tenantId})-[:REQUESTED]->(x)
  WITH x, req ORDER BY x.startedAt, x.callId
  RETURN collect(CASE WHEN x IS NULL THEN null ELSE {
    callId: x.callId, name: x.name, input: x.input, output: x.output, error: x.error,
    status: x.status, requestedBy: req.id } END) AS toolCalls
}
RETURN
  o {.id, .text, .recordedAt, .position} AS output,
  p {.id, .hash, .messages} AS prompt,
  c {.id, .params, .requestedModel, .totalTokens} AS llmCall,
  m {.provider, .name, .version} AS model,
  t {.id, .name, .status, sessionId: s.id} AS trace,
  u {.id, .tenantId} AS user,
  {id: a.id, name: a.name, version: av.version} AS agent,
  toolCalls`;

// The tenants whose output (or trace with an output) has this id.
const TENANTS_OF_ID = `
MATCH (o:Output) WHERE o.id = $id OR o.traceId = $id
RETURN DISTINCT o.tenantId AS tenantId ORDER BY tenantId`;

/**
 * An id without a tenant that names outputs or traces of several tenants: which one is meant
 * cannot be told, and answering with any of them could show one tenant's data for another's id.
 * The message gives the number of tenants, not their names (the caller may belong to one of them).
 */
export class AmbiguousLineageIdError extends AuditgraphError {
  override readonly name = "AmbiguousLineageIdError";
  declare readonly code: "AUDITGRAPH_AMBIGUOUS_ID";
  constructor(
    readonly id: string,
    readonly tenantCount: number,
  ) {
    super("AUDITGRAPH_AMBIGUOUS_ID", `id ${JSON.stringify(id)} names outputs or traces of ${tenantCount} tenants; give the tenant (--tenant)`);
  }
}

export interface LineageOptions {
  /**
   * Read only this tenant's nodes. Unset: the one tenant that has the id; an id that several
   * tenants have is refused with an AmbiguousLineageIdError.
   */
  tenantId?: string | undefined;
}

/** The lineage of one output (or a trace's final output), read in one read transaction; null when unknown. */
export async function readLineage(driver: Driver, database: string, id: string, options: LineageOptions = {}): Promise<Lineage | null> {
  const session = driver.session({ database, defaultAccessMode: "READ" });
  try {
    const record = await session.executeRead(async (tx) => {
      let tenantId = options.tenantId;
      if (tenantId === undefined) {
        const tenants = (await tx.run(TENANTS_OF_ID, { id })).records.map((r) => r.get("tenantId") as string);
        if (tenants.length > 1) throw new AmbiguousLineageIdError(id, tenants.length);
        tenantId = tenants[0];
        if (tenantId === undefined) return undefined;
      }
      return (await tx.run(LINEAGE, { id, tenantId })).records[0];
    });
    return record ? LineageSchema.parse(record.toObject()) : null;
  } finally {
    await session.close();
  }
}
