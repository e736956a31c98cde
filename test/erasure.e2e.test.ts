import { readFile, readdir, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openRecords, subjectRef, type UserEvent } from "@auditgraph/core";
import { ERASED_TEXT, Graph, formatLineage } from "@auditgraph/graph";
import { CheckpointSigner, SegmentLedger, generateSigningKey, verifyInclusionBundle } from "@auditgraph/ledger";
import { processBatch } from "@auditgraph/worker";
import { eraseSubject, keyStoreOf, type Config } from "@auditgraph/cli";
import { isolatedConfig, readAll, sampleTrace } from "./helpers.js";

const tag = randomUUID().slice(0, 8);
const tenantId = `erase-${tag}`;
const alice = {
  id: `alice-${tag}`,
  email: `alice.${tag}@example.com`,
  prompt: `Alice ${tag} asks: what is my balance? Write to alice.${tag}@example.com`,
  answer: `Alice ${tag}, your balance is 1,234.56 EUR`,
  thought: `Alice ${tag} wants her balance; the add tool is exact.`,
  toolInput: `{"account":"alice-acct-${tag}"}`,
  toolOutput: `balance-of-alice-${tag}`,
};
const bob = { id: `bob-${tag}`, prompt: `Bob ${tag} asks: what is the weather?`, answer: `Bob ${tag}, it is sunny` };

/** sampleTrace's six events, for one user, with that user's own texts in every payload that holds text. */
function traceOf(user: { id: string; prompt: string; answer: string; thought?: string; toolInput?: string; toolOutput?: string }): UserEvent[] {
  return sampleTrace(tenantId).map((e) => {
    const event = { ...e, identity: { ...e.identity, user: { id: user.id, tenantId } } } as UserEvent;
    if (event.type === "llm.start") return { ...event, payload: { messages: [{ role: "user", content: user.prompt }] } };
    if (event.type === "llm.end") {
      const reasoning = event.payload.reasoning!.map((s) => (s.kind === "reasoning" ? { ...s, text: user.thought ?? s.text } : s));
      return { ...event, payload: { ...event.payload, output: { ...event.payload.output, text: user.answer }, reasoning } };
    }
    if (event.type === "tool.start") return { ...event, payload: { ...event.payload, input: user.toolInput ?? event.payload.input } };
    if (event.type === "tool.end") return { ...event, payload: { ...event.payload, output: user.toolOutput ?? event.payload.output } };
    return event;
  });
}

let config: Config;
let graph: Graph;
let publicKeyPem: string;
const aliceEvents = traceOf(alice);
const bobEvents = traceOf(bob);
const printed: string[] = [];

async function ledgerText(): Promise<string> {
  const files = await readdir(config.ledgerDir, { recursive: true, withFileTypes: true });
  const texts = await Promise.all(files.filter((f) => f.isFile()).map((f) => readFile(join(f.parentPath, f.name), "utf8")));
  return texts.join("\n");
}

/** Nodes of this test's tenant with `text` in any property. */
const nodesHolding = async (text: string) =>
  (
    await graph.read(
      // A list property (an Output's toolCallArgs) is searched item by item.
      `MATCH (n) WHERE n.tenantId = $tenantId AND any(k IN keys(n) WHERE any(v IN CASE WHEN valueType(n[k]) STARTS WITH 'LIST' THEN n[k] ELSE [n[k]] END WHERE toString(v) CONTAINS $text))
       RETURN count(n) AS n`,
      { tenantId, text },
    )
  )[0]!.n as number;

