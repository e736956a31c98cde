import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeEach, describe, expect, it } from "vitest";
import { canonicalJson, newEventId, sealRecord, type AuditEvent, type LedgerRecord } from "@auditgraph/core";
import {
  CheckpointSigner,
  SegmentLedger,
  checkpointExporter,
  generateSigningKey,
  readCheckpointFile,
  verifyCheckpointSignature,
  verifyInclusionBundle,
} from "../src/index.js";
import { textEvent } from "./text-event.js";

const event = textEvent;

const keys = generateSigningKey();
let dir: string;
let ledger: SegmentLedger;
let written: AuditEvent[];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "ledger-cp-"));
  ledger = new SegmentLedger(dir, { signer: new CheckpointSigner(keys.privateKeyPem) });
  written = Array.from({ length: 23 }, (_, i) => event(i));
  // Batches of 1, 2, 4, 8 and 8: a checkpoint after each.
  for (const [from, to] of [
    [0, 1],
    [1, 3],
    [3, 7],
    [7, 15],
    [15, 23],
  ] as const)
    await ledger.append("s1", written.slice(from, to));
});

const lines = async () => (await readFile(ledger.segmentPath("s1"), "utf8")).split("\n").filter(Boolean);

describe("signed checkpoints", () => {
  it("one per appended batch, each signed, each a root over the records it covers; verify checks them all", async () => {
    const checkpoints = await ledger.checkpoints("s1");
    expect(checkpoints.map((c) => c.treeSize)).toEqual([1, 3, 7, 15, 23]);
    for (const c of checkpoints) expect(verifyCheckpointSignature(c, keys.publicKeyPem)).toBe(true);
    const report = await ledger.verify(keys.publicKeyPem);
    expect(report).toMatchObject({ ok: true, count: 23, streams: [{ checkpoints: 5, root: checkpoints.at(-1)!.rootHash }] });
  });

  it("deleting the tail after a checkpoint is reported as truncation", async () => {
    await writeFile(ledger.segmentPath("s1"), `${(await lines()).slice(0, 20).join("\n")}\n`);
    const report = await new SegmentLedger(dir).verify(keys.publicKeyPem);
    expect(!report.ok && report.failure).toMatchObject({ streamId: "s1", position: 20, reason: "truncated" });
  });

  it("a rewritten history that is a valid chain again still fails against the signed roots, and is never signed", async () => {
    // Edit record 5 and re-seal it and every record after it: the hash chain is whole again.
    const records = (await lines()).map((l) => JSON.parse(l) as LedgerRecord);
    const forged: LedgerRecord[] = [];
    for (const r of records) {
      const prevHash = forged.at(-1)?.hash ?? r.prevHash;
      const event = r.position === 5 ? { ...r.event, payload: { text: "forged" } } : r.event;
      forged.push(sealRecord({ position: r.position, streamId: r.streamId, recordedAt: r.recordedAt, prevHash, event: event as AuditEvent }));
    }
    await writeFile(ledger.segmentPath("s1"), `${forged.map((r) => canonicalJson(r)).join("\n")}\n`);
    const report = await new SegmentLedger(dir).verify(keys.publicKeyPem);
    expect(!report.ok && report.failure).toMatchObject({ reason: "checkpoint-mismatch", position: 6 });
    // A writer never signs a head inconsistent with the last one it signed.
    const writer = new SegmentLedger(dir, { signer: new CheckpointSigner(keys.privateKeyPem) });
    await expect(writer.append("s1", [event(99)])).rejects.toThrow();
    expect((await writer.checkpoints("s1")).map((c) => c.treeSize)).toEqual([1, 3, 7, 15, 23]);
  });

  it("a checkpoint signed by another key, or altered, fails verification", async () => {
    const other = generateSigningKey();
    const report = await ledger.verify(other.publicKeyPem);
    expect(!report.ok && report.failure).toMatchObject({ reason: "bad-signature" });

    const path = join(dir, "streams", "s1", "checkpoints.jsonl");
    const cps = (await readFile(path, "utf8"))
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l));
    cps[2].time = "2020-01-01T00:00:00.000Z";
    await writeFile(path, `${cps.map((c: unknown) => JSON.stringify(c)).join("\n")}\n`);
    const altered = await new SegmentLedger(dir).verify(keys.publicKeyPem);
    expect(!altered.ok && altered.failure).toMatchObject({ reason: "bad-signature", position: 6 });
  });
});

