import { z } from "zod";

export const GraphConfigSchema = z.object({
  uri: z.string().regex(/^(bolt|neo4j)(\+s|\+ssc)?:\/\//, "must be a bolt:// or neo4j:// URI"),
  user: z.string().min(1),
  password: z.string().min(1),
  database: z.string().min(1).default("neo4j"),
  /** How long one write keeps retrying a lost connection before the job fails and BullMQ retries it. */
  maxRetryTimeMs: z.number().int().positive().default(30_000),
});
export type GraphConfig = z.input<typeof GraphConfigSchema>;
