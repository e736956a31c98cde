import { z } from "zod";
import { EventSchema } from "./schema.js";
import { canonicalJson, sha256Hex } from "./hashing.js";

export const GENESIS_HASH = "0".repeat(64);

/** One line of a stream: the event as received, wrapped in the worker's stamp and the chain. */
export const LedgerRecordSchema = z.object({
  position: z.number().int().nonnegative(),
  streamId: z.string().min(1),
  /** Server-side (worker) time: the timestamp that counts. */
  recordedAt: z.iso.datetime({ offset: true }),
  prevHash: z.string().regex(/^[0-9a-f]{64}$/),
  event: EventSchema,
  hash: z.string().regex(/^[0-9a-f]{64}$/),
});

export type LedgerRecord = z.infer<typeof LedgerRecordSchema>;

/** The hash covers everything in the record but the hash itself. */
export function recordHash(record: Omit<LedgerRecord, "hash">): string {
  const { position, streamId, recordedAt, prevHash, event } = record;
  return sha256Hex(canonicalJson({ position, streamId, recordedAt, prevHash, event }));
}

export function sealRecord(unsealed: Omit<LedgerRecord, "hash">): LedgerRecord {
  return { ...unsealed, hash: recordHash(unsealed) };
}
