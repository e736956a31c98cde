import { mkdir, readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { z } from "zod";
import { appendSynced, parseWith } from "@auditgraph/core";
import { CheckpointSchema, addSignatures, parseSignatureLines, type Checkpoint, type NoteSignature } from "@auditgraph/ledger";
import type { Config } from "./config.js";

/**
 * Checkpoints with their witnesses' cosignatures, kept beside the ledger (not in it: a cosignature
 * comes after the checkpoint is signed and stored, and the ledgers' stores are append-only). One
 * JSON-lines file per stream; each line is a checkpoint whose note carries the log's signature
 * and every cosignature gathered for it so far, and the witnesses (URLs) that gave them. The
 * checkpoint's JSON signature does not cover its note, so a note with more signature lines is
 * still the same signed checkpoint to every verifier; one without cosignatures reads as before.
 */
export const CosignedEntrySchema = z.object({
  checkpoint: CheckpointSchema.extend({ note: z.string().min(1) }),
  witnesses: z.array(z.string()),
});
export type CosignedEntry = z.infer<typeof CosignedEntrySchema>;

/** AUDITGRAPH_COSIGNATURE_DIR, else `cosignatures` beside the ledger directory (as the key store is). */
export function cosignatureDirOf(config: Pick<Config, "ledgerDir">, env: NodeJS.ProcessEnv = process.env): string {
  const set = env.AUDITGRAPH_COSIGNATURE_DIR;
  return set && set.trim() !== "" ? set : join(dirname(config.ledgerDir), "cosignatures");
}

const fileOf = (dir: string, streamId: string) => join(dir, `${encodeURIComponent(streamId)}.jsonl`);

export async function readCosigned(dir: string, streamId: string): Promise<CosignedEntry[]> {
  const path = fileOf(dir, streamId);
  const text = await readFile(path, "utf8").catch((error: NodeJS.ErrnoException) => {
    if (error.code === "ENOENT") return "";
    throw error;
  });
  return text
    .split("\n")
    .filter(Boolean)
    .map((line, i) => parseWith(CosignedEntrySchema, JSON.parse(line), `cosigned checkpoint on line ${i + 1} of ${path}`));
}

export async function appendCosigned(dir: string, entry: CosignedEntry): Promise<void> {
  await mkdir(dir, { recursive: true });
  await appendSynced(fileOf(dir, entry.checkpoint.streamId), `${JSON.stringify(entry)}\n`);
}

const same = (a: Pick<Checkpoint, "treeSize" | "rootHash">, b: Pick<Checkpoint, "treeSize" | "rootHash">) =>
  a.treeSize === b.treeSize && a.rootHash === b.rootHash;

/** The latest entry stored for this very checkpoint (size and root), if any. */
export const entryFor = (entries: CosignedEntry[], checkpoint: Pick<Checkpoint, "treeSize" | "rootHash">) =>
  entries.findLast((e) => same(e.checkpoint, checkpoint));

/** The newest cosigned checkpoint of a stream (the largest size; the last stored among equals). */
export const newestEntry = (entries: CosignedEntry[]): CosignedEntry | undefined =>
  entries.reduce<CosignedEntry | undefined>((best, e) => (!best || e.checkpoint.treeSize >= best.checkpoint.treeSize ? e : best), undefined);

/** The size a witness last cosigned of this stream, by what was stored (0: never, as the protocol starts). */
export const lastCosignedSize = (entries: CosignedEntry[], url: string): number =>
  entries.filter((e) => e.witnesses.includes(url)).reduce((n, e) => Math.max(n, e.checkpoint.treeSize), 0);

/** The checkpoint with its cosigned note when one is stored for it; as it is otherwise (old checkpoints too). */
export async function withCosignatures<C extends Checkpoint>(dir: string, checkpoint: C): Promise<C> {
  if (checkpoint.note === undefined) return checkpoint;
  const entry = entryFor(await readCosigned(dir, checkpoint.streamId), checkpoint);
  return entry ? { ...checkpoint, note: entry.checkpoint.note } : checkpoint;
}

/** A `prove` or `prove-consistency` bundle whose checkpoints carry their stored cosignatures. */
export async function bundleWithCosignatures<B extends object>(config: Pick<Config, "ledgerDir">, bundle: B): Promise<B> {
  const dir = cosignatureDirOf(config);
  const out = { ...bundle } as Record<string, unknown>;
  for (const key of ["checkpoint", "from", "to"]) {
    const value = out[key];
    if (value && typeof value === "object" && "streamId" in value) out[key] = await withCosignatures(dir, value as Checkpoint);
  }
  return out as B;
}

/** What a witness said to one submission. */
export type WitnessAnswer = { url: string; ok: true; cosignatures: NoteSignature[]; oldSize: number } | { url: string; ok: false; error: string };

/**
 * Submits a checkpoint note to one witness (C2SP tlog-witness add-checkpoint) from the size it
 * last cosigned; on 409 the witness says which size it holds, and the submission is made once
 * more from there. `proofFrom(size)` gives the consistency proof from that size to the note's.
 */
export async function submitToWitness(url: string, note: string, oldSize: number, proofFrom: (size: number) => Promise<Buffer[]>): Promise<WitnessAnswer> {
  const endpoint = `${url.replace(/\/+$/, "")}/add-checkpoint`;
  try {
    for (let attempt = 0, size = oldSize; ; attempt++) {
      const proof = await proofFrom(size);
      const body = `old ${size}\n${proof.map((h) => `${h.toString("base64")}\n`).join("")}\n${note}`;
      const response = await fetch(endpoint, {
        method: "POST",
        headers: { "content-type": "text/plain; charset=utf-8" },
        body,
        signal: AbortSignal.timeout(15_000),
      });
      const text = await response.text();
      if (response.status === 200) return { url, ok: true, cosignatures: parseSignatureLines(text), oldSize: size };
      const held = response.status === 409 ? /^(0|[1-9][0-9]*)\n$/.exec(text)?.[1] : undefined;
      if (held !== undefined && attempt === 0) {
        size = Number(held);
        continue;
      }
      const why = response.status === 409 ? `it holds size ${text.trim()} (after a retry from ${size})` : text.trim().slice(0, 300);
      return { url, ok: false, error: `HTTP ${response.status}: ${why}` };
    }
  } catch (error) {
    return { url, ok: false, error: (error as Error).message };
  }
}

/** The note with the witnesses' cosignatures added (one line per key: a newer replaces an older). */
export const cosignedNote = (note: string, answers: WitnessAnswer[]): string =>
  addSignatures(
    note,
    answers.flatMap((a) => (a.ok ? a.cosignatures : [])),
  );
