import { mkdtemp, readdir, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeEach, describe, expect, it } from "vitest";
import { SCHEMA_VERSION, newEventId, streamIdFor, type AuditEvent } from "@auditgraph/core";
import {
  CheckpointSigner,
  SegmentLedger,
  generateSigningKey,
  verifyConsistencyBundle,
  verifyInclusionBundle,
  type Checkpoint,
  type RetentionPolicy,
} from "../src/index.js";

const TENANT = "acme";
const STREAM = streamIdFor(TENANT);
const DAY = 86_400_000;
const keys = generateSigningKey();

const event = (n: number, user = "alice", traceId = `trace-${n}`): AuditEvent => ({
  eventId: newEventId(),
  schemaVersion: SCHEMA_VERSION,
  type: "text",
  occurredAt: new Date().toISOString(),
  traceId,
  runId: `run-${n}`,
  parentRunId: null,
  sessionId: null,
  identity: { user: { id: user, tenantId: TENANT }, agent: { id: "a", name: "A", version: "1" } },
  payload: { text: `record ${n}` },
});

let dir: string;
let exported: Checkpoint[];
let ledger: SegmentLedger;
let batches: AuditEvent[][];
const open = () => new SegmentLedger(dir, { signer: new CheckpointSigner(keys.privateKeyPem), onCheckpoint: (c) => void exported.push(c), maxSegmentBytes: 1 });
const ago = (days: number) => new Date(Date.now() - days * DAY).toISOString();
const policy: RetentionPolicy = { days: 365 };

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "ledger-retention-"));
  exported = [];
  ledger = open();
  // One segment per batch (maxSegmentBytes 1): three old ones (4 records each), then a fresh one.
  batches = [0, 1, 2, 3].map((b) => [0, 1, 2, 3].map((i) => event(b * 4 + i, b === 1 && i === 2 ? "bob" : "alice")));
  for (const [b, events] of batches.entries()) await ledger.append(STREAM, events, b < 3 ? ago(400 - b) : ago(1));
  await ledger.close();
});