describe("inclusion proofs", () => {
  it("every event proves against the latest checkpoint with the public key alone", async () => {
    for (const e of written) {
      const bundle = await ledger.prove(e.eventId);
      expect(bundle.treeSize).toBe(23);
      // Through JSON, as a third party would receive it.
      expect(verifyInclusionBundle(JSON.parse(JSON.stringify(bundle)), keys.publicKeyPem).record.event.eventId).toBe(e.eventId);
    }
  });

  it("a changed record, proof element, index or key is refused", async () => {
    const bundle = await ledger.prove(written[9]!.eventId);
    const clone = () => JSON.parse(JSON.stringify(bundle));
    const edited = clone();
    edited.record.event.payload.text = "record 10";
    expect(() => verifyInclusionBundle(edited, keys.publicKeyPem)).toThrow();
    const badPath = clone();
    badPath.proof[1] = badPath.proof[1].replace(/^./, (c: string) => (c === "0" ? "1" : "0"));
    expect(() => verifyInclusionBundle(badPath, keys.publicKeyPem)).toThrow();
    const shortPath = clone();
    shortPath.proof.pop();
    expect(() => verifyInclusionBundle(shortPath, keys.publicKeyPem)).toThrow();
    expect(() => verifyInclusionBundle(clone(), generateSigningKey().publicKeyPem)).toThrow(/signature/);
    const missing = { ...clone(), checkpoint: undefined };
    expect(() => verifyInclusionBundle(missing, keys.publicKeyPem)).toThrow(/checkpoint/);
  });

  it("an event after the last checkpoint, or unknown, cannot be proven yet", async () => {
    const unsigned = new SegmentLedger(dir);
    const late = event(50);
    await unsigned.append("s1", [late]);
    await expect(ledger.prove(late.eventId)).rejects.toThrow(/not yet covered/);
    await expect(ledger.prove(newEventId())).rejects.toThrow(/no event/);
  });
});

describe("checkpoint export", () => {
  it("hands every checkpoint to a file and a webhook; a cut tail with its local checkpoints is still caught", async () => {
    const received: unknown[] = [];
    const server = createServer((req, res) => {
      let body = "";
      req.on("data", (c: Buffer) => (body += c.toString()));
      req.on("end", () => {
        received.push(JSON.parse(body));
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const { port } = server.address() as AddressInfo;
    try {
      const outside = await mkdtemp(join(tmpdir(), "kept-"));
      const file = join(outside, "checkpoints.jsonl");
      const exporter = checkpointExporter({ file, webhookUrl: `http://127.0.0.1:${port}/checkpoints` });
      const exporting = new SegmentLedger(await mkdtemp(join(tmpdir(), "ledger-exp-")), {
        signer: new CheckpointSigner(keys.privateKeyPem),
        onCheckpoint: exporter,
      });
      for (let i = 0; i < 5; i++) await exporting.append("s1", [event(i), event(i + 100)]);
      await exporter.settled();
      const local = await exporting.checkpoints("s1");
      expect(await readCheckpointFile(file)).toEqual(local);
      expect(received).toEqual(local);
      expect(exporter.failures).toEqual([]);

      // Cut the last two batches, and the local checkpoints that covered them.
      const path = exporting.segmentPath("s1");
      const kept = (await readFile(path, "utf8")).split("\n").filter(Boolean).slice(0, 6);
      await writeFile(path, `${kept.join("\n")}\n`);
      const cps = join(exporting.dir, "streams", "s1", "checkpoints.jsonl");
      await writeFile(
        cps,
        `${local
          .slice(0, 3)
          .map((c) => JSON.stringify(c))
          .join("\n")}\n`,
      );
      const fresh = new SegmentLedger(exporting.dir);
      expect(await fresh.verify(keys.publicKeyPem)).toMatchObject({ ok: true, count: 6 });
      const caught = await fresh.verify(keys.publicKeyPem, await readCheckpointFile(file));
      expect(!caught.ok && caught.failure).toMatchObject({ streamId: "s1", reason: "truncated", position: 6 });
    } finally {
      server.close();
    }
  });

  it("a webhook that is down does not stall the ledger; the give-up is recorded", async () => {
    const exporter = checkpointExporter({ webhookUrl: "http://127.0.0.1:1/nowhere", attempts: 2 });
    const l = new SegmentLedger(await mkdtemp(join(tmpdir(), "ledger-exp-")), { signer: new CheckpointSigner(keys.privateKeyPem), onCheckpoint: exporter });
    await l.append("s1", [event(1)]);
    await exporter.settled();
    expect(exporter.failures).toHaveLength(1);
    expect(exporter.failures[0]!.checkpoint.treeSize).toBe(1);
  });
});
