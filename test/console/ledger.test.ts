// The console's ledger routes over HTTP with API tokens, against a real signing segment ledger and
// the console's real Redis, Neo4j and PostgreSQL: the page's numbers (size, latest signed
// checkpoint, last verify), a verify run with its progress streamed over SSE, inclusion-proof
// bundles that verify with nothing but the public key (their download appended first as an access
// event), the public key, and tenant isolation (another tenant's event is a 404, appends nothing).
import { randomUUID } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isSealed, newEventId, streamIdFor, type EventOf, type UserEvent } from "@auditgraph/core";
import { CheckpointSigner, SegmentLedger, generateSigningKey, verifyInclusionBundle, type Ledger } from "@auditgraph/ledger";
import { isolatedConfig, readAll, sampleTrace } from "../helpers.js";
import { startTestConsole, testEmail, type TestConsole } from "./harness.js";

const tag = randomUUID().slice(0, 8);
const A = `ledger-a-${tag}`;
const B = `ledger-b-${tag}`;
/** A tenant with records in two shards: its base stream and shard 3. */
const C = `ledger-c-${tag}`;
const PASSWORD = "correct horse battery staple";

let app: TestConsole;
let ledger: SegmentLedger;
let ledgerDir: string;
let publicKeyPem: string;
let gate: Promise<void> = Promise.resolve();
const tokens = {} as Record<"viewerA" | "reviewerA" | "viewerB" | "reviewerC", { token: string; accountId: string }>;
/** C's traces: one in its base stream, one in its shard 3. */
let traceOfC0: UserEvent[];
let traceOfC3: UserEvent[];
/** An event id held by both tenants' streams (ids are unique within a tenant only). */
const shared = newEventId();
let eventOfA: string;
let eventOfB: string;

/** The ledger as the console sees it: a verify waits at `gate`, so a test can listen before it runs. */
const gated = (real: SegmentLedger): Ledger =>
  new Proxy(real, {
    get(target, prop) {
      if (prop === "verify") return async (...args: Parameters<Ledger["verify"]>) => (await gate, target.verify(...args));
      const value = Reflect.get(target, prop, target) as unknown;
      return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });

const call = (who: keyof typeof tokens, path: string, init: RequestInit = {}) =>
  fetch(app.url + path, { ...init, headers: { authorization: `Bearer ${tokens[who].token}`, ...(init.headers as Record<string, string>) } });
const html = async (who: keyof typeof tokens, path: string) => (await call(who, path, { headers: { accept: "text/html" } })).text();
const records = async () => readAll(new SegmentLedger(ledgerDir));
const accessOf = async (action: string) =>
  (await records()).filter((r) => !isSealed(r.event) && r.event.type === "access" && (r.event as EventOf<"access">).payload.action === action) as {
    streamId: string;
    position: number;
    event: EventOf<"access">;
  }[];

/** Reads a server-sent event stream to its end (the server ends it after `done`). */
async function sseEvents(res: Response, onEvent: (e: { event: string; data: Record<string, unknown> }) => void): Promise<void> {
  const decoder = new TextDecoder();
  let buffer = "";
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(chunk, { stream: true });
    for (let end = buffer.indexOf("\n\n"); end !== -1; end = buffer.indexOf("\n\n")) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const event = /^event: (.*)$/m.exec(block)?.[1] ?? "message";
      onEvent({ event, data: JSON.parse(/^data: (.*)$/m.exec(block)?.[1] ?? "{}") as Record<string, unknown> });
    }
  }
}

