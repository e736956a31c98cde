import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomUUID } from "node:crypto";
import fc from "fast-check";
import { Redis } from "ioredis";
import { BATCH_JOB_NAME, EventSchema, parseEvent, type UserEvent } from "@auditgraph/core";
import { waitUntilIdle } from "@auditgraph/worker";
import type { DeadLetter } from "@auditgraph/ledger";
import { isolatedConfig, readAll, sampleTrace, startPipeline } from "../helpers.js";

/**
 * Hostile and malformed input through the real worker, ledger and Neo4j: every bad event is
 * dead-lettered with a reason naming its field, or stored verbatim; the rest of its batch is
 * kept; the worker never fails a job; another tenant's graph is untouched.
 */
let p: Awaited<ReturnType<typeof startPipeline>>;
let config: Awaited<ReturnType<typeof isolatedConfig>>;
let redis: Redis;
const canary = sampleTrace(`canary-${randomUUID().slice(0, 8)}`);
const canaryTenant = canary[0]!.identity.user.tenantId;

const countTenant = async (tenantId: string) => (await p.graph.read(`MATCH (n {tenantId: $tenantId}) RETURN count(n) AS n`, { tenantId }))[0]!.n as number;
let canaryNodes = 0;

beforeAll(async () => {
  config = await isolatedConfig();
  p = await startPipeline(config);
  redis = new Redis({ ...config.redis, maxRetriesPerRequest: null });
  await p.queue.add(BATCH_JOB_NAME, { events: canary });
  await waitUntilIdle(p.queue);
  canaryNodes = await countTenant(canaryTenant);
  expect(canaryNodes).toBeGreaterThan(5);
});

afterAll(async () => {
  // Whatever ran, the other tenant's projection is whole and nothing failed.
  expect(await countTenant(canaryTenant)).toBe(canaryNodes);
  expect(await p.queue.getFailedCount()).toBe(0);
  expect(await p.ledger.verify()).toMatchObject({ ok: true });
  redis.disconnect();
  await p.stop();
});

/** Sends jobs, waits, and returns the dead letters they added. */
async function run(jobs: unknown[]): Promise<{ ids: string[]; letters: DeadLetter[] }> {
  const before = new Set((await p.ledger.readDeadLetters()).map((d) => d.id));
  const ids: string[] = [];
  for (const data of jobs) ids.push((await p.queue.add(BATCH_JOB_NAME, data)).id!);
  await waitUntilIdle(p.queue);
  expect(await p.queue.getFailedCount()).toBe(0);
  return { ids, letters: (await p.ledger.readDeadLetters()).filter((d) => !before.has(d.id)) };
}

const stored = async (eventId: string) => (await p.ledger.readEvent(eventId))?.event;

describe("malformed jobs", () => {
  it("dead-letters a job that is not a batch, naming what is wrong, and keeps consuming", async () => {
    const jobs = ["a string", 42, null, [1, 2], { events: "nope" }, { events: [] }, { events: { 0: {} } }];
    const { ids, letters } = await run(jobs);
    expect(letters.map((l) => l.id).sort()).toEqual([...ids].sort());
    for (const l of letters) expect(l.reason).toMatch(/^invalid batch job: /);
    for (const l of letters.filter((l) => typeof l.input === "object" && l.input !== null && !Array.isArray(l.input))) expect(l.reason).toMatch(/events/);
    // Kept as received.
    expect(letters.find((l) => l.id === ids[0])!.input).toBe("a string");
    const next = sampleTrace();
    await run([{ events: next }]);
    for (const e of next) expect(await stored(e.eventId)).toEqual(e);
  });
});

/** Leaves of a valid event that the schema constrains, and values of the wrong type for them. */
const MUTABLE: string[][] = [
  ["eventId"],
  ["schemaVersion"],
  ["occurredAt"],
  ["traceId"],
  ["runId"],
  ["type"],
  ["identity"],
  ["identity", "user"],
  ["identity", "user", "id"],
  ["identity", "user", "tenantId"],
  ["identity", "agent", "version"],
  ["payload"],
  ["model", "provider"],
  ["usage", "inputTokens"],
  ["payload", "output", "text"],
  ["payload", "output", "toolCalls"],
  ["payload", "messages"],
];
// A string that is no UUID, and a valid tenant id when it lands in `identity.user.tenantId`: then
// its events are recorded and projected under that tenant, so it is this run's own, never a
// tenant an earlier run (another ledger) projected into the same Neo4j.
const NOT_A_UUID = `not-a-uuid-${randomUUID().slice(0, 8)}`;
const wrongValue = fc.oneof(
  fc.constant(undefined),
  fc.constant(null),
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(""),
  fc.array(fc.integer(), { maxLength: 2 }),
  fc.dictionary(fc.string(), fc.integer(), { maxKeys: 2 }),
  fc.constant(NOT_A_UUID),
  fc.constant(-1),
);

