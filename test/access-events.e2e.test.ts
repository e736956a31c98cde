// Access events end to end below the console (issue 15): `recordAccess` appends who read what to
// the tenant's ledger stream and projects it as (:Access)-[:READ]->(:Trace | :Escalation); the
// `trace-readers` and `data-readers` investigations answer from it, one tenant at a time; the
// worker's projection from the ledger and a rebuild project access events as the console does.
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  BATCH_JOB_NAME,
  SCHEMA_VERSION,
  isSealed,
  newEventId,
  streamIdFor,
  subjectRef,
  type AuditEvent,
  type EventOf,
  type LedgerRecord,
  type UserEvent,
} from "@auditgraph/core";
import { investigate } from "@auditgraph/graph";
import { AccessInputError, rebuildGraph, recordAccess, type AccessInput, type AccessResult } from "@auditgraph/worker";
import type { Config } from "@auditgraph/cli";
import { cliEnvOf, eventually, isolatedConfig, runCli, sampleTrace, startPipeline } from "./helpers.js";

const SLOW = 120_000;
const tenantA = `acc-a-${randomUUID().slice(0, 8)}`;
const tenantB = `acc-b-${randomUUID().slice(0, 8)}`;

/** `sampleTrace` for `userId`, optionally under a given trace id (the same id in two tenants). */
function traceOf(tenantId: string, userId: string, traceId?: string): UserEvent[] {
  const events = sampleTrace(tenantId);
  const original = events[0]!.traceId;
  const id = traceId ?? original;
  const swap = (run: string | null) => (run === original ? id : run);
  return events.map((e) => ({
    ...e,
    traceId: id,
    runId: swap(e.runId)!,
    parentRunId: swap(e.parentRunId),
    identity: { ...e.identity, user: { id: userId, tenantId } },
  })) as UserEvent[];
}

/** A high flag on a trace's model call and the escalation it opened, as the worker would append them. */
function escalationOf(trace: UserEvent[]): { events: AuditEvent[]; escalationId: string } {
  const llmEnd = trace.find((e) => e.type === "llm.end")!;
  const finding = {
    policyId: "test-policy",
    policyVersion: "1",
    policySetHash: "0".repeat(64),
    severity: "high" as const,
    concerns: { eventId: llmEnd.eventId, runId: llmEnd.runId, kind: "output" as const },
    reason: "a test finding",
  };
  const flag = {
    schemaVersion: SCHEMA_VERSION,
    traceId: llmEnd.traceId,
    runId: llmEnd.runId,
    parentRunId: llmEnd.parentRunId,
    sessionId: llmEnd.sessionId,
    identity: llmEnd.identity,
    eventId: newEventId(),
    occurredAt: new Date().toISOString(),
    type: "policy.flag",
    payload: { ...finding, action: "escalate", outcome: "escalated", evidence: { fields: [], measures: {} } },
  } as unknown as AuditEvent;
  const escalationId = newEventId();
  const opened = {
    eventId: escalationId,
    schemaVersion: SCHEMA_VERSION,
    type: "escalation.opened",
    occurredAt: new Date().toISOString(),
    traceId: llmEnd.traceId,
    runId: escalationId,
    parentRunId: null,
    sessionId: null,
    tenantId: llmEnd.identity.user.tenantId,
    payload: { ...finding, escalationId, flagEventIds: [flag.eventId], concerns: { ...finding.concerns, traceId: llmEnd.traceId } },
  } as AuditEvent;
  return { events: [flag, opened], escalationId };
}

const reader = (tenantId: string, over: Partial<AccessInput> = {}): AccessInput => ({
  tenantId,
  actor: { id: "rev-1", name: "Rita Reviewer", via: "password" },
  action: "trace.view",
  subject: {},
  from: { ip: "203.0.113.7", userAgent: "Mozilla/5.0 (test)" },
  ...over,
});

