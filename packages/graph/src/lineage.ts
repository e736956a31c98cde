import { z } from "zod";
import type { Driver } from "neo4j-driver";

/** Parsed from the JSON text the projection stores in properties. */
const jsonText = z.string().nullable().transform((s) => (s === null ? null : (JSON.parse(s) as unknown)));

/** How text the graph dropped for an erased data subject reads (see graph-schema/README.md, Erasure). */
export const ERASED_TEXT = "[erased]";
const erasable = z.string().nullable().transform((s) => s ?? ERASED_TEXT);

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

// An id names an Output, or a Trace (then: its final output, the one recorded last).
const LINEAGE = `
MATCH (o:Output) WHERE o.id = $id OR o.traceId = $id
WITH o ORDER BY o.position DESC LIMIT 1
MATCH (p:Prompt)-[:INPUT_TO]->(c:LLMCall)-[:GENERATED]->(o)
MATCH (c)-[:USED_MODEL]->(m:ModelVersion)
MATCH (c)-[:PART_OF]->(t:Trace)-[:REQUESTED_BY]->(u:User)
MATCH (t)-[:HANDLED_BY]->(av:AgentVersion)<-[:HAS_VERSION]-(a:Agent)-[:ACTED_ON_BEHALF_OF {traceId: t.id}]->(u)
OPTIONAL MATCH (t)-[:IN_SESSION]->(s:Session)
CALL (t) {
  OPTIONAL MATCH (x:ToolCall)-[:PART_OF]->(t)
  OPTIONAL MATCH (req:LLMCall)-[:REQUESTED]->(x)
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

/** The lineage of one output (or a trace's final output), read in a read transaction; null when unknown. */
export async function readLineage(driver: Driver, database: string, id: string): Promise<Lineage | null> {
  const session = driver.session({ database, defaultAccessMode: "READ" });
  try {
    const result = await session.executeRead((tx) => tx.run(LINEAGE, { id }));
    const record = result.records[0];
    if (!record) return null;
    return LineageSchema.parse(record.toObject());
  } finally {
    await session.close();
  }
}
