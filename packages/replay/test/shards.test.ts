// A tenant's traces spread over its shards (streams): a snapshot of the tenant takes them from
// every one of its streams, and none from another tenant's, however alike the ids.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomUUID } from "node:crypto";
import { afterAll, describe, expect, it } from "vitest";
import { streamIdFor } from "@auditgraph/core";
import { CheckpointSigner, SegmentLedger, generateSigningKey } from "@auditgraph/ledger";
import { createSnapshot, verifySnapshot } from "@auditgraph/replay";
import { userTrace } from "./user-trace.js";

const dirs: string[] = [];
afterAll(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

describe("snapshots of a sharded tenant", () => {
  it("hold the tenant's traces of shard 0 and shard 3, proven each against its own stream, and no other tenant's", async () => {
    const dir = await mkdtemp(join(tmpdir(), "auditgraph-shard-snap-"));
    dirs.push(dir);
    const keys = generateSigningKey();
    const ledger = new SegmentLedger(join(dir, "ledger"), { signer: new CheckpointSigner(keys.privateKeyPem) });
    const tenantId = `t-${randomUUID().slice(0, 8)}`;
    // `<tenant>x` shares the tenant's prefix: its streams are not the tenant's.
    const other = `${tenantId}x`;
    const [base, third, others] = [userTrace(tenantId), userTrace(tenantId), userTrace(other)];
    await ledger.append(streamIdFor(tenantId), base);
    await ledger.append(streamIdFor(tenantId, 3), third);
    await ledger.append(streamIdFor(other, 3), others);
    try {
      const snapshot = await createSnapshot(ledger, { tenantId });
      expect(snapshot.traces.map((t) => [t.traceId, t.streamId]).sort()).toEqual(
        [
          [base[0]!.traceId, streamIdFor(tenantId)],
          [third[0]!.traceId, streamIdFor(tenantId, 3)],
        ].sort(),
      );
      expect(snapshot.manifest.checkpoints.map((c) => c.streamId).sort()).toEqual([streamIdFor(tenantId), streamIdFor(tenantId, 3)].sort());
      expect(verifySnapshot(snapshot, keys.publicKeyPem)).toMatchObject({ ok: true, traces: 2, records: 4 });
      expect((await createSnapshot(ledger, { tenantId: other })).traces.map((t) => t.traceId)).toEqual([others[0]!.traceId]);
    } finally {
      await ledger.close();
    }
  });
});