const structureOf = async (traceId: string) =>
  graph.read(
    `MATCH (t:Trace {id: $traceId})-[:REQUESTED_BY]->(u:User)
     OPTIONAL MATCH (n)-[:PART_OF]->(t)
     WITH t, u, count(DISTINCT n) AS parts
     MATCH (p:Prompt)-[:INPUT_TO]->(c:LLMCall)-[:GENERATED]->(o:Output), (c)-[:PART_OF]->(t), (c)-[:USED_MODEL]->(m:ModelVersion)
     MATCH (s:ReasoningStep)-[:STEP_OF]->(c)
     MATCH (a:Agent)-[r:ACTED_ON_BEHALF_OF {traceId: $traceId}]->(u)
     MATCH (c)-[:REQUESTED]->(x:ToolCall)-[:INVOKED]->(:Tool)
     RETURN parts, count(DISTINCT p) AS prompts, count(DISTINCT o) AS outputs, count(DISTINCT s) AS steps,
            count(DISTINCT m) AS models, count(DISTINCT r) AS actedFor, count(DISTINCT x) AS toolCalls, count(DISTINCT u) AS users`,
    { traceId },
  );

let structureBefore: Record<string, unknown>[];

beforeAll(async () => {
  const base = await isolatedConfig();
  const keys = generateSigningKey();
  publicKeyPem = keys.publicKeyPem;
  const signingKeyPath = join(dirname(base.ledgerDir), "signing-key.pem");
  await writeFile(signingKeyPath, keys.privateKeyPem, { mode: 0o600 });
  config = { ...base, signingKeyPath };
  graph = new Graph(config.neo4j);
  await graph.migrate();
  const ledger = new SegmentLedger(config.ledgerDir, { signer: new CheckpointSigner(keys.privateKeyPem) });
  try {
    const outcome = await processBatch(ledger, graph, "erasure-job-1", { events: [...aliceEvents, ...bobEvents] }, { keyStore: keyStoreOf(config) });
    expect(outcome).toMatchObject({ appended: 12, deadLettered: 0, projected: 12 });
  } finally {
    await ledger.close();
  }
});

afterAll(async () => {
  await graph?.close();
});

