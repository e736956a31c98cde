import { describe, expect, it } from "vitest";
import { AIMessage } from "@langchain/core/messages";
import { awaitAllCallbacks } from "@langchain/core/callbacks/promises";
import { dispatchCustomEvent } from "@langchain/core/callbacks/dispatch";
import { fakeModel } from "@langchain/core/testing";
import { tool } from "@langchain/core/tools";
import { createAgent } from "langchain";
import { z } from "zod";
import { EventSchema, ValidationError } from "@auditgraph/core";
import { PolicySet } from "@auditgraph/policy";
import { AuditCallbackHandler, Redactor, type HandlerOptions } from "../src/index.js";
import { Collect } from "./collect.js";

const agent = { id: "agent-r", name: "Redaction agent", version: "1.0.0" };
const user = { id: "rita", tenantId: "globex" };

const SECRETS = {
  openAiKey: "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4zQ7",
  bearer: "mF_9.B5f-4.1JqMzz81",
  jwt: "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
  pemBody: "MIIEowIBAAKCAQEA7bq3Xk2uQ9vTn1c",
  password: "correct-horse-battery-staple",
  clientSecret: "cs-4f1c9a7e2d",
};
const PEM = `-----BEGIN RSA PRIVATE KEY-----\n${SECRETS.pemBody}\n-----END RSA PRIVATE KEY-----`;
const PII = { email: "jane.doe@example.com", phone: "+1 415 555 2671" };

/**
 * A real createAgent run whose prompt, tool input, tool output, custom event and answer carry
 * every secret format; returns what the handler sent and what the tool itself received.
 */
async function run(options: Partial<HandlerOptions> = {}) {
  const transport = new Collect();
  const handler = new AuditCallbackHandler({ agent, user, ...options }, transport);
  const received: unknown[] = [];
  const login = tool(
    async (args) => {
      received.push(args);
      await dispatchCustomEvent("login.audit", {
        request: { headers: { authorization: `Bearer ${SECRETS.bearer}` } },
        auth: { client_secret: SECRETS.clientSecret },
      });
      return `session ${SECRETS.jwt} for ${PII.email}; deploy key:\n${PEM}`;
    },
    {
      name: "login",
      description: "log a service in",
      schema: z.object({ user: z.string(), password: z.string(), apiKey: z.string(), note: z.string() }),
    },
  );
  const model = fakeModel()
    .respondWithTools([
      {
        id: "call-1",
        name: "login",
        args: { user: PII.email, password: SECRETS.password, apiKey: SECRETS.openAiKey, note: `Authorization: Bearer ${SECRETS.bearer}` },
      },
    ])
    .respond(new AIMessage(`Logged in with ${SECRETS.openAiKey}; the session is ${SECRETS.jwt}. Call ${PII.phone}.`));
  const prompt = [
    `Log in as ${PII.email} (phone ${PII.phone}) with key ${SECRETS.openAiKey},`,
    `header Authorization: Bearer ${SECRETS.bearer}, token ${SECRETS.jwt},`,
    `config {"password": "${SECRETS.password}"} and this key:\n${PEM}`,
  ].join("\n");
  await createAgent({ model, tools: [login] }).invoke({ messages: [{ role: "user", content: prompt }] }, { callbacks: [handler] });
  await awaitAllCallbacks();
  for (const event of transport.events) EventSchema.parse(event);
  return { events: transport.events, json: JSON.stringify(transport.events), received };
}

describe("redaction by default in the handler", () => {
  it("a handler with no redaction options sends no secret, in any event, at any depth", async () => {
    const { events, json, received } = await run();
    // The run really carried them: the tool got the password in clear, the trail did not.
    expect(received).toEqual([expect.objectContaining({ password: SECRETS.password, apiKey: SECRETS.openAiKey })]);
    expect(events.map((e) => e.type)).toEqual(expect.arrayContaining(["llm.start", "llm.end", "tool.start", "tool.end", "custom"]));
    for (const [name, secret] of Object.entries(SECRETS)) expect(json, `${name} left the process`).not.toContain(secret);
    expect(json).toContain("[SECRET]");
    expect(events.some((e) => (e.redactions?.secret ?? 0) > 0)).toBe(true);
    // Personal data is kept unless asked for.
    expect(json).toContain(PII.email);
    expect(json).toContain(PII.phone);
  });

  it("with a Redactor({ pii: true }), e-mail and phone go too", async () => {
    const { events, json } = await run({ redactor: new Redactor({ pii: true }) });
    for (const value of [...Object.values(SECRETS), ...Object.values(PII)]) expect(json).not.toContain(value);
    const counts = events.map((e) => e.redactions ?? {});
    expect(counts.some((c) => (c.email ?? 0) > 0)).toBe(true);
    expect(counts.some((c) => (c.phone ?? 0) > 0)).toBe(true);
  });

  it("sends events unredacted only when told to, with redactor: false", async () => {
    const { json } = await run({ redactor: false });
    expect(json).toContain(SECRETS.openAiKey);
    expect(json).toContain(SECRETS.password);
  });

  it("takes a redactor of one's own", async () => {
    const { events } = await run({ redactor: { redactEvent: (event) => ({ ...event, tags: ["mine"] }) } });
    expect(events.every((e) => e.tags?.includes("mine"))).toBe(true);
  });
});

describe("the handler's options refuse unknown keys, naming them", () => {
  const refusal = (options: unknown): ValidationError => {
    try {
      new AuditCallbackHandler(options as HandlerOptions, new Collect());
    } catch (error) {
      expect(error).toBeInstanceOf(ValidationError);
      return error as ValidationError;
    }
    throw new Error("the options were accepted");
  };

  it.each([["redactr"], ["highImpactTool"], ["captureToken"], ["logLevel"]])("a misspelt %s", (key) => {
    const error = refusal({ agent, user, [key]: true });
    expect(error.message).toContain(`"${key}"`);
    expect(error.message).toMatch(/^invalid AuditCallbackHandler options/);
  });

  it("inside agent, user, inlinePolicies and prices too", () => {
    expect(refusal({ agent: { ...agent, verison: "2" } }).message).toMatch(/agent: .*"verison"/);
    expect(refusal({ agent, user: { ...user, role: ["admin"] } }).message).toMatch(/user: .*"role"/);
    const set = PolicySet.create([]);
    expect(refusal({ agent, inlinePolicies: { set, decidr: {} } }).message).toMatch(/inlinePolicies: .*"decidr"/);
    expect(refusal({ agent, prices: { m: { input: 1, output: 2, cached: 1 } } }).message).toMatch(/prices\.m: .*"cached"/);
  });

  it("a redactor that is not one, naming the field", () => {
    expect(refusal({ agent, redactor: "off" }).issues.map((i) => i.path)).toEqual(["redactor"]);
    expect(refusal({ agent, redactor: { pii: true } }).message).toMatch(/redactor: must be a Redactor/);
    expect(refusal({ agent, logger: {} }).issues.map((i) => i.path)).toEqual(["logger"]);
  });

  it("a Redactor's own options the same way", () => {
    expect(() => new Redactor({ pii: true, emial: {} } as never)).toThrow(/redaction config: .*"emial"/);
  });
});
