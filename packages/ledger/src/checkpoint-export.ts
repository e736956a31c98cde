import { readFile } from "node:fs/promises";
import { z } from "zod";
import { appendSynced, backoffMs, parseWith } from "@auditgraph/core";
import { CheckpointSchema, type Checkpoint } from "./checkpoint.js";
import { setTimeout as sleep } from "node:timers/promises";

export const CheckpointExportSchema = z.object({
  /** A file outside the ledger's reach that collects every checkpoint (JSON lines, fsynced). */
  file: z.string().min(1).optional(),
  /** An HTTP(S) endpoint that is POSTed each checkpoint as JSON. */
  webhookUrl: z.url({ protocol: /^https?$/ }).optional(),
  /** Attempts per checkpoint at the webhook, with exponential backoff from 200 ms. */
  attempts: z.number().int().positive().default(5),
});
export type CheckpointExport = z.input<typeof CheckpointExportSchema>;

export interface CheckpointExporter {
  (checkpoint: Checkpoint): Promise<void>;
  /** Resolves once every webhook delivery started so far has succeeded or given up. */
  settled(): Promise<void>;
  /** Deliveries that gave up, for the operator to look at. */
  failures: { checkpoint: Checkpoint; error: string }[];
}

/**
 * Hands each checkpoint to outside parties as it is made, so that cutting the ledger's tail
 * (and its local checkpoints with it) is still caught. The file is written before the append
 * resolves; the webhook is delivered in the background, so an outage there never stalls the ledger.
 */
export function checkpointExporter(options: CheckpointExport): CheckpointExporter {
  const { file, webhookUrl, attempts } = parseWith(CheckpointExportSchema, options, "checkpoint export");
  const inFlight = new Set<Promise<void>>();
  const failures: CheckpointExporter["failures"] = [];

  const deliver = async (checkpoint: Checkpoint) => {
    let lastError = "";
    for (let attempt = 0; attempt < attempts; attempt++) {
      try {
        const response = await fetch(webhookUrl!, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify(checkpoint),
          signal: AbortSignal.timeout(5_000),
        });
        if (response.ok) return;
        lastError = `HTTP ${response.status}`;
      } catch (error) {
        lastError = (error as Error).message;
      }
      // 200 ms, doubling: one process retrying its own delivery, so no jitter and no cap.
      await sleep(backoffMs(attempt + 1, { minMs: 200, maxMs: Infinity }));
    }
    failures.push({ checkpoint, error: lastError });
  };

  const exporter = async (checkpoint: Checkpoint) => {
    if (file) {
      await appendSynced(file, `${JSON.stringify(checkpoint)}\n`);
    }
    if (webhookUrl) {
      const delivery = deliver(checkpoint).finally(() => inFlight.delete(delivery));
      inFlight.add(delivery);
    }
  };
  return Object.assign(exporter, {
    settled: async () => {
      while (inFlight.size) await Promise.all([...inFlight]);
    },
    failures,
  });
}

/** Checkpoints kept elsewhere (an exported file), to verify the ledger against. */
export async function readCheckpointFile(path: string): Promise<Checkpoint[]> {
  const text = await readFile(path, "utf8");
  return text
    .split("\n")
    .filter(Boolean)
    .map((line, i) => parseWith(CheckpointSchema, JSON.parse(line), `checkpoint on line ${i + 1} of ${path}`));
}
