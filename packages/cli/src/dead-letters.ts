import { Queue, type ConnectionOptions } from "bullmq";
import { AuditgraphError, BATCH_JOB_NAME, batchJobOptions } from "@auditgraph/core";
import { bullConnection } from "@auditgraph/policy";
import type { DeadLetter, DeadLetterReplay } from "@auditgraph/ledger";
import type { Config } from "./config.js";
import { openLedger } from "./ledger.js";

export interface DeadLetterView extends DeadLetter {
  replays: DeadLetterReplay[];
}

async function deadLetters(config: Config): Promise<DeadLetterView[]> {
  const ledger = await openLedger({ ...config, signingKeyPath: undefined });
  const [letters, replays] = await Promise.all([ledger.readDeadLetters(), ledger.readDeadLetterReplays()]).finally(() => ledger.close());
  return letters.map((l) => ({ ...l, replays: replays.filter((r) => r.deadLetterId === l.id) }));
}

/**
 * The job data a dead letter's input goes back as: a whole job's (id `<jobId>`) as it was, one
 * event's (id `<jobId>#<index>`) as a batch of that one event.
 */
export function jobDataOf(letter: DeadLetter): unknown {
  const input = letter.inputAs === "json-text" ? (JSON.parse(letter.input as string) as unknown) : letter.input;
  return letter.id.includes("#") ? { events: [input] } : input;
}

/** A job's input refused by the worker, or a ledger record the graph refused (kept in the ledger, set aside from the graph). */
export const kindOf = (letter: Pick<DeadLetter, "kind">): "job" | "projection" => letter.kind ?? "job";

export async function listDeadLetters(config: Config, opts: { json?: boolean }): Promise<DeadLetterView[]> {
  const letters = await deadLetters(config);
  if (opts.json)
    console.log(
      JSON.stringify(
        letters.map(({ input: _input, ...rest }) => ({ ...rest, kind: kindOf(rest) })),
        null,
        2,
      ),
    );
  else if (letters.length === 0) console.log("(no dead letters)");
  // Reasons and ids only: the input may hold personal data, and `show` prints it on request.
  else
    for (const l of letters) {
      const state =
        kindOf(l) === "projection"
          ? `tenant ${l.projection?.tenantId ?? "?"}, event ${l.projection?.eventId ?? "?"} (in the ledger; \`rebuild-graph --tenant\` tries it again)`
          : l.replays.length > 0
            ? `replayed ${l.replays.length}x (last as job ${l.replays.at(-1)!.jobId})`
            : "not replayed";
      console.log(`${kindOf(l).padEnd(10)} ${l.id}  ${l.recordedAt}  ${state}\n  ${l.reason}`);
    }
  return letters;
}

export async function showDeadLetter(config: Config, id: string, opts: { json?: boolean }): Promise<void> {
  const letter = (await deadLetters(config)).find((l) => l.id === id);
  if (!letter) throw new AuditgraphError("AUDITGRAPH_E_NO_DEAD_LETTER", `no dead letter with id ${JSON.stringify(id)} (see \`auditgraph dead-letters list\`)`);
  if (opts.json) return console.log(JSON.stringify({ ...letter, kind: kindOf(letter) }, null, 2));
  if (kindOf(letter) === "projection") {
    const p = letter.projection;
    return console.log(
      `id:          ${letter.id}\nkind:        projection (the record is in the ledger; the graph refused it)\nrecorded at: ${letter.recordedAt}\n` +
        `stream:      ${p?.streamId}\nposition:    ${p?.position}\nevent:       ${p?.eventId}\ntenant:      ${p?.tenantId ?? "?"}\nreason:      ${letter.reason}`,
    );
  }
  console.log(`id:          ${letter.id}\nrecorded at: ${letter.recordedAt}\njob:         ${letter.jobId}\nreason:      ${letter.reason}`);
  for (const r of letter.replays) console.log(`replayed:    ${r.replayedAt} as job ${r.jobId} on ${r.queue}${r.by ? ` by ${r.by}` : ""}`);
  console.log(`input${letter.inputAs ? ` (${letter.inputAs})` : ""}:\n${letter.inputAs ? (letter.input as string) : JSON.stringify(letter.input, null, 2)}`);
}

/**
 * Submits dead letters' inputs again, each as a new job on the queue (after the operator fixed
 * what refused them: a worker upgraded to a newer schema, a policy, ...). The worker validates
 * them again; what is still bad is dead-lettered again, with the new job's id.
 * With `all`, only those never replayed are.
 */
export async function replayDeadLetters(
  config: Config,
  ids: string[],
  opts: { all?: boolean; by?: string },
  print: (line: string) => void = console.log,
): Promise<DeadLetterReplay[]> {
  const letters = await deadLetters(config);
  // A projection dead letter is no job: its record is in the ledger already, and a rebuild of its tenant projects it again.
  const chosen = opts.all ? letters.filter((l) => l.replays.length === 0 && kindOf(l) === "job") : ids.map((id) => letters.find((l) => l.id === id) ?? id);
  const missing = chosen.filter((l): l is string => typeof l === "string");
  if (missing.length > 0)
    throw new AuditgraphError(
      "AUDITGRAPH_E_NO_DEAD_LETTER",
      `no dead letter with id ${missing.map((m) => JSON.stringify(m)).join(", ")} (see \`auditgraph dead-letters list\`)`,
    );
  const records = (chosen as DeadLetterView[]).filter((l) => kindOf(l) === "projection");
  if (records.length > 0)
    throw new AuditgraphError(
      "AUDITGRAPH_E_DEAD_LETTER_NOT_A_JOB",
      `${records.map((l) => l.id).join(", ")}: a projection dead letter is a ledger record, not a job: once the graph can take it, \`auditgraph rebuild-graph --tenant <tenant> --replace\` projects it`,
    );
  const redis = bullConnection(config.redis);
  const queue = new Queue(config.queueName, { connection: redis.connection as ConnectionOptions });
  const ledger = await openLedger({ ...config, signingKeyPath: undefined });
  const done: DeadLetterReplay[] = [];
  try {
    for (const letter of chosen as DeadLetterView[]) {
      // The transport's job options: retries, priority, and out of Redis once recorded.
      const job = await queue.add(BATCH_JOB_NAME, jobDataOf(letter), batchJobOptions());
      const replay: DeadLetterReplay = {
        deadLetterId: letter.id,
        replayedAt: new Date().toISOString(),
        queue: config.queueName,
        jobId: job.id!,
        ...(opts.by ? { by: opts.by } : {}),
      };
      await ledger.recordDeadLetterReplay(replay);
      done.push(replay);
      print(`replayed ${letter.id} as job ${replay.jobId} on queue ${replay.queue}`);
    }
  } finally {
    await queue.close();
    await redis.release();
    await ledger.close();
  }
  if (done.length === 0) print("nothing to replay");
  return done;
}