function mutate(event: UserEvent, path: string[], value: unknown): Record<string, unknown> {
  const copy = structuredClone(event) as unknown as Record<string, unknown>;
  let at = copy;
  for (const key of path.slice(0, -1)) {
    if (typeof at[key] !== "object" || at[key] === null) return copy;
    at = at[key] as Record<string, unknown>;
  }
  if (value === undefined) delete at[path.at(-1)!];
  else at[path.at(-1)!] = value;
  return copy;
}

const related = (a: string, b: string) => a === b || a.startsWith(`${b}.`) || b.startsWith(`${a}.`) || a === "" || b === "";

describe("the event schema, fuzzed", () => {
  it("refuses a wrong-typed field with an issue on that field (or its parent), never throws", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 5 }), fc.constantFrom(...MUTABLE), wrongValue, (which, path, value) => {
        const event = sampleTrace()[which]!;
        const mutated = mutate(event, path, value);
        const result = parseEvent(mutated);
        if (result.success) return; // e.g. a value that happens to fit, or a field this type lacks
        const paths = result.error.issues.map((i) => i.path.map(String).join("."));
        // `type` picks the union member: a bad one is reported at `type`.
        expect(
          paths.some((q) => related(q, path.join(".")) || q === "type"),
          `${path.join(".")} -> ${paths.join(", ")}`,
        ).toBe(true);
      }),
      { numRuns: 500 },
    );
  });

  it("never throws on arbitrary JSON, and accepts nothing that is not an event", () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 6 }), (value) => {
        const result = parseEvent(value);
        if (result.success) expect(EventSchema.safeParse(value).success).toBe(true);
      }),
      { numRuns: 500 },
    );
  });

  it("refuses 10,000 levels of nesting with the field named, without overflowing the stack", () => {
    let deep: unknown = "bottom";
    for (let i = 0; i < 10_000; i++) deep = { a: deep };
    const event = mutate(sampleTrace()[0]!, ["payload", "inputs"], deep);
    const result = parseEvent(event);
    expect(result.success).toBe(false);
    if (!result.success) expect(result.error.issues[0]!.path.join(".")).toBe("payload.inputs.a");
  });
});

