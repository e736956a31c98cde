import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { z } from "zod";
import { AuditgraphError, parseWith, sha256Hex, type SubjectKeyStore } from "@auditgraph/core";
import { SnapshotSchema, readSnapshotBytes, type Snapshot } from "./snapshot.js";
import { snapshotIdOf } from "./record-review.js";
import { openTrace } from "./trace.js";

const hex64 = z.string().regex(/^[0-9a-f]{64}$/);

/** The snapshot a review compared against: the file as named, its manifest's hash and the file's bytes' hash. */
export const SnapshotRefSchema = z.object({
  file: z.string().min(1),
  /** `snapshotIdOf`: the hash of the manifest, the id the (:Review) node carries. */
  id: hex64,
  /** SHA-256 of the snapshot file's bytes, so anyone holding the file can tell it is this one. */
  sha256: hex64,
});
export type SnapshotRef = z.infer<typeof SnapshotRefSchema>;

/** What the recorded traces ran as: agent versions, and models as `name@version` (or the name when no version was recorded). */
export const BaselineVersionsSchema = z.object({ agent: z.array(z.string()), model: z.array(z.string()) });
export type BaselineVersions = z.infer<typeof BaselineVersionsSchema>;

/**
 * What a replay compared, kept beside its results (`replay.json`): a later `auditgraph review DIR`
 * reads it, as the snapshot file may have moved or been deleted since.
 */
export const ReplaySubjectSchema = z.object({
  snapshot: SnapshotRefSchema,
  baselineVersions: BaselineVersionsSchema,
  candidateVersion: z.string().min(1),
  /** The snapshot's trace ids in recording order: reviews list traces in it, not in the order they finished. */
  traceOrder: z.array(z.string()),
});
export type ReplaySubject = z.infer<typeof ReplaySubjectSchema>;

export const REPLAY_SUBJECT_FILE = "replay.json";

/** Reads a snapshot file once: the snapshot, and its reference (the hash is of exactly the bytes parsed). */
export async function readSnapshotFile(file: string): Promise<{ snapshot: Snapshot; ref: SnapshotRef }> {
  const { bytes, json } = await readSnapshotBytes(file);
  const snapshot = parseWith(SnapshotSchema, json, `snapshot ${file}`);
  return { snapshot, ref: { file, id: snapshotIdOf(snapshot), sha256: sha256Hex(bytes) } };
}

/** The agent and model versions of the snapshot's traces, read from their (opened) events. */
export async function baselineVersionsOf(snapshot: Snapshot, keyStore?: Pick<SubjectKeyStore, "byId">): Promise<BaselineVersions> {
  const agent = new Set<string>();
  const model = new Set<string>();
  for (const t of snapshot.traces) {
    const { events } = await openTrace(t, keyStore);
    // A call's served version is reported at its end; its start names the model only if it never ended.
    const ended = new Set(events.filter((e) => e.type === "llm.end").map((e) => e.runId));
    for (const e of events) {
      if ("identity" in e) agent.add(e.identity.agent.version);
      if (e.type === "llm.end" || (e.type === "llm.start" && !ended.has(e.runId)))
        model.add(e.model.version ? `${e.model.name}@${e.model.version}` : e.model.name);
    }
  }
  return { agent: [...agent].sort(), model: [...model].sort() };
}

export async function writeReplaySubject(dir: string, subject: ReplaySubject): Promise<void> {
  await writeFile(join(dir, REPLAY_SUBJECT_FILE), `${JSON.stringify(parseWith(ReplaySubjectSchema, subject, "replay subject"), null, 2)}\n`);
}

export async function readReplaySubject(dir: string): Promise<ReplaySubject> {
  const path = join(dir, REPLAY_SUBJECT_FILE);
  const text = await readFile(path, "utf8").catch(() => {
    throw new AuditgraphError(
      "AUDITGRAPH_REPLAY_SUBJECT_MISSING",
      `${path} not found: it names the snapshot and versions the review compares (written by \`auditgraph replay\`; run the replay again with --out ${dir})`,
    );
  });
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new AuditgraphError("AUDITGRAPH_REPLAY_SUBJECT_MISSING", `${path} is not JSON: ${(error as Error).message}`);
  }
  return parseWith(ReplaySubjectSchema, json, path);
}

/**
 * Writes `review-<n>.{json,md,html}` in `dir`, n the first number whose JSON does not exist yet
 * (from 1). The JSON is created exclusively, so two reviews run at once never share a number,
 * and the replay's own `review.*` is never touched. Returns the JSON's path.
 */
export async function writeNumberedReview(dir: string, files: { json: string; md: string; html: string }): Promise<string> {
  for (let n = 1; ; n++) {
    const base = join(dir, `review-${n}`);
    try {
      await writeFile(`${base}.json`, files.json, { flag: "wx" });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "EEXIST") continue;
      throw error;
    }
    await writeFile(`${base}.md`, files.md);
    await writeFile(`${base}.html`, files.html);
    return `${base}.json`;
  }
}