beforeAll(async () => {
  const config = await isolatedConfig();
  ledgerDir = config.ledgerDir;
  const keys = generateSigningKey();
  publicKeyPem = keys.publicKeyPem;
  const publicKeyPath = join(dirname(config.ledgerDir), "public.pem");
  await writeFile(publicKeyPath, keys.publicKeyPem);
  // Small segments: a verify reads them batch by batch, each batch a progress report.
  ledger = new SegmentLedger(config.ledgerDir, { signer: new CheckpointSigner(keys.privateKeyPem), maxSegmentBytes: 4096 });
  for (let i = 0; i < 8; i++) await ledger.append(streamIdFor(A), sampleTrace(A));
  const ofB = sampleTrace(B);
  await ledger.append(streamIdFor(B), ofB);
  eventOfA = (await readAll(ledger)).find((r) => r.streamId === streamIdFor(A))!.event.eventId;
  eventOfB = ofB[1]!.eventId;
  // The same event id in both streams, each its own tenant's event.
  const [a, b] = [sampleTrace(A)[0]!, sampleTrace(B)[0]!].map((e) => ({ ...e, eventId: shared }) as UserEvent);
  await ledger.append(streamIdFor(A), [a!]);
  await ledger.append(streamIdFor(B), [b!]);
  traceOfC0 = sampleTrace(C);
  traceOfC3 = sampleTrace(C);
  await ledger.append(streamIdFor(C), traceOfC0);
  await ledger.append(streamIdFor(C, 3), traceOfC3);

  app = await startTestConsole({ config, ledger: gated(ledger), options: { publicKeyPath } });
  for (const [who, roles] of [
    ["viewerA", { [A]: "viewer" }],
    ["reviewerA", { [A]: "reviewer" }],
    ["viewerB", { [B]: "viewer" }],
    ["reviewerC", { [C]: "reviewer" }],
  ] as const) {
    const { accountId } = await app.createAccount({ email: testEmail(who), name: `${who} ${tag}`, password: PASSWORD, roles });
    tokens[who] = { accountId, token: await app.createToken(accountId) };
  }
}, 120_000);

afterAll(async () => {
  await app?.close();
  await ledger?.close();
});