describe("access events: recorded, projected, investigated", () => {
  let config: Config;
  let pipeline: Awaited<ReturnType<typeof startPipeline>>;
  // u1's trace in A, u2's trace in A (with an escalation), and a trace of B under u1's trace id.
  const shared = randomUUID();
  const u1Trace = traceOf(tenantA, "u1", shared);
  const u2Trace = traceOf(tenantA, "u2");
  const escalation = escalationOf(u2Trace);
  const bTrace = traceOf(tenantB, "u1", shared);
  const accesses: AccessResult[] = [];

  const read = (cypher: string, params: Record<string, unknown>) => pipeline.graph.read(cypher, params);
  const streamRecords = async (tenantId: string) => {
    const out: LedgerRecord[] = [];
    for await (const r of pipeline.ledger.readStream(streamIdFor(tenantId))) out.push(r);
    return out;
  };
  /** Sends events through the queue and waits until the worker projected the trace's root end. */
  const viaWorker = async (events: AuditEvent[], tenantId: string, traceId: string) => {
    await pipeline.queue.add(BATCH_JOB_NAME, { events });
    await eventually(async () =>
      (await read("MATCH (t:Trace {tenantId: $tenantId, id: $traceId}) WHERE t.status = 'ok' RETURN t.id AS id", { tenantId, traceId })).length
        ? true
        : undefined,
    );
  };
  const record = async (input: AccessInput) => {
    const result = await recordAccess(pipeline.ledger, pipeline.graph, input);
    accesses.push(result);
    return result;
  };

  beforeAll(async () => {
    config = await isolatedConfig();
    pipeline = await startPipeline(config);
    await viaWorker(u1Trace, tenantA, shared);
    await viaWorker([...u2Trace, ...escalation.events], tenantA, u2Trace[0]!.traceId);
    await viaWorker(bTrace, tenantB, shared);
  }, SLOW);

  afterAll(async () => {
    await pipeline?.stop();
    await pipeline?.ledger.close();
  });

  it("appends the access event to the tenant's stream first, then projects (:Access)-[:READ]->(:Trace)", async () => {
    const result = await record(reader(tenantA, { subject: { traceId: shared } }));
    expect(result.projected).toBe(true);
    expect(result.projectionError).toBeUndefined();
    const { event } = result;
    expect(event).toMatchObject({ type: "access", tenantId: tenantA, traceId: event.eventId, runId: event.eventId, parentRunId: null, sessionId: null });
    expect(event.payload).toEqual({
      actor: { id: "rev-1", name: "Rita Reviewer", via: "password" },
      action: "trace.view",
      subject: { traceId: shared },
      from: { ip: "203.0.113.7", userAgent: "Mozilla/5.0 (test)" },
    });
    // In the ledger, in the tenant's stream, as appended; and the chain still verifies.
    expect(result.record.streamId).toBe(streamIdFor(tenantA));
    const back = await pipeline.ledger.readEvent(event.eventId);
    expect(back).toEqual(result.record);
    expect(isSealed(back!.event)).toBe(false);
    expect((await streamRecords(tenantA)).at(-1)).toEqual(result.record);
    expect(await pipeline.ledger.verify()).toMatchObject({ ok: true });

    const rows = await read(
      `MATCH (a:Access {tenantId: $tenantId, id: $id})-[:READ]->(t:Trace)
       RETURN a {.*} AS a, t.tenantId AS tenant, t.id AS trace, EXISTS { (t)-[:REQUESTED_BY]->(:User {id: 'u1'}) } AS u1`,
      { tenantId: tenantA, id: event.eventId },
    );
    expect(rows).toEqual([{ a: expect.anything(), tenant: tenantA, trace: shared, u1: true }]);
    expect(rows[0]!.a).toMatchObject({
      eventId: event.eventId,
      tenantId: tenantA,
      actorId: "rev-1",
      actorName: "Rita Reviewer",
      via: "password",
      action: "trace.view",
      traceId: shared,
      ip: "203.0.113.7",
      userAgent: "Mozilla/5.0 (test)",
      at: result.record.recordedAt,
      occurredAt: event.occurredAt,
      streamId: streamIdFor(tenantA),
      position: result.record.position,
    });
  });

  it("projects the same record again without duplicating the node or its relationships", async () => {
    const first = accesses[0]!;
    for (let i = 0; i < 2; i++) await pipeline.graph.project([{ ...first.record, event: first.event }]);
    const [count] = await read(
      `MATCH (a:Access {tenantId: $tenantId, id: $id})
       RETURN count(a) AS nodes, COUNT { (a)-[:READ]->() } AS reads, COUNT { MATCH (t:Trace {tenantId: $tenantId, id: $traceId}) } AS traces`,
      { tenantId: tenantA, id: first.event.eventId, traceId: shared },
    );
    expect(count).toEqual({ nodes: 1, reads: 1, traces: 1 });
  });

  it("links a read of an escalation to it, and a read of a trace projected later to that trace", async () => {
    const decided = await record(
      reader(tenantA, {
        actor: { id: "rev-2", via: "oidc" },
        action: "escalation.decide",
        subject: { escalationId: escalation.escalationId },
        from: { ip: "198.51.100.2" },
      }),
    );
    const [link] = await read("MATCH (:Access {tenantId: $tenantId, id: $id})-[:READ]->(e:Escalation) RETURN e.id AS id, e.state AS state", {
      tenantId: tenantA,
      id: decided.event.eventId,
    });
    // Matched, not made: the escalation keeps the state its opening gave it.
    expect(link).toEqual({ id: escalation.escalationId, state: "open" });

    // A read of a trace whose events the graph has not seen yet: the trace meets it by its key.
    const later = traceOf(tenantA, "u3");
    const early = await record(reader(tenantA, { subject: { traceId: later[0]!.traceId } }));
    await viaWorker(later, tenantA, later[0]!.traceId);
    const rows = await read(
      `MATCH (t:Trace {tenantId: $tenantId, id: $traceId})
       RETURN count(t) AS traces, COUNT { (t)<-[:READ]-(:Access {id: $id}) } AS reads, COUNT { (t)-[:REQUESTED_BY]->(:User {id: 'u3'}) } AS users`,
      { tenantId: tenantA, traceId: later[0]!.traceId, id: early.event.eventId },
    );
    expect(rows).toEqual([{ traces: 1, reads: 1, users: 1 }]);
  });

  it("trace-readers: who read a trace, newest first, and nothing of another tenant's trace of the same id", async () => {
    await record(reader(tenantA, { actor: { id: "rev-3", via: "token" }, subject: { traceId: shared, userId: "u1" }, from: { ip: "192.0.2.9" } }));
    // Tenant B reads its own trace of the same id.
    const bRead = await recordAccess(
      pipeline.ledger,
      pipeline.graph,
      reader(tenantB, { actor: { id: "rev-b", via: "password" }, subject: { traceId: shared, userId: "u1" } }),
    );
    expect(bRead.record.streamId).toBe(streamIdFor(tenantB));

    const mine = accesses.filter((a) => a.event.tenantId === tenantA && a.event.payload.subject.traceId === shared);
    const expected = mine
      .sort((x, y) =>
        x.record.recordedAt === y.record.recordedAt ? (x.event.eventId < y.event.eventId ? 1 : -1) : x.record.recordedAt < y.record.recordedAt ? 1 : -1,
      )
      .map((a) => ({
        actorId: a.event.payload.actor.id,
        actorName: a.event.payload.actor.name ?? null,
        via: a.event.payload.actor.via,
        action: a.event.payload.action,
        at: a.record.recordedAt,
        ip: a.event.payload.from.ip,
      }));
    expect(expected.map((r) => r.actorId)).toEqual(["rev-3", "rev-1"]);
    expect(await investigate(pipeline.graph, "trace-readers", { tenantId: tenantA, traceId: shared })).toEqual(expected);
    expect(await investigate(pipeline.graph, "trace-readers", { tenantId: tenantB, traceId: shared })).toEqual([
      { actorId: "rev-b", actorName: null, via: "password", action: "trace.view", at: bRead.record.recordedAt, ip: "203.0.113.7" },
    ]);
    expect(await investigate(pipeline.graph, "trace-readers", { tenantId: tenantA, traceId: randomUUID() })).toEqual([]);
  });

  it("data-readers: reads of the user's traces, of escalations about them and of anything named hers; one tenant; in a window", async () => {
    // A proof download of one of u1's events: the subject names her, no trace.
    const proof = await record(
      reader(tenantA, { actor: { id: "rev-4", via: "password" }, action: "proof.download", subject: { eventId: u1Trace[2]!.eventId, userId: "u1" } }),
    );
    const row = (a: AccessResult, traceId: string | null) => ({
      actorId: a.event.payload.actor.id,
      actorName: a.event.payload.actor.name ?? null,
      action: a.event.payload.action,
      traceId,
      at: a.record.recordedAt,
      ip: a.event.payload.from.ip,
    });
    const newestFirst = (rows: { a: AccessResult; traceId: string | null }[]) =>
      rows
        .sort((x, y) =>
          x.a.record.recordedAt === y.a.record.recordedAt
            ? x.a.event.eventId < y.a.event.eventId
              ? 1
              : -1
            : x.a.record.recordedAt < y.a.record.recordedAt
              ? 1
              : -1,
        )
        .map((x) => row(x.a, x.traceId));
    const ofTrace = (traceId: string) => accesses.filter((a) => a.event.tenantId === tenantA && a.event.payload.subject.traceId === traceId);
    const u1 = newestFirst([...ofTrace(shared).map((a) => ({ a, traceId: shared })), { a: proof, traceId: null }]);
    expect(u1.map((r) => r.actorId)).toEqual(["rev-4", "rev-3", "rev-1"]);
    expect(await investigate(pipeline.graph, "data-readers", { tenantId: tenantA, userId: "u1" })).toEqual(u1);

    // u2: the decision on the escalation about her trace (the read named the escalation only).
    const decided = accesses.find((a) => a.event.payload.action === "escalation.decide")!;
    expect(await investigate(pipeline.graph, "data-readers", { tenantId: tenantA, userId: "u2" })).toEqual([row(decided, u2Trace[0]!.traceId)]);

    // Tenant B's reader of its u1 is B's alone.
    const bRows = await investigate(pipeline.graph, "data-readers", { tenantId: tenantB, userId: "u1" });
    expect(bRows.map((r) => r.actorId)).toEqual(["rev-b"]);
    expect(await investigate(pipeline.graph, "data-readers", { tenantId: tenantA, userId: "nobody" })).toEqual([]);

    // A window [from, to): from the newest read's time on, and before it.
    const from = u1[0]!.at;
    expect(await investigate(pipeline.graph, "data-readers", { tenantId: tenantA, userId: "u1", from })).toEqual(u1.filter((r) => r.at >= from));
    expect(await investigate(pipeline.graph, "data-readers", { tenantId: tenantA, userId: "u1", to: from })).toEqual(u1.filter((r) => r.at < from));
    // A misspelt parameter is refused by name.
    await expect(investigate(pipeline.graph, "data-readers", { tenantId: tenantA, userId: "u1", user: "u1" } as never)).rejects.toThrow(
      /Unrecognized key: "user"/,
    );
  });

  it(
    "`auditgraph query data-readers --tenant --user` prints the same rows",
    async () => {
      const result = await runCli(cliEnvOf(config), "query", "data-readers", "--tenant", tenantA, "--user", "u1", "--json");
      expect(result.code, result.stderr).toBe(0);
      expect(JSON.parse(result.stdout)).toEqual(await investigate(pipeline.graph, "data-readers", { tenantId: tenantA, userId: "u1" }));
    },
    SLOW,
  );

  it("refuses a bad input naming the field, and appends nothing", async () => {
    const before = (await streamRecords(tenantA)).length;
    const refusal = async (input: unknown) => {
      try {
        await recordAccess(pipeline.ledger, pipeline.graph, input as AccessInput);
      } catch (error) {
        return error as AccessInputError;
      }
      throw new Error("recorded, but should have been refused");
    };
    const unknownKey = await refusal({ ...reader(tenantA), comment: "hello" });
    expect(unknownKey).toBeInstanceOf(AccessInputError);
    expect(unknownKey.code).toBe("AUDITGRAPH_E_ACCESS_INVALID");
    expect(unknownKey.message).toContain("comment");
    const { actor: _actor, ...noActor } = reader(tenantA);
    const missing = await refusal(noActor);
    expect(missing.issues.map((i) => i.path)).toEqual(["actor"]);
    const nested = await refusal(reader(tenantA, { subject: { traceId: shared, text: "the prompt" } as never }));
    expect(nested.message).toContain("text");
    expect(nested.issues[0]!.path).toBe("subject");
    const action = await refusal(reader(tenantA, { action: "trace.edit" as never }));
    expect(action.issues.map((i) => i.path)).toEqual(["action"]);
    expect((await streamRecords(tenantA)).length).toBe(before);
  });

  it(
    "an erasure takes the audited user's id off the reads that named her: data-readers answers by her subject ref",
    async () => {
      const tenantC = `acc-c-${randomUUID().slice(0, 8)}`;
      const trace = traceOf(tenantC, "u9");
      const traceId = trace[0]!.traceId;
      await viaWorker(trace, tenantC, traceId);
      const viewed = await recordAccess(pipeline.ledger, pipeline.graph, reader(tenantC, { subject: { traceId, userId: "u9" } }));
      const proved = await recordAccess(
        pipeline.ledger,
        pipeline.graph,
        reader(tenantC, { action: "proof.download", subject: { eventId: trace[1]!.eventId, userId: "u9" } }),
      );
      expect((await investigate(pipeline.graph, "data-readers", { tenantId: tenantC, userId: "u9" })).map((r) => r.action)).toEqual([
        "proof.download",
        "trace.view",
      ]);

      const ref = subjectRef(tenantC, "u9");
      const erasedId = newEventId();
      const erased = {
        eventId: erasedId,
        schemaVersion: SCHEMA_VERSION,
        type: "subject.erased",
        occurredAt: new Date().toISOString(),
        traceId: erasedId,
        runId: erasedId,
        parentRunId: null,
        sessionId: null,
        tenantId: tenantC,
        subject: ref,
        payload: { keyId: "key-1", erasedAt: new Date().toISOString() },
      } as AuditEvent;
      const { records } = await pipeline.ledger.append(streamIdFor(tenantC), [erased]);
      await pipeline.graph.project([{ ...records[0]!, event: erased }]);

      const ids = await read("MATCH (a:Access {tenantId: $tenantId}) RETURN a.id AS id, a.userId AS userId ORDER BY id", { tenantId: tenantC });
      expect(ids).toEqual([viewed, proved].map((a) => ({ id: a.event.eventId, userId: ref })).sort((x, y) => (x.id < y.id ? -1 : 1)));
      expect(await investigate(pipeline.graph, "data-readers", { tenantId: tenantC, userId: "u9" })).toEqual([]);
      expect((await investigate(pipeline.graph, "data-readers", { tenantId: tenantC, userId: ref })).map((r) => [r.action, r.traceId])).toEqual([
        ["proof.download", null],
        ["trace.view", traceId],
      ]);
    },
    SLOW,
  );

  it(
    "the worker's projection from the ledger, and a rebuild, project access events too",
    async () => {
      // Appended with no graph (as when Neo4j is down): the ledger has it, the graph not yet.
      const offline = await recordAccess(
        pipeline.ledger,
        undefined,
        reader(tenantA, { actor: { id: "rev-5", via: "password" }, subject: { traceId: shared } }),
      );
      expect(offline.projected).toBe(false);
      const node = () =>
        read("MATCH (a:Access {tenantId: $tenantId, id: $id})-[:READ]->(t:Trace {id: $traceId}) RETURN a.actorId AS actorId", {
          tenantId: tenantA,
          id: offline.event.eventId,
          traceId: shared,
        });
      expect(await node()).toEqual([]);
      // The worker's next job of the stream projects from its cursor, in ledger order: the access first.
      const next = traceOf(tenantA, "u1");
      await viaWorker(next, tenantA, next[0]!.traceId);
      expect(await node()).toEqual([{ actorId: "rev-5" }]);

      const readersBefore = await investigate(pipeline.graph, "trace-readers", { tenantId: tenantA, traceId: shared });
      const dataBefore = await investigate(pipeline.graph, "data-readers", { tenantId: tenantA, userId: "u1" });
      const result = await rebuildGraph(pipeline.ledger, pipeline.graph, { tenantId: tenantA, replace: true });
      expect(result.deleted).toBeGreaterThan(0);
      const appended = (await streamRecords(tenantA)).flatMap((r) => (r.event.type === "access" && !isSealed(r.event) ? [r.event as EventOf<"access">] : []));
      const [counts] = await read("MATCH (a:Access {tenantId: $tenantId}) RETURN count(a) AS nodes, sum(COUNT { (a)-[:READ]->() }) AS reads", {
        tenantId: tenantA,
      });
      // Every access of the stream is one node, with one READ when it named a trace or an escalation.
      expect(appended.length).toBe(accesses.filter((a) => a.event.tenantId === tenantA).length + 1);
      const reads = appended.filter((e) => e.payload.subject.traceId !== undefined || e.payload.subject.escalationId !== undefined).length;
      expect(reads).toBe(appended.length - 1);
      expect(counts).toEqual({ nodes: appended.length, reads });
      expect(await investigate(pipeline.graph, "trace-readers", { tenantId: tenantA, traceId: shared })).toEqual(readersBefore);
      expect(await investigate(pipeline.graph, "data-readers", { tenantId: tenantA, userId: "u1" })).toEqual(dataBefore);
    },
    SLOW,
  );
});
