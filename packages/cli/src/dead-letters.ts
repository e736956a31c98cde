import { Queue, type ConnectionOptions } from "bullmq";
import { BATCH_JOB_NAME, bullConnection } from "@auditgraph/core";
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

export async function listDeadLetters(config: Config, opts: { json?: boolean }): Promise<DeadLetterView[]> {
  const letters = await deadLetters(config);
  if (opts.json) console.log(JSON.stringify(letters.map(({ input: _input, ...rest }) => rest), null, 2));
  else if (letters.length === 0) console.log("(no dead letters)");
  // Reasons and ids only: the input may hold personal data, and `show` prints it on request.
  else
    for (const l of letters)
      console.log(`${l.id}  ${l.recordedAt}  ${l.replays.length > 0 ? `replayed ${l.replays.length}x (last as job ${l.replays.at(-1)!.jobId})` : "not replayed"}\n  ${l.reason}`);
  return letters;
}

export async function showDeadLetter(config: Config, id: string, opts: { json?: boolean }): Promise<void> {
  const letter = (await deadLetters(config)).find((l) => l.id === id);
  if (!letter) throw new Error(`no dead letter with id ${JSON.stringify(id)} (see \`auditgraph dead-letters list\`)`);
  if (opts.json) return console.log(JSON.stringify(letter, null, 2));
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
export async function replayDeadLetters(config: Config, ids: string[], opts: { all?: boolean; by?: string }): Promise<DeadLetterReplay[]> {
  const letters = await deadLetters(config);
  const chosen = opts.all ? letters.filter((l) => l.replays.length === 0) : ids.map((id) => letters.find((l) => l.id === id) ?? id);
  const missing = chosen.filter((l): l is string => typeof l === "string");
  if (missing.length > 0) throw new Error(`no dead letter with id ${missing.map((m) => JSON.stringify(m)).join(", ")} (see \`auditgraph dead-letters list\`)`);
  const redis = bullConnection(config.redis);
  const queue = new Queue(config.queueName, { connection: redis.connection as ConnectionOptions });
  const ledger = await openLedger({ ...config, signingKeyPath: undefined });
  const done: DeadLetterReplay[] = [];
  try {
    for (const letter of chosen as DeadLetterView[]) {
      const job = await queue.add(BATCH_JOB_NAME, jobDataOf(letter));
      const replay: DeadLetterReplay = { deadLetterId: letter.id, replayedAt: new Date().toISOString(), queue: config.queueName, jobId: job.id!, ...(opts.by ? { by: opts.by } : {}) };
      await ledger.recordDeadLetterReplay(replay);
      done.push(replay);
      console.log(`replayed ${letter.id} as job ${replay.jobId} on queue ${replay.queue}`);
    }
  } finally {
    await queue.close();
    await redis.release();
    await ledger.close();
  }
  if (done.length === 0) console.log("nothing to replay");
  return done;
}