describe("erasing a data subject (crypto-shredding)", () => {
  it("keeps payloads out of the ledger files: ciphertext per subject, the graph in the clear", async () => {
    const text = await ledgerText();
    for (const secret of [alice.id, alice.email, alice.prompt, alice.answer, alice.thought, alice.toolOutput, bob.id, bob.prompt]) {
      expect(text).not.toContain(secret);
    }
    expect(text).toContain('"alg":"A256GCM"');
    // Before the erasure the graph holds the text: the checks after it can fail.
    expect(await nodesHolding(alice.prompt)).toBe(1);
    expect(await nodesHolding(alice.answer)).toBe(1);
    expect(await nodesHolding(alice.thought)).toBe(1);
    structureBefore = await structureOf(aliceEvents[0]!.traceId);
    expect(structureBefore).toEqual([{ parts: 2, prompts: 1, outputs: 1, steps: 2, models: 1, actedFor: 1, toolCalls: 1, users: 1 }]);
  });

  it("erase: destroys the key, appends a PII-free subject.erased event, drops the subject's plaintext from the graph", async () => {
    const result = await eraseSubject(config, { user: alice.id, tenant: tenantId, reason: "right to erasure request #17", by: "dpo-1" }, (l) =>
      printed.push(l),
    );
    const subject = subjectRef(tenantId, alice.id);
    expect(result).toMatchObject({ subject, position: 12, streamId: `tenant-${tenantId}` });
    expect(await keyStoreOf(config).current(subject)).toBeUndefined();
    expect(await keyStoreOf(config).current(subjectRef(tenantId, bob.id))).toBeDefined();
    expect(printed.join("\n")).toContain(`data key ${result.keyId} destroyed`);

    // The ledger: every record still verifies, signatures included; proofs still hold.
    const ledger = new SegmentLedger(config.ledgerDir);
    try {
      expect(await ledger.verify(publicKeyPem)).toMatchObject({ ok: true, count: 13 });
      const bundle = JSON.parse(JSON.stringify(await ledger.prove(aliceEvents[1]!.eventId)));
      expect(verifyInclusionBundle(bundle, publicKeyPem).record.event.eventId).toBe(aliceEvents[1]!.eventId);

      const records = await readAll(ledger);
      const erasure = records.find((r) => r.event.type === "subject.erased")!;
      expect(erasure.event).toMatchObject({
        eventId: result.eventId,
        tenantId,
        subject,
        payload: { keyId: result.keyId, reason: "right to erasure request #17", requestedBy: "dpo-1" },
      });
      const erasureText = JSON.stringify(erasure);
      expect(erasureText).not.toContain(alice.id);
      expect(erasureText).not.toContain(alice.email);
      expect(erasureText).not.toContain("alice");

      // Readers: the subject's events are erased, the other user's open as received.
      const opened = await openRecords(records, keyStoreOf(config));
      const byId = new Map(opened.map((o) => [o.record.event.eventId, o]));
      for (const e of aliceEvents) expect(byId.get(e.eventId)).toMatchObject({ erased: true, subject, keyId: result.keyId });
      for (const e of bobEvents) expect(byId.get(e.eventId)).toEqual({ erased: false, record: expect.objectContaining({ event: e }) });
      expect(byId.get(result.eventId)?.erased).toBe(false);
    } finally {
      await ledger.close();
    }

    // The graph: none of the subject's text, the other user's intact, the lineage structure unchanged.
    for (const secret of [alice.id, alice.email, alice.prompt, alice.answer, alice.thought, alice.toolInput, alice.toolOutput]) {
      expect(await nodesHolding(secret)).toBe(0);
    }
    expect(await nodesHolding(bob.prompt)).toBe(1);
    expect(await nodesHolding(bob.answer)).toBe(1);
    expect(await structureOf(aliceEvents[0]!.traceId)).toEqual(structureBefore);
    const [user] = await graph.read(`MATCH (u:User {tenantId: $tenantId, subject: $subject}) RETURN u.id AS id, u.erased AS erased`, {
      tenantId,
      subject,
    });
    expect(user).toEqual({ id: subject, erased: true });
    // `auditgraph trace` still draws the erased trace's lineage, without the text.
    const lineage = (await graph.lineage(aliceEvents[0]!.traceId))!;
    expect(lineage).toMatchObject({ output: { text: ERASED_TEXT }, prompt: { hash: ERASED_TEXT, messages: null }, user: { id: subject, tenantId } });
    expect(lineage.toolCalls).toHaveLength(1);
    expect(formatLineage(lineage)).not.toContain("alice");
  });

  it("erasing again: a clear error naming the arguments, nothing appended", async () => {
    await expect(eraseSubject(config, { user: alice.id, tenant: tenantId })).rejects.toThrow(
      new RegExp(`--user "${alice.id}" of --tenant "${tenantId}" has no data key`),
    );
    await expect(eraseSubject(config, { user: " ", tenant: tenantId })).rejects.toThrow(/--user: must be a non-empty user id/);
    await expect(eraseSubject(config, { user: alice.id })).rejects.toThrow(/--tenant/);
    const ledger = new SegmentLedger(config.ledgerDir);
    try {
      expect(await readAll(ledger)).toHaveLength(13);
    } finally {
      await ledger.close();
    }
  });

  it("a job redelivered after the erasure puts none of the subject's plaintext back into the graph", async () => {
    const ledger = new SegmentLedger(config.ledgerDir);
    try {
      const outcome = await processBatch(ledger, graph, "erasure-job-1", { events: [...aliceEvents, ...bobEvents] }, { keyStore: keyStoreOf(config) });
      // Nothing new in the ledger; only the other user's records are projected again.
      expect(outcome).toMatchObject({ appended: 0, duplicates: 12, projected: 6 });
    } finally {
      await ledger.close();
    }
    for (const secret of [alice.id, alice.prompt, alice.answer, alice.toolOutput]) expect(await nodesHolding(secret)).toBe(0);
    expect(await nodesHolding(bob.prompt)).toBe(1);
  });
});
