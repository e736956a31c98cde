import { beforeAll, describe, expect, it } from "vitest";
import { cp, mkdtemp, readFile, readdir, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { canonicalJson, sealRecord, type AuditEvent, type LedgerRecord } from "@auditgraph/core";
import { CheckpointSigner, SegmentLedger, checkpointExporter, generateSigningKey, readCheckpointFile, type VerifyFailure } from "@auditgraph/ledger";
import { appendBatch } from "@auditgraph/worker";
import { sampleTrace } from "../helpers.js";

/**
 * Tampering with a ledger the worker's append path wrote (signed checkpoints, exported to a file
 * outside it), each on its own copy: verify reports each with the first bad position.
 */
const keys = generateSigningKey();
let root: string;
let exported: string;
const TENANT = "tamper";
const stream = `tenant-${TENANT}`;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "tamper-"));
  exported = join(root, "exported-checkpoints.jsonl");
  const ledger = new SegmentLedger(join(root, "ledger"), {
    signer: new CheckpointSigner(keys.privateKeyPem),
    onCheckpoint: checkpointExporter({ file: exported }),
  });
  for (let job = 0; job < 5; job++) await appendBatch(ledger, `job-${job}`, { events: sampleTrace(TENANT) });
  expect(await ledger.verify(keys.publicKeyPem)).toMatchObject({ ok: true, count: 30 });
  await ledger.close();
});

/** A copy of the ledger, its one segment's lines, and a way to write them back. */
async function copy() {
  const dir = await mkdtemp(join(root, "copy-"));
  await cp(join(root, "ledger"), dir, { recursive: true });
  const ledger = new SegmentLedger(dir);
  const [segment] = await ledger.segments(stream);
  const lines = (await readFile(segment!, "utf8")).split("\n").filter(Boolean);
  const write = (out: string[]) => writeFile(segment!, out.map((l) => `${l}\n`).join(""));
  return { dir, ledger, lines, write };
}

const failureOf = async (ledger: SegmentLedger, kept: Parameters<SegmentLedger["verify"]>[1] = []): Promise<Partial<VerifyFailure>> => {
  const report = await ledger.verify(keys.publicKeyPem, kept);
  expect(report.ok).toBe(false);
  return report.ok ? {} : report.failure;
};

/** Every record from `at` on sealed again over an edited event: a whole hash chain, made without the key. */
function rehash(lines: string[], at: number, edit: (e: AuditEvent) => AuditEvent): string[] {
  const out: LedgerRecord[] = [];
  for (const [i, line] of lines.entries()) {
    const r = JSON.parse(line) as LedgerRecord;
    if (i < at) out.push(r);
    else {
      const event = (i === at ? edit(r.event as AuditEvent) : r.event) as AuditEvent;
      out.push(sealRecord({ position: r.position, streamId: r.streamId, recordedAt: r.recordedAt, prevHash: out.at(-1)?.hash ?? r.prevHash, event }));
    }
  }
  return out.map((r) => canonicalJson(r));
}

describe("tamper", () => {
  it("an edited record: edited, at its position", async () => {
    const { ledger, lines, write } = await copy();
    lines[7] = lines[7]!.replace('"u1"', '"u2"');
    await write(lines);
    expect(await failureOf(ledger)).toMatchObject({ reason: "edited", position: 7 });
  });

  it("a deleted record: a gap (or broken chain) at its position", async () => {
    const { ledger, lines, write } = await copy();
    await write([...lines.slice(0, 12), ...lines.slice(13)]);
    expect(await failureOf(ledger)).toMatchObject({ position: 12, reason: expect.stringMatching(/^(gap|chain-broken)$/) });
  });

  it("two records swapped: reorder at the first", async () => {
    const { ledger, lines, write } = await copy();
    [lines[20], lines[21]] = [lines[21]!, lines[20]!];
    await write(lines);
    expect(await failureOf(ledger)).toMatchObject({ position: 20, reason: expect.stringMatching(/^(reorder|chain-broken)$/) });
  });

  it("the tail cut off: truncated against the last checkpoint", async () => {
    const { ledger, lines, write } = await copy();
    await write(lines.slice(0, 25));
    expect(await failureOf(ledger)).toMatchObject({ reason: "truncated", position: 25 });
  });

  it("replace-and-rehash without the signing key: the chain is whole, the signed roots are not", async () => {
    const { ledger, lines, write } = await copy();
    const forged = rehash(lines, 9, (e) => ({ ...e, runId: "someone-else" }) as AuditEvent);
    await write(forged);
    expect(await failureOf(ledger)).toMatchObject({ reason: "checkpoint-mismatch" });
    expect((await failureOf(ledger)).position).toBeGreaterThan(9);
  });

  it("history rewritten by whoever holds the signing key passes locally, and fails against the exported checkpoints", async () => {
    // The operator re-appends the edited history into a fresh ledger, signing every checkpoint anew.
    const { lines } = await copy();
    const dir = await mkdtemp(join(root, "rewritten-"));
    const rewritten = new SegmentLedger(dir, { signer: new CheckpointSigner(keys.privateKeyPem) });
    const records = lines.map((l) => JSON.parse(l) as LedgerRecord);
    const events = records.map((r, i) => (i === 9 ? { ...r.event, runId: "rewritten" } : r.event)) as AuditEvent[];
    for (let at = 0; at < events.length; at += 6) await rewritten.append(stream, events.slice(at, at + 6), records[at]!.recordedAt);
    await rewritten.close();
    expect(await new SegmentLedger(dir).verify(keys.publicKeyPem)).toMatchObject({ ok: true, count: 30 });
    const kept = await readCheckpointFile(exported);
    expect(kept.length).toBeGreaterThan(0);
    expect(await failureOf(new SegmentLedger(dir), kept)).toMatchObject({ reason: "checkpoint-mismatch" });
    expect((await readdir(dir)).length).toBeGreaterThan(0);
  });
});