describe("retention", () => {
  it("removes whole old segments, never the one being written; verify reports them as expired and the rest still verifies", async () => {
    const reports = await ledger.retention.expire({ policy, exported });
    expect(reports).toHaveLength(1);
    expect(reports[0]!.expired.map((r) => [r.segment, r.from, r.to])).toEqual([
      [0, 0, 4],
      [1, 0, 8],
      [2, 0, 12],
    ]);
    expect(reports[0]!.keptBecause).toMatch(/segment 3 is the one being written/);
    expect((await readdir(join(dir, "streams", STREAM))).filter((n) => n.startsWith("segment-"))).toEqual(["segment-000003.jsonl"]);

    const report = await open().verify(keys.publicKeyPem, exported);
    expect(report).toMatchObject({ ok: true, count: 4, streams: [{ streamId: STREAM, expired: { from: 0, to: 12 }, root: exported.at(-1)!.rootHash }] });

    const read = [];
    for await (const r of open().readStream(STREAM)) read.push(r.position);
    expect(read).toEqual([12, 13, 14, 15]);
    expect(await open().readEvent(batches[0]![0]!.eventId)).toBeUndefined();
  });

  it("keeps proving what is left, and appends go on from the expired range", async () => {
    await ledger.retention.expire({ policy, exported });
    const reopened = open();
    const bundle = await reopened.prove(batches[3]![1]!.eventId);
    expect(bundle.leafIndex).toBe(13);
    expect(verifyInclusionBundle(bundle, keys.publicKeyPem).treeSize).toBe(16);

    await reopened.append(STREAM, [event(100), event(101)]);
    await reopened.close();
    const consistency = await open().proveConsistency(STREAM, 12);
    expect(verifyConsistencyBundle(consistency, keys.publicKeyPem)).toMatchObject({ from: { treeSize: 12 }, to: { treeSize: 18 } });
    await expect(open().proveConsistency(STREAM, 8)).rejects.toThrow(/up to position 12 have expired/);
    expect(await open().verify(keys.publicKeyPem, exported)).toMatchObject({ ok: true, count: 6 });
  });

  it("a legal hold on one user stops expiry at the first segment holding their records, until it is released", async () => {
    const hold = await ledger.retention.placeHold({ tenantId: TENANT, userId: "bob", reason: "litigation 2026-17" });
    expect(JSON.stringify(await readFile(join(dir, "holds.jsonl"), "utf8"))).not.toContain("bob");
    const held = await ledger.retention.expire({ policy, exported });
    expect(held[0]!.expired.map((r) => r.to)).toEqual([4]);
    expect(held[0]!.keptBecause).toMatch(new RegExp(`segment 1: position 6 is under legal hold ${hold.id}`));

    await ledger.retention.releaseHold(hold.id, "legal");
    await expect(ledger.retention.releaseHold(hold.id)).rejects.toThrow(/already released/);
    const released = await ledger.retention.expire({ policy, exported });
    expect(released[0]!.expired.map((r) => r.to)).toEqual([8, 12]);
  });

  it("a hold on a trace, or on the whole tenant, keeps its segments too", async () => {
    await ledger.retention.placeHold({ tenantId: TENANT, traceId: batches[0]![3]!.traceId, reason: "incident 42" });
    expect((await ledger.retention.expire({ policy, exported }))[0]!.expired).toEqual([]);
    const other = open();
    await other.retention.placeHold({ tenantId: "another-tenant", reason: "not this one" });
    expect((await other.retention.holds()).filter((h) => !h.releasedAt)).toHaveLength(2);
  });

  it("keeps segments whose checkpoint was not exported, or whose records' type or tenant keeps them longer", async () => {
    const notExported = await ledger.retention.expire({ policy, exported: exported.filter((c) => c.treeSize !== 8) });
    expect(notExported[0]!.expired.map((r) => r.to)).toEqual([4]);
    expect(notExported[0]!.keptBecause).toMatch(/segment 1: its checkpoint \(size 8\) has not been exported/);

    const fresh = open();
    expect((await fresh.retention.expire({ policy: { days: 365, eventTypes: { text: 1000 } }, exported }))[0]!.keptBecause).toMatch(
      /position 4 \(text\) is kept until/,
    );
    expect((await fresh.retention.expire({ policy: { days: 365, tenants: { [TENANT]: 500 } }, exported }))[0]!.expired).toEqual([]);
    expect((await fresh.retention.expire({ policy: {}, exported }))[0]!.keptBecause).toMatch(/kept until forever/);
    await expect(fresh.retention.expire({ policy: { days: -1 }, exported })).rejects.toThrow(/days/);
  });

  it("applies to every shard of the tenant: its policy and its holds keep them all, and another tenant's shards go", async () => {
    const shard = streamIdFor(TENANT, 3);
    // `acme_` shares acme's prefix (and `_` is a LIKE wildcard): its stream is no shard of acme's.
    const neighbour = streamIdFor(`${TENANT}_`, 3);
    const writer = open();
    for (const streamId of [shard, neighbour])
      for (let b = 0; b < 4; b++)
        await writer.append(
          streamId,
          [0, 1, 2, 3].map((i) => event(100 + b * 4 + i)),
          b < 3 ? ago(400 - b) : ago(1),
        );
    await writer.close();
    const expiredOf = (reports: { streamId: string; expired: { to: number }[] }[]) =>
      Object.fromEntries(reports.map((r) => [r.streamId, r.expired.map((e) => e.to)]));

    // The tenant keeps its records 500 days: in its base stream and in its shard alike.
    expect(expiredOf(await open().retention.expire({ policy: { days: 365, tenants: { [TENANT]: 500 } }, exported, dryRun: true }))).toEqual({
      [STREAM]: [],
      [shard]: [],
      [neighbour]: [4, 8, 12],
    });
    // A hold on the whole tenant keeps its shard too; a hold on one trace (in the shard's second segment) keeps it from there.
    const held = open();
    const hold = await held.retention.placeHold({ tenantId: TENANT, reason: "litigation" });
    expect(expiredOf(await held.retention.expire({ policy, exported, dryRun: true }))).toEqual({ [STREAM]: [], [shard]: [], [neighbour]: [4, 8, 12] });
    await held.retention.releaseHold(hold.id);
    await held.retention.placeHold({ tenantId: TENANT, traceId: "trace-104", reason: "incident" });
    expect(expiredOf(await held.retention.expire({ policy, exported }))).toEqual({ [STREAM]: [4, 8, 12], [shard]: [4], [neighbour]: [4, 8, 12] });
    expect(await open().verify(keys.publicKeyPem, exported)).toMatchObject({ ok: true });
  });

  it("a dry run says what would go and removes nothing", async () => {
    const dry = await ledger.retention.expire({ policy, exported, dryRun: true });
    expect(dry[0]!.expired.map((r) => r.to)).toEqual([4, 8, 12]);
    expect(await open().verify(keys.publicKeyPem)).toMatchObject({ ok: true, count: 16 });
  });

  it("tampering after expiry is still caught: a forged expired range, an edited or a missing live record", async () => {
    await ledger.retention.expire({ policy, exported });
    const rangesPath = join(dir, "streams", STREAM, "expired.jsonl");
    const ranges = (await readFile(rangesPath, "utf8")).split("\n").filter(Boolean);
    const forged = JSON.parse(ranges.at(-1)!) as { frontier: string[] };
    forged.frontier[0] = "0".repeat(64);
    await writeFile(rangesPath, `${[...ranges.slice(0, -1), JSON.stringify(forged)].join("\n")}\n`);
    const forgedReport = await open().verify(keys.publicKeyPem, exported);
    expect(!forgedReport.ok && forgedReport.failure).toMatchObject({ position: 11, reason: "checkpoint-mismatch" });
    await writeFile(rangesPath, `${ranges.join("\n")}\n`);

    const segment = join(dir, "streams", STREAM, "segment-000003.jsonl");
    const live = (await readFile(segment, "utf8")).split("\n").filter(Boolean);
    await writeFile(segment, `${[live[0], live[1]!.replace("record 13", "record 99"), ...live.slice(2)].join("\n")}\n`);
    const edited = await open().verify(keys.publicKeyPem, exported);
    expect(!edited.ok && edited.failure).toMatchObject({ position: 13, reason: "edited", eventId: batches[3]![1]!.eventId });

    await writeFile(segment, `${live.slice(1).join("\n")}\n`);
    const missing = await open().verify(keys.publicKeyPem, exported);
    expect(!missing.ok && missing.failure).toMatchObject({ position: 12, reason: "gap" });
  });
});