describe("bad events through the worker", () => {
  it("dead-letters each wrong-typed event with its field, stores the rest of the batch, fuzzed", async () => {
    const cases = fc.sample(fc.tuple(fc.integer({ min: 0, max: 5 }), fc.constantFrom(...MUTABLE), wrongValue), 40);
    const jobs = cases.map(([which, path, value]) => {
      const trace = sampleTrace();
      const events: unknown[] = [...trace];
      events[which] = mutate(trace[which]!, path, value);
      return { events, bad: which, trace };
    });
    const { ids, letters } = await run(jobs.map((j) => ({ events: j.events })));
    for (const [n, job] of jobs.entries()) {
      const valid = parseEvent(job.events[job.bad]).success;
      const letter = letters.find((l) => l.id === `${ids[n]}#${job.bad}`);
      if (valid) expect(letter).toBeUndefined();
      else {
        expect(letter, `job ${n}`).toBeDefined();
        expect(letter!.reason).toMatch(new RegExp(`^invalid event ${job.bad}: `));
        expect(letter!.input).toEqual(JSON.parse(JSON.stringify(job.events[job.bad])));
      }
      // The others of the batch are in the ledger, as received.
      for (const [i, e] of job.trace.entries()) if (i !== job.bad) expect(await stored(e.eventId)).toEqual(e);
    }
  });

  it("dead-letters an unknown event type naming `type`, and a timestamp out of ISO range naming occurredAt", async () => {
    const [a, b, good] = sampleTrace();
    const unknown = { ...a!, type: "llm.telepathy" };
    const year6 = { ...b!, occurredAt: "+275760-09-13T00:00:00Z" };
    const { ids, letters } = await run([{ events: [unknown, year6, good] }]);
    expect(letters.find((l) => l.id === `${ids[0]}#0`)!.reason).toMatch(/event 0: type/);
    expect(letters.find((l) => l.id === `${ids[0]}#1`)!.reason).toMatch(/event 1: occurredAt/);
    expect(await stored(good!.eventId)).toEqual(good);
  });

  it("stores far-future and far-past client times verbatim, beside the worker's own time", async () => {
    const [start, ...rest] = sampleTrace();
    const future = { ...rest[0]!, occurredAt: "9999-12-31T23:59:59.999Z" };
    const past = { ...rest[1]!, occurredAt: "0001-01-01T00:00:00+14:00" };
    const before = Date.now();
    const { letters } = await run([{ events: [start, future, past] }]);
    expect(letters).toEqual([]);
    for (const e of [future, past]) {
      const record = await p.ledger.readEvent(e.eventId);
      expect(record!.event).toEqual(e);
      expect(Date.parse(record!.recordedAt)).toBeGreaterThanOrEqual(before - 1000);
      expect(Date.parse(record!.recordedAt)).toBeLessThanOrEqual(Date.now());
    }
  });

  it("stores a 10 MB prompt verbatim and projects it", async () => {
    const trace = sampleTrace();
    const big = "x".repeat(10 * 1024 * 1024);
    const llmStart = trace[1] as Extract<UserEvent, { type: "llm.start" }>;
    const huge = { ...llmStart, payload: { messages: [{ role: "user", content: big }] } };
    const { letters } = await run([{ events: [trace[0], huge, ...trace.slice(2)] }]);
    expect(letters).toEqual([]);
    const back = (await stored(huge.eventId)) as typeof huge;
    expect((back.payload.messages[0]!.content as string).length).toBe(big.length);
    expect(back).toEqual(huge);
    const tenantId = huge.identity.user.tenantId;
    const [row] = await p.graph.read(`MATCH (pr:Prompt {tenantId: $tenantId, id: $id}) RETURN pr.id AS id`, { tenantId, id: huge.eventId });
    expect(row).toEqual({ id: huge.eventId });
  }, 120_000);

  it("dead-letters deep nesting, 300 levels sent by a client and 10,000 written raw into Redis, input kept", async () => {
    let deep300: unknown = 1;
    for (let i = 0; i < 300; i++) deep300 = [deep300];
    const [a, b, good] = sampleTrace();
    const e300 = mutate(a!, ["payload", "inputs"], { q: deep300 });
    const first = await run([{ events: [e300, good] }]);
    expect(first.letters).toHaveLength(1);
    expect(first.letters[0]!.reason).toMatch(/event 0: payload\.inputs\.q: nested deeper than 256 levels/);
    expect(first.letters[0]!.input).toEqual(e300);
    expect(await stored(good!.eventId)).toEqual(good);

    // No client can send 10,000 levels (JSON.stringify overflows first): the job's data is
    // written into Redis directly, as a hostile or broken producer might.
    await p.worker!.worker.pause();
    const job = await p.queue.add(BATCH_JOB_NAME, { events: [] }, { delay: 60_000 });
    const text = JSON.stringify({ events: [{ ...b!, payload: { inputs: "@DEEP@" } }] }).replace('"@DEEP@"', `${'{"a":'.repeat(10_000)}1${"}".repeat(10_000)}`);
    await redis.hset(`bull:${config.queueName}:${job.id}`, "data", text);
    await job.promote();
    p.worker!.worker.resume();
    await waitUntilIdle(p.queue);
    expect(await p.queue.getFailedCount()).toBe(0);
    const letter = (await p.ledger.readDeadLetters()).find((l) => l.id === `${job.id}#0`)!;
    expect(letter.reason).toMatch(/event 0: payload\.inputs\.a: nested deeper than 256 levels/);
    expect(letter.inputAs).toBe("json-text");
    // The event's own text, as the producer wrote it: nothing lost.
    expect(letter.input).toBe(text.slice('{"events":['.length, -"]}".length));
    expect(await stored(b!.eventId)).toBeUndefined();
  });

  it("stores lone surrogates verbatim (escaped in the canonical JSON), and invalid UTF-8 bytes as U+FFFD", async () => {
    const trace = sampleTrace();
    const end = trace[2] as Extract<UserEvent, { type: "llm.end" }>;
    const lone = { ...end, payload: { ...end.payload, output: { ...end.payload.output, text: "a\ud800b\udfffc" } } };
    const { letters } = await run([{ events: [trace[0], trace[1], lone, ...trace.slice(3)] }]);
    expect(letters).toEqual([]);
    expect(await stored(lone.eventId)).toEqual(lone);
    const [row] = await p.graph.read(`MATCH (o:Output {tenantId: $t, id: $id}) RETURN o.text AS text`, { t: lone.identity.user.tenantId, id: lone.eventId });
    // Neo4j's strings are UTF-8 (Bolt), which has no unpaired surrogates: the projection holds
    // U+FFFD in their place; the ledger, the source of truth, keeps them exactly.
    expect(row!.text).toBe("a\ufffdb\ufffdc");

    // Bytes that are not UTF-8 cannot be a JS string: Redis hands them to the worker as U+FFFD.
    const [chain] = sampleTrace();
    await p.worker!.worker.pause();
    const job = await p.queue.add(BATCH_JOB_NAME, { events: [] }, { delay: 60_000 });
    const json = JSON.stringify({ events: [{ ...chain!, name: "@BAD@" }] });
    const at = json.indexOf("@BAD@");
    const raw = Buffer.concat([Buffer.from(json.slice(0, at)), Buffer.from([0x61, 0xff, 0xfe, 0xc3, 0x62]), Buffer.from(json.slice(at + 5))]);
    await redis.hset(`bull:${config.queueName}:${job.id}`, "data", raw);
    await job.promote();
    p.worker!.worker.resume();
    await waitUntilIdle(p.queue);
    expect(await stored(chain!.eventId)).toEqual({ ...chain!, name: "a\ufffd\ufffd\ufffdb" });
  });

  it("dead-letters an event id already recorded with different content, in another job or the same one", async () => {
    const trace = sampleTrace();
    await run([{ events: trace }]);
    const end = trace[2] as Extract<UserEvent, { type: "llm.end" }>;
    const forged = { ...end, payload: { ...end.payload, output: { ...end.payload.output, text: "forged" } } };
    const fresh = sampleTrace();
    const twin = { ...fresh[0]!, name: "a twin with other content" };
    const { ids, letters } = await run([{ events: [forged, ...fresh, twin, trace[0]] }]);
    expect(letters.map((l) => l.id).sort()).toEqual([`${ids[0]}#0`, `${ids[0]}#${fresh.length + 1}`].sort());
    for (const l of letters) expect(l.reason).toMatch(/eventId: event id already recorded with different content/);
    expect(letters.find((l) => l.id === `${ids[0]}#0`)!.input).toEqual(forged);
    // The first content stays, in the ledger and in the graph; the exact repeat is a plain duplicate.
    expect(await stored(end.eventId)).toEqual(end);
    expect(await stored(twin.eventId)).toEqual(fresh[0]);
    const [row] = await p.graph.read(`MATCH (o:Output {tenantId: $t, id: $id}) RETURN o.text AS text`, { t: end.identity.user.tenantId, id: end.eventId });
    expect(row!.text).toBe(end.payload.output.text);
    const all = await readAll(p.ledger);
    expect(all.filter((r) => r.event.eventId === end.eventId || r.event.eventId === twin.eventId)).toHaveLength(2);
  });

  it("stores Cypher-looking strings in every string field verbatim, and they change nothing else in the graph", async () => {
    const hostile = fc.constantFrom(
      '"}) MATCH (n) DETACH DELETE n //',
      "') MATCH (n) DETACH DELETE n //",
      "`) DETACH DELETE n; //",
      "$tenantId",
      "*",
      "' OR 1=1 --",
      "\\u0027}) CALL db.clearQueryCaches() //",
    );
    const samples = fc.sample(fc.array(hostile, { minLength: 64, maxLength: 64 }), 8);
    const traces = samples.map((words) => {
      let i = 0;
      const keep = new Set(["eventId", "schemaVersion", "type", "occurredAt", "role", "kind", "currency"]);
      const walk = (v: unknown, key: string): unknown => {
        if (typeof v === "string") return keep.has(key) ? v : `${v}${words[i++ % words.length]}`;
        if (Array.isArray(v)) return v.map((x) => walk(x, key));
        if (v && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x, k)]));
        return v;
      };
      return sampleTrace().map((e) => walk(e, "") as UserEvent);
    });
    const { letters } = await run(traces.map((events) => ({ events })));
    expect(letters).toEqual([]);
    for (const trace of traces) {
      for (const e of trace) expect(await stored(e.eventId)).toEqual(e);
      const end = trace[2] as Extract<UserEvent, { type: "llm.end" }>;
      const [row] = await p.graph.read(`MATCH (o:Output {tenantId: $t, id: $id}) RETURN o.text AS text, o.traceId AS traceId`, {
        t: end.identity.user.tenantId,
        id: end.eventId,
      });
      expect(row).toEqual({ text: end.payload.output.text, traceId: end.traceId });
    }
  });
});