describe("console: the ledger page, verify, proofs, public key", () => {
  it("shows the viewer's streams with their size and latest signed checkpoint; only a reviewer gets a verify button", async () => {
    const page = await html("viewerA", "/ledger");
    const size = (await records()).filter((r) => r.streamId === streamIdFor(A)).length;
    expect(size).toBe(8 * 6 + 1);
    expect(page).toContain(`data-stream="${streamIdFor(A)}"`);
    expect(page).not.toContain(streamIdFor(B));
    expect(/<td class="size">(\d+)<\/td>/.exec(page)?.[1]).toBe(String(size));
    expect(/data-tree-size="(\d+)"/.exec(page)?.[1]).toBe(String(size));
    expect(page).toContain("never");
    expect(page).not.toContain(`action="/ledger/${A}/verify"`);
    expect(await html("reviewerA", "/ledger")).toContain(`action="/ledger/${A}/verify"`);
  });

  it("a viewer cannot start a verify (403); a reviewer's verify streams its progress, then its result, kept in Redis", async () => {
    const refused = await call("viewerA", `/ledger/${A}/verify`, { method: "POST" });
    expect(refused.status).toBe(403);
    expect(await app.ctx.redis.get(`auditgraph:console:verify:${streamIdFor(A)}`)).toBeNull();

    let release!: () => void;
    gate = new Promise((resolve) => (release = resolve));
    const started = await call("reviewerA", `/ledger/${A}/verify`, { method: "POST" });
    expect(started.status).toBe(202);
    const events: { event: string; data: Record<string, unknown> }[] = [];
    const listening = await call("viewerA", `/ledger/${A}/verify/events`);
    expect(listening.headers.get("content-type")).toMatch(/^text\/event-stream/);
    const done = sseEvents(listening, (e) => {
      events.push(e);
      // The run is held until the listener has its first report: then every batch is seen.
      if (events.length === 1) release();
    });
    await done;
    const size = (await records()).filter((r) => r.streamId === streamIdFor(A)).length;
    const progress = events.filter((e) => e.event === "progress").map((e) => e.data.verified as number);
    expect(progress[0]).toBe(0);
    expect(progress.length).toBeGreaterThan(2);
    expect(progress.every((v, i) => i === 0 || v > progress[i - 1]!)).toBe(true);
    expect(progress.at(-1)).toBe(size);
    expect(events.at(-1)).toMatchObject({ event: "done", data: { ok: true, count: size, signaturesVerified: expect.any(Number) } });
    expect((events.at(-1)!.data.signaturesVerified as number) > 0).toBe(true);

    const kept = JSON.parse((await app.ctx.redis.get(`auditgraph:console:verify:${streamIdFor(A)}`))!) as Record<string, unknown>;
    expect(kept).toMatchObject({ ok: true, count: size, failure: null, by: expect.stringContaining(tokens.reviewerA.accountId) });
    expect(await html("viewerA", "/ledger")).toContain(`intact</span>: ${size} records`);
    // A listener after the end gets the result at once.
    const late: string[] = [];
    await sseEvents(await call("viewerA", `/ledger/${A}/verify/events`), (e) => late.push(e.event));
    expect(late).toEqual(["done"]);
    // Another tenant's stream: 404 for the verify and its events.
    expect((await call("reviewerA", `/ledger/${B}/verify`, { method: "POST" })).status).toBe(404);
    expect((await call("viewerA", `/ledger/${B}/verify/events`)).status).toBe(404);
  });

  it("an event's proof bundle verifies with the public key alone; its download is appended first", async () => {
    const before = (await accessOf("proof.download")).length;
    // A download that cannot be recorded is not served.
    const recordAccess = app.ctx.recordAccess;
    app.ctx.recordAccess = async () => {
      throw new Error("ledger down");
    };
    const refused = await call("viewerA", `/ledger/${A}/events/${eventOfA}/proof`);
    app.ctx.recordAccess = recordAccess;
    expect(refused.status).toBe(500);
    expect(await refused.text()).not.toContain(eventOfA);

    const res = await call("viewerA", `/ledger/${A}/events/${eventOfA}/proof`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-disposition")).toBe(`attachment; filename="proof-${eventOfA}.json"`);
    const bundle = verifyInclusionBundle(await res.json(), publicKeyPem);
    expect(bundle.record.event.eventId).toBe(eventOfA);
    expect(bundle.record.streamId).toBe(streamIdFor(A));
    const downloads = await accessOf("proof.download");
    expect(downloads.length).toBe(before + 1);
    expect(downloads.at(-1)!.streamId).toBe(streamIdFor(A));
    expect(downloads.at(-1)!.event.payload).toMatchObject({
      actor: { id: tokens.viewerA.accountId, via: "token" },
      subject: { eventId: eventOfA, userId: "u1" },
    });
    // The id held by both tenants: each tenant's viewer gets its own tenant's record.
    const ofB = verifyInclusionBundle(await (await call("viewerB", `/ledger/${B}/events/${shared}/proof`)).json(), publicKeyPem);
    expect(ofB.record.streamId).toBe(streamIdFor(B));
    expect((ofB.record.event as unknown as { identity: { user: { tenantId: string } } }).identity.user.tenantId).toBe(B);
  });

  it("another tenant's event, an unknown or malformed id: 404, nothing appended", async () => {
    const count = (await records()).length;
    for (const path of [
      `/ledger/${B}/events/${eventOfB}/proof`,
      `/ledger/${A}/events/${eventOfB}/proof`,
      `/ledger/${A}/events/${newEventId()}/proof`,
      `/ledger/${A}/events/not-an-id/proof`,
    ]) {
      const res = await call("viewerA", path);
      expect(res.status, path).toBe(404);
      expect(await res.text()).not.toContain('"record"');
    }
    expect((await records()).length).toBe(count);
  });

  it("the public key downloads as configured", async () => {
    const res = await call("viewerB", "/ledger/public-key");
    expect(res.status).toBe(200);
    expect(await res.text()).toBe(publicKeyPem);
    expect(await readFile(join(dirname(ledgerDir), "public.pem"), "utf8")).toBe(publicKeyPem);
    // Signed in or not at all.
    expect((await fetch(`${app.url}/ledger/public-key`)).status).toBe(401);
  });
});

describe("console: a tenant whose records are in several shards (streams)", () => {
  const traceIdOf = (events: UserEvent[]) => events[0]!.traceId;

  it("the trace page finds a trace in shard 3 as in the base stream; another tenant's viewer gets a 404", async () => {
    for (const events of [traceOfC0, traceOfC3]) {
      const res = await call("reviewerC", `/traces/${C}/${traceIdOf(events)}`, { headers: { accept: "text/html" } });
      expect(res.status, traceIdOf(events)).toBe(200);
      expect(await res.text()).toContain(events[0]!.runId);
    }
    expect((await app.ctx.readTrace(C, traceIdOf(traceOfC3))).map((r) => [r.streamId, r.event.eventId])).toEqual(
      traceOfC3.map((e) => [streamIdFor(C, 3), e.eventId]),
    );
    expect((await call("viewerB", `/traces/${B}/${traceIdOf(traceOfC3)}`)).status).toBe(404);
    expect(await app.ctx.readTrace(B, traceIdOf(traceOfC3))).toEqual([]);
  });

  it("the ledger page has a row per shard; a verify covers all of them and keeps each one's result", async () => {
    const page = await html("reviewerC", "/ledger");
    const rows = [...page.matchAll(/<tr class="stream" data-stream="([^"]+)">.*?<td class="size">(\d+)<\/td>/gs)].map((m) => [m[1], Number(m[2])]);
    // The base stream holds the trace views' access events too.
    const held = await records();
    const sizeOf = (streamId: string) => held.filter((r) => r.streamId === streamId).length;
    expect(sizeOf(streamIdFor(C, 3))).toBe(traceOfC3.length);
    expect(rows).toEqual([
      [streamIdFor(C), sizeOf(streamIdFor(C))],
      [streamIdFor(C, 3), traceOfC3.length],
    ]);
    // One verify form for the tenant, not one per shard.
    expect(page.split(`action="/ledger/${C}/verify"`).length - 1).toBe(1);

    const started = await call("reviewerC", `/ledger/${C}/verify`, { method: "POST" });
    expect(started.status).toBe(202);
    expect(await started.json()).toMatchObject({ streamIds: [streamIdFor(C), streamIdFor(C, 3)] });
    const events: { event: string; data: Record<string, unknown> }[] = [];
    await sseEvents(await call("reviewerC", `/ledger/${C}/verify/events`), (e) => events.push(e));
    const total = sizeOf(streamIdFor(C)) + traceOfC3.length;
    expect(events.at(-1)).toMatchObject({ event: "done", data: { ok: true, count: total } });
    for (const [streamId, count] of rows) {
      const kept = JSON.parse((await app.ctx.redis.get(`auditgraph:console:verify:${streamId}`))!) as Record<string, unknown>;
      expect(kept, String(streamId)).toMatchObject({ ok: true, count, failure: null });
    }
    const late: { event: string; data: Record<string, unknown> }[] = [];
    await sseEvents(await call("reviewerC", `/ledger/${C}/verify/events`), (e) => late.push(e));
    expect(late).toMatchObject([{ event: "done", data: { ok: true, count: total } }]);
  });

  it("proves an event of shard 3 for its tenant only", async () => {
    const eventId = traceOfC3[2]!.eventId;
    const res = await call("reviewerC", `/ledger/${C}/events/${eventId}/proof`);
    expect(res.status).toBe(200);
    const bundle = verifyInclusionBundle(await res.json(), publicKeyPem);
    expect(bundle.record.streamId).toBe(streamIdFor(C, 3));
    expect((await call("viewerB", `/ledger/${B}/events/${eventId}/proof`)).status).toBe(404);
  });
});
