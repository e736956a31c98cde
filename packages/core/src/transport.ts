import { z } from "zod";

/** The BullMQ queue events travel on, and the shape of one job: a batch of events. */
export const DEFAULT_QUEUE_NAME = "auditgraph-events";
export const BATCH_JOB_NAME = "events";

/** Events stay `unknown` here: the worker validates each on its own, so one bad event cannot sink its batch. */
export const BatchJobSchema = z.object({
  events: z.array(z.unknown()).min(1),
});
export type BatchJob = z.infer<typeof BatchJobSchema>;
