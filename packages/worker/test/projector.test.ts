import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { pino } from "pino";
import type { AuditEvent, PlainRecord } from "@auditgraph/core";
import { sampleEvent } from "../../core/test/fixtures.js";
import { SegmentLedger } from "@auditgraph/ledger";
import type { ProjectionCursor, ProjectionRange, RangeOutcome } from "@auditgraph/graph";
import { StreamProjector, type ProjectionGraph } from "../src/projector.js";
import type { AppendedStream } from "../src/process.js";

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

const event = (): AuditEvent => sampleEvent();

/** A graph that takes every range extending its cursor, and keeps the ranges it was given. */
function recordingGraph() {
  const ranges: { from: number; records: number }[] = [];
  let cursor: ProjectionCursor | undefined;
  const graph: ProjectionGraph = {
    cursors: async () => (cursor ? [cursor] : []),
    projectRange: async (range: ProjectionRange, records: PlainRecord[]): Promise<RangeOutcome> => {
      ranges.push({ from: range.from, records: records.length });
      const position = range.from + range.hashes.length - 1;
      cursor = { streamId: range.streamId, position, hash: range.hashes.at(-1)! };
      return { status: "projected", position, hash: cursor.hash, projected: records.length };
    },
  };
  return { graph, ranges };
}

async function setUp(settings: { lingerMs: number; batchSize: number }) {
  const dir = await mkdtemp(join(tmpdir(), "auditgraph-projector-"));
  const ledger = new SegmentLedger(dir);
  const { graph, ranges } = recordingGraph();
  const projector = new StreamProjector({ ...settings, ledger, graph, logger: pino({ level: "silent" }) });
  cleanups.push(async () => {
    await projector.close();
    await ledger.close();
    await rm(dir, { recursive: true, force: true });
  });
  const streamId = "stream-linger";
  /** Appends `n` events and offers them, as the worker does with a job's share of a stream. */
  const job = async (n: number) => {
    const events = Array.from({ length: n }, event);
    const result = await ledger.append(streamId, events);
    const appended: AppendedStream = { streamId, records: result.records, appended: result.appended, inHand: new Map(events.map((e) => [e.eventId, e])) };
    projector.offer(appended);
  };
  return { projector, ranges, job };
}

describe("StreamProjector: lingering for a fuller batch", () => {
  it("projects the jobs that come within the linger as one batch, at once when a batch is full", async () => {
    const { projector, ranges, job } = await setUp({ lingerMs: 60_000, batchSize: 5 });
    await job(2);
    await job(2);
    expect(ranges).toEqual([]);
    await job(1);
    await projector.settled(10_000);
    expect(ranges).toEqual([{ from: 0, records: 5 }]);
  });

  it("does not linger on close: what is in hand is projected before close resolves", async () => {
    const { projector, ranges, job } = await setUp({ lingerMs: 60_000, batchSize: 100 });
    await job(3);
    await projector.close();
    expect(ranges).toEqual([{ from: 0, records: 3 }]);
  });

  it("with lingerMs 0, projects each job as soon as it comes", async () => {
    const { projector, ranges, job } = await setUp({ lingerMs: 0, batchSize: 100 });
    await job(2);
    await projector.settled(10_000);
    await job(3);
    await projector.settled(10_000);
    expect(ranges).toEqual([
      { from: 0, records: 2 },
      { from: 2, records: 3 },
    ]);
  });
});
