import fc from "fast-check";
import { isValidPhoneNumber } from "libphonenumber-js/max";
import { describe, expect, it } from "vitest";
import { EventSchema, ValidationError, type AuditEvent } from "@auditgraph/core";
import { Redactor, type RedactionConfig } from "../src/index.js";
import { SHAPED_EVENT_TYPES } from "../src/redactor.js";
import { sampleEvent } from "../../core/test/fixtures.js";
import { labelledAsBusiness } from "../src/business.js";

const HASH_KEY = "test-hmac-key-0123456789";

function deepFreeze<T>(value: T): T {
  if (typeof value === "object" && value !== null) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}

/** An `llm.start` event whose single user message is `content`. */
function promptEvent(content: unknown, overrides: Partial<Record<string, unknown>> = {}): AuditEvent {
  const messages = [{ role: "user", content }];
  return sampleEvent({ payload: { messages }, ...overrides });
}

function toolStart(input: unknown): AuditEvent {
  return sampleEvent({ type: "tool.start", model: undefined, payload: { toolCallId: "call_1", input } });
}

const text = (redactor: Redactor, input: string): string => redactor.redactText(input).text;

describe("built-in detectors", () => {
  const redactor = new Redactor({ pii: true });

  // [kind, text holding a true positive, the value that must go, a near miss that must stay]
  const cases: Array<[string, string, string, string]> = [
    ["email", "write to jane.doe+audit@example.co.uk today", "jane.doe+audit@example.co.uk", "write to jane.doe at example dot com or @handle"],
    ["phone", "call (415) 555-2671 after lunch", "(415) 555-2671", "order 1234567 shipped 2024-01-15 12:30"],
    ["phone", "or +44 20 7946 0958 in London", "+44 20 7946 0958", "version 20.7946.0958.1"],
    ["card", "card 4111 1111 1111 1111 exp 12/29", "4111 1111 1111 1111", "card 4111 1111 1111 1112 (Luhn fails)"],
    ["card", "amex 378282246310005.", "378282246310005", "ref 378282246310006 and timestamp 1712345678901"],
    ["iban", "pay GB82 WEST 1234 5698 7654 32 by Friday", "GB82 WEST 1234 5698 7654 32", "pay GB83 WEST 1234 5698 7654 32 by Friday"],
    ["iban", "iban:DE89370400440532013000", "DE89370400440532013000", "iban:DE88370400440532013000"],
    ["ssn", "SSN 123-45-6789 on file", "123-45-6789", "ids 666-12-3456, 123-45-67890 and 000-12-3456"],
    ["ip", "from 192.168.10.20, port 22", "192.168.10.20", "999.1.1.1 and version 1.2.3.4.5"],
    ["ip", "peer [2001:db8::ff00:42:8329]:443", "2001:db8::ff00:42:8329", "std::vector<int> at 12:30:45"],
    [
      "secret",
      "key sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z done",
      "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z",
      "the task-force-management-system and sk-learn",
    ],
    ["secret", "sk-ant-api03-Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2Ji1HgFeDcBa-_00AA", "sk-ant-api03-Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2Ji1HgFeDcBa-_00AA", "ask-ant-colony questions"],
    ["secret", "aws AKIAIOSFODNN7EXAMPLE here", "AKIAIOSFODNN7EXAMPLE", "AKIA is a prefix, AKIASHORT too"],
    ["secret", "gh ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789", "ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789", "ghp_short and gh_pages"],
    ["secret", "slack xoxb-123456789012-123456789012-AbCdEfGhIjKl", "xoxb-123456789012-123456789012-AbCdEfGhIjKl", "xox-ox and xoxo"],
    ["secret", "google AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY", "AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY", "AIza is short"],
    ["secret", "stripe sk_live_4eC39HqLyjWDarjtT1zdp7dc", "sk_live_4eC39HqLyjWDarjtT1zdp7dc", "sk_live_ and pk_live_4eC39HqLyjWDarjtT1zdp7dc"],
    ["secret", "Authorization: Bearer mF_9.B5f-4.1JqM", "mF_9.B5f-4.1JqM", "Bearer authentication is explained below"],
    [
      "secret",
      "token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
      "dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
      "eyJ alone and a.b.c",
    ],
    [
      "secret",
      "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7\n-----END RSA PRIVATE KEY-----\nok",
      "MIIEowIBAAKCAQEA7",
      "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----",
    ],
    ["secret", "db: password=hunter2&user=bob", "hunter2", "max_tokens=5, tokenizer: bpe, password_hash"],
    ["secret", 'config {"api_key": "s3cr\\"et-value"}', 's3cr\\"et-value', '{"tokens": 12}'],
  ];

  it.each(cases)("%s: redacts %j and leaves its near miss alone", (kind, positive, value, nearMiss) => {
    const found = redactor.redactText(positive);
    expect(found.text).not.toContain(value);
    expect(found.counts[kind]).toBeGreaterThanOrEqual(1);
    const missed = redactor.redactText(nearMiss);
    expect(missed.text).toBe(nearMiss);
    expect(missed.counts).toEqual({});
  });

  it("replaces a credential-named field's string value whole, wherever it is", () => {
    const { value, counts } = redactor.redactValue({
      db: { password: "correct horse battery staple", DB_PASSWORD: "x", user: "bob" },
      headers: { "X-Api-Key": "abc", Authorization: "Basic Ym9iOnNlY3JldA==" },
      authToken: "t0k",
      max_tokens: 5,
      tokens: "not a credential",
      password: "",
    });
    expect(value).toEqual({
      db: { password: "[SECRET]", DB_PASSWORD: "[SECRET]", user: "bob" },
      headers: { "X-Api-Key": "[SECRET]", Authorization: "[SECRET]" },
      authToken: "[SECRET]",
      max_tokens: 5,
      tokens: "not a credential",
      password: "",
    });
    expect(counts).toEqual({ secret: 5 });
  });

  it("returns ordinary text as the same string and ordinary values as the same objects", () => {
    const plain = "The quick brown fox jumps over the lazy dog, 3 times, at 12:30 on 2024-01-15.";
    expect(text(redactor, plain)).toBe(plain);
    const value = { a: [plain, { b: 1, c: null }], d: true };
    expect(redactor.redactValue(value).value).toBe(value);
  });

  it("redacts a finding claimed by two detectors once, covering both", () => {
    const { text: out, counts } = redactor.redactText("Authorization: Bearer abc123def456");
    expect(out).toBe("Authorization: [SECRET]");
    expect(counts).toEqual({ secret: 1 });
  });

  it("can switch a detector off", () => {
    const noIp = new Redactor({ pii: true, detectors: { ip: { enabled: false } } });
    expect(text(noIp, "host 10.0.0.1 mail a@b.io")).toBe("host 10.0.0.1 mail [EMAIL]");
  });

  it("reads national phone numbers in the configured region", () => {
    const uk = new Redactor({ pii: true, detectors: { phone: { defaultCountry: "GB" } } });
    expect(text(uk, "ring 020 7946 0958 now")).toBe("ring [PHONE] now");
    expect(text(redactor, "ring 020 7946 0958 now")).toBe("ring 020 7946 0958 now");
  });
});

describe("the default: secrets always, personal data on request", () => {
  const secrets = [
    "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z",
    "AKIAIOSFODNN7EXAMPLE",
    "ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789",
    "xoxb-123456789012-123456789012-AbCdEfGhIjKl",
    "mF_9.B5f-4.1JqM",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    "MIIEowIBAAKCAQEA7",
    "hunter2",
    "Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2",
  ];
  const pii = ["jane.doe@example.com", "(415) 555-2671", "4111 1111 1111 1111", "123-45-6789", "192.168.10.20", "GB82 WEST 1234 5698 7654 32"];
  const textOf = (values: { secrets: string[]; pii: string[] }) =>
    [
      `keys ${values.secrets[0]} ${values.secrets[1]} ${values.secrets[2]} ${values.secrets[3]}`,
      `Authorization: Bearer ${values.secrets[4]}`,
      `jwt ${values.secrets[5]}`,
      `-----BEGIN PRIVATE KEY-----\n${values.secrets[6]}\n-----END PRIVATE KEY-----`,
      `password=${values.secrets[7]} SIGNING_KEY=${values.secrets[8]}`,
      ...values.pii,
    ].join("\n");
  const input = textOf({ secrets, pii });

  it("new Redactor() replaces every secret format and leaves personal data alone", () => {
    const { text: out, counts } = new Redactor().redactText(input);
    for (const secret of secrets) expect(out).not.toContain(secret);
    for (const value of pii) expect(out).toContain(value);
    expect(Object.keys(counts)).toEqual(["secret"]);
  });

  it("pii: true replaces personal data as well", () => {
    const { text: out, counts } = new Redactor({ pii: true }).redactText(input);
    for (const value of [...secrets, ...pii]) expect(out).not.toContain(value);
    expect(Object.keys(counts).sort()).toEqual(["card", "email", "iban", "ip", "phone", "secret", "ssn"]);
  });

  it("credential-named fields at any depth, in the default", () => {
    const { value } = new Redactor().redactValue({
      a: [{ b: { password: "p1", passwd: "p2", client_secret: "p3", apiKey: "p4", api_key: "p5", token: "p6", authorization: "p7" } }],
      pin: { password: 123456 },
      max_tokens: 256,
      signingKey: "Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2",
      sortKey: "created_at_2024_11_30",
      email: "jane.doe@example.com",
    });
    expect(value).toEqual({
      a: [
        {
          b: {
            password: "[SECRET]",
            passwd: "[SECRET]",
            client_secret: "[SECRET]",
            apiKey: "[SECRET]",
            api_key: "[SECRET]",
            token: "[SECRET]",
            authorization: "[SECRET]",
          },
        },
      ],
      pin: { password: "[SECRET]" },
      max_tokens: 256,
      signingKey: "[SECRET]",
      sortKey: "created_at_2024_11_30",
      email: "jane.doe@example.com",
    });
  });

  it("a generated-looking value under any *key name is a secret; a written one is not", () => {
    const redactor = new Redactor();
    expect(text(redactor, "LICENSE_KEY=Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2 ok")).toBe("LICENSE_KEY=[SECRET] ok");
    expect(text(redactor, '{"encryptionKey": "3f9a8c7d6e5b4a39281706f5e4d3c2b1"}')).toBe('{"encryptionKey": "[SECRET]"}');
    for (const plain of ["sort_key=created_at_2024_11_30", "primary_key: customer_id_12345678", "key: my-app-production-key-v2"]) {
      expect(text(redactor, plain)).toBe(plain);
    }
  });

  it("naming a PII detector turns it on alone; pii: true with enabled: false leaves one out", () => {
    const emailOnly = new Redactor({ detectors: { email: { operator: "mask" } } });
    expect(text(emailOnly, "jane.doe@example.com 192.168.10.20")).toBe("******** 192.168.10.20");
    const allButIp = new Redactor({ pii: true, detectors: { ip: { enabled: false } } });
    expect(text(allButIp, "jane.doe@example.com 192.168.10.20")).toBe("[EMAIL] 192.168.10.20");
    const noSecrets = new Redactor({ detectors: { secret: { enabled: false } } });
    expect(text(noSecrets, "password=hunter2")).toBe("password=hunter2");
  });
});

describe("operators", () => {
  const card = "4111-1111-1111-1111";

  it("token replaces with the kind", () => {
    expect(text(new Redactor({ pii: true }), `pay ${card} now`)).toBe("pay [CARD] now");
  });

  it("mask keeps the last 4 where that is usual, and hides even the length elsewhere", () => {
    const masking = new Redactor({ pii: true, defaultOperator: "mask" });
    expect(text(masking, `pay ${card} now`)).toBe("pay ****-****-****-1111 now");
    expect(text(masking, "ssn 123-45-6789")).toBe("ssn ***-**-6789");
    expect(text(masking, "mail someone.long@example.com")).toBe("mail ********");
    expect(masking.redactValue({ password: "hunter2" }).value).toEqual({ password: "********" });
  });

  it("hash links equal values across formats and events, and differs across keys", () => {
    const a = new Redactor({ pii: true, defaultOperator: "hash", hashKey: HASH_KEY });
    const b = new Redactor({ pii: true, defaultOperator: "hash", hashKey: `${HASH_KEY}-other` });
    const dashed = text(a, `pay ${card}`);
    expect(dashed).toMatch(/^pay \[CARD:hmac:[0-9a-f]{16}\]$/);
    expect(text(a, "pay 4111 1111 1111 1111")).toBe(dashed);
    expect(text(a, "pay 4111111111111111")).toBe(dashed);
    expect(text(a, "pay 5555 5555 5555 4444")).not.toBe(dashed);
    expect(text(b, `pay ${card}`)).not.toBe(dashed);
    expect(text(a, "Mail Jane@Example.com")).toBe(text(a, "Mail jane@example.com"));
  });

  it("drop removes a match from text and deletes a field", () => {
    const dropping = new Redactor({ pii: true, defaultOperator: "drop", fields: [{ path: "payload.input.ssn", operator: "drop" }] });
    expect(text(dropping, `pay ${card} now`)).toBe("pay  now");
    const event = dropping.redactEvent(toolStart({ ssn: "123-45-6789", note: "see a@b.io" }));
    expect(event.payload).toEqual({ toolCallId: "call_1", input: { note: "see " } });
    expect(event.redactions).toEqual({ field: 1, email: 1 });
  });

  it("can differ per detector", () => {
    const mixed = new Redactor({ pii: true, hashKey: HASH_KEY, detectors: { email: { operator: "hash" }, card: { operator: "mask" } } });
    expect(text(mixed, `a@b.io ${card} 10.0.0.1`)).toMatch(/^\[EMAIL:hmac:[0-9a-f]{16}\] \*{4}-\*{4}-\*{4}-1111 \[IP\]$/);
  });
});

describe("field rules", () => {
  it("apply a path glob whatever the content", () => {
    const redactor = new Redactor({
      hashKey: HASH_KEY,
      fields: [
        { path: "payload.input.people.*.ssn", operator: "hash", kind: "ssn" },
        { path: "dob", operator: "drop" },
        { path: "payload.input.**.*_id", operator: "token", kind: "internal_id" },
      ],
    });
    const event = redactor.redactEvent(
      toolStart({
        people: [{ ssn: "no pattern at all", dob: "1990-01-01", name: "Ann" }, { ssn: 123456789 }],
        ssn: "not under people, kept",
        meta: { deep: { customer_id: 42, other: "x" } },
      }),
    );
    const input = (event.payload as { input: { people: Array<Record<string, unknown>> } }).input;
    expect(input.people[0]!.ssn).toMatch(/^\[SSN:hmac:[0-9a-f]{16}\]$/);
    expect(input.people[1]!.ssn).toMatch(/^\[SSN:hmac:[0-9a-f]{16}\]$/);
    expect(input.people[0]).not.toHaveProperty("dob");
    expect(input.people[0]!.name).toBe("Ann");
    expect(input).toMatchObject({ ssn: "not under people, kept", meta: { deep: { customer_id: "[INTERNAL_ID]", other: "x" } } });
    expect(event.redactions).toEqual({ ssn: 2, field: 1, internal_id: 1 });
  });

  it("reach model.params, name and tags, and take precedence over detectors", () => {
    const redactor = new Redactor({
      pii: true,
      fields: [
        { path: "model.params.user", operator: "drop" },
        { path: "tags.*", operator: "token", kind: "tag" },
      ],
    });
    const event = redactor.redactEvent(
      sampleEvent({
        name: "agent for bob@example.com",
        tags: ["a", "b"],
        model: { provider: "openai", name: "gpt", params: { user: "bob", temperature: 0, api_key: "sk-x", headers: { Authorization: "Bearer zz99zz99zz" } } },
      }),
    );
    expect(event.name).toBe("agent for [EMAIL]");
    expect(event.tags).toEqual(["[TAG]", "[TAG]"]);
    expect("model" in event && event.model.params).toEqual({ temperature: 0, api_key: "[SECRET]", headers: { Authorization: "[SECRET]" } });
    expect(EventSchema.safeParse(event).success).toBe(true);
  });

  it("keep the event valid when they hit fields the schema requires", () => {
    const redactor = new Redactor({
      fields: [
        { path: "content", operator: "drop" },
        { path: "role", operator: "drop" },
        { path: "payload.output", operator: "drop" },
        { path: "payload.reasoning.*.kind", operator: "token" },
      ],
    });
    const start = redactor.redactEvent(promptEvent("secret plan"));
    expect(start.payload).toMatchObject({ messages: [{ role: "[REDACTED]", content: null }] });
    expect(EventSchema.parse(start)).toBeTruthy();
    const end = redactor.redactEvent(
      sampleEvent({
        type: "llm.end",
        payload: {
          output: { text: "the answer", toolCalls: [{ id: "c1", name: "search", args: { q: "x" } }] },
          reasoning: [{ index: 0, kind: "reasoning", text: "hmm" }],
        },
      }),
    );
    expect(end.payload).toEqual({
      output: { text: "", toolCalls: [{ name: "[REDACTED]", args: null }] },
      reasoning: [{ index: 0, kind: "reasoning", text: "hmm" }],
    });
    expect(EventSchema.parse(end)).toBeTruthy();
  });
});

describe("custom detectors", () => {
  it("take a global RegExp or a function returning spans", () => {
    const redactor = new Redactor({
      pii: true,
      custom: [
        { name: "employee_id", pattern: /\bEMP-\d{6}\b/g },
        { name: "codename", pattern: (t) => [...t.matchAll(/Project \w+/g)].map((m) => ({ start: m.index, end: m.index + m[0].length })), operator: "drop" },
      ],
    });
    const { text: out, counts } = redactor.redactText("EMP-123456 works on Project Falcon with EMP-654321 (a@b.io)");
    expect(out).toBe("[EMPLOYEE_ID] works on  with [EMPLOYEE_ID] ([EMAIL])");
    expect(counts).toEqual({ employee_id: 2, codename: 1, email: 1 });
  });

  it("survive an empty match and fail closed on a bad span", () => {
    expect(text(new Redactor({ pii: true, custom: [{ name: "x", pattern: /x*/g }] }), "axxb")).toBe("a[X]b");
    const broken = new Redactor({ pii: true, custom: [{ name: "broken", pattern: () => [{ start: 0, end: 99 }] }] });
    expect(() => broken.redactText("short")).toThrowError(/custom detector "broken"/);
  });
});

describe("redactEvent", () => {
  const redactor = new Redactor({ pii: true });
  const messages = [
    { role: "system", content: "You are helpful." },
    { role: "user", content: [{ type: "text", text: "I am ann@example.com, card 5555 5555 5555 4444" }] },
    { role: "assistant", content: "", toolCalls: [{ id: "c1", name: "lookup", args: { email: "ann@example.com", ip: "10.1.2.3" } }] },
  ];
  const original = deepFreeze(
    sampleEvent({
      traceId: "ann@example.com",
      sessionId: "10.0.0.1",
      identity: { user: { id: "ann@example.com", tenantId: "t1" }, agent: { id: "a1", name: "Agent", version: "1.0.0" } },
      redactions: { email: 1 },
      payload: { messages },
    }),
  );
  const snapshot = structuredClone(original);
  const redacted = redactor.redactEvent(original);

  it("returns a new valid event and leaves the input as it was", () => {
    expect(redacted).not.toBe(original);
    expect(original).toEqual(snapshot);
    expect(EventSchema.parse(redacted)).toEqual(redacted);
  });

  it("counts what it replaced, merged with earlier counts, and never records the values", () => {
    expect(redacted.redactions).toEqual({ email: 3, card: 1, ip: 1 });
    const json = JSON.stringify(redacted.payload);
    expect(json).not.toMatch(/ann@example\.com|5555|10\.1\.2\.3/);
  });

  it("never touches ids, identity or the envelope", () => {
    const { payload: _a, redactions: _b, redactionDigests: _e, ...envelope } = redacted;
    const { payload: _c, redactions: _d, redactionDigests: _f, ...originalEnvelope } = original;
    expect(envelope).toEqual(originalEnvelope);
    expect(redacted.traceId).toBe("ann@example.com");
  });

  it("leaves redactions out when nothing was found, and usage and cost alone", () => {
    const clean = sampleEvent({
      type: "llm.end",
      usage: { inputTokens: 4111, outputTokens: 1111, totalTokens: 5222 },
      cost: { currency: "USD", input: 4111, output: 1111, total: 5222 },
      payload: { output: { text: "hi", toolCalls: [] } },
    });
    const out = redactor.redactEvent(clean);
    expect(out).toEqual(clean);
    expect(out).not.toHaveProperty("redactions");
  });

  it("has a payload shape for every event type of the schema", () => {
    const types = EventSchema.options.map((option) => option.shape.type.value);
    expect([...SHAPED_EVENT_TYPES].sort()).toEqual([...types].sort());
  });
});

describe("config", () => {
  const errorOf = (config: unknown): ValidationError => {
    try {
      new Redactor(config as RedactionConfig);
    } catch (error) {
      expect(error).toBeInstanceOf(ValidationError);
      return error as ValidationError;
    }
    throw new Error("config was accepted");
  };
  const pathsOf = (config: unknown) => errorOf(config).issues.map((issue) => issue.path);

  it("refuses hash without a key, naming the field that asks for it", () => {
    expect(pathsOf({ detectors: { email: { operator: "hash" } } })).toEqual(["detectors.email.operator"]);
    expect(pathsOf({ defaultOperator: "hash" })).toEqual(["defaultOperator"]);
    expect(pathsOf({ fields: [{ path: "a.b", operator: "hash" }] })).toEqual(["fields.0.operator"]);
    expect(pathsOf({ custom: [{ name: "x", pattern: /x/g, operator: "hash" }] })).toEqual(["custom.0.operator"]);
    expect(errorOf({ detectors: { email: { operator: "hash" } } }).message).toMatch(/hashKey/);
  });

  it("refuses unknown keys, naming them, at every level", () => {
    expect(errorOf({ pii: true, piii: true }).message).toMatch(/"piii"/);
    expect(errorOf({ defaultOperater: "mask" }).message).toMatch(/"defaultOperater"/);
    expect(errorOf({ detectors: { email: { operator: "mask", enable: false } } }).message).toMatch(/detectors\.email: .*"enable"/);
    expect(errorOf({ fields: [{ path: "a", operator: "drop", knd: "x" }] }).message).toMatch(/fields\.0: .*"knd"/);
    expect(errorOf({ custom: [{ name: "x", pattern: /x/g, operater: "drop" }] }).message).toMatch(/custom\.0: .*"operater"/);
    expect(pathsOf({ pii: "yes" })).toEqual(["pii"]);
  });

  it("names the offending field of anything else", () => {
    expect(pathsOf({ detectors: { email: { operator: "shred" } } })).toEqual(["detectors.email.operator"]);
    expect(pathsOf({ detectors: { emial: {} } })).toEqual(["detectors"]);
    expect(pathsOf({ detectors: { phone: { defaultCountry: "XX" } } })).toEqual(["detectors.phone.defaultCountry"]);
    expect(pathsOf({ hashKey: "short" })).toEqual(["hashKey"]);
    expect(pathsOf({ custom: [{ name: "x", pattern: /x/ }] })).toEqual(["custom.0.pattern"]);
    expect(pathsOf({ custom: [{ name: "email", pattern: /x/g }] })).toEqual(["custom.0.name"]);
    expect(pathsOf({ custom: [{ name: "Bad Name", pattern: /x/g }] })).toEqual(["custom.0.name"]);
    expect(pathsOf({ fields: [{ path: "payload..x", operator: "drop" }] })).toEqual(["fields.0.path"]);
    expect(pathsOf({ fields: [{ path: "**", operator: "drop" }] })).toEqual(["fields.0.path"]);
  });
});

// --- property tests: generated secrets and PII never survive, wherever they are put ---------------

interface Planted {
  /** The text put into the event. */
  text: string;
  /** What must not appear anywhere in the redacted event. */
  secrets: string[];
}

const chars = (alphabet: string, min: number, max = min) => fc.array(fc.constantFrom(...alphabet), { minLength: min, maxLength: max }).map((a) => a.join(""));
const DIGITS = "0123456789";
const UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const ALNUM = `${UPPER}abcdefghijklmnopqrstuvwxyz${DIGITS}`;
const B64URL = `${ALNUM}_-`;
/** Secret formats that are mostly letters: forcing one digit in keeps the arbitrary off the prose guard. */
const withDigit = (s: string, digit: string) => s.slice(0, -1) + digit;
const digit = fc.constantFrom(...DIGITS);
const plant = (value: string, shown = value): Planted => ({ text: shown, secrets: [value] });

function luhnComplete(body: string): string {
  let sum = 0;
  for (let i = 0; i < body.length; i++) {
    let d = Number(body[body.length - 1 - i]);
    if (i % 2 === 0) d = d * 2 > 9 ? d * 2 - 9 : d * 2;
    sum += d;
  }
  return body + ((10 - (sum % 10)) % 10);
}

const cardArb: fc.Arbitrary<Planted> = fc
  .tuple(
    fc.constantFrom(["4", 16], ["4", 13], ["4", 19], ["51", 16], ["2221", 16], ["34", 15], ["37", 15], ["6011", 16], ["35", 17], ["62", 18]),
    fc.string({ unit: digit, minLength: 18, maxLength: 18 }),
    fc.constantFrom("", " ", "-"),
  )
  .map(([[prefix, length], filler, sep]) => {
    const number = luhnComplete((prefix + filler).slice(0, Number(length) - 1));
    const shown = sep === "" ? number : number.match(/.{1,4}/g)!.join(sep);
    return { text: shown, secrets: [shown, number] };
  });

const IBAN_FORMATS: Array<[string, string]> = [
  ["DE", "n18"],
  ["GB", "a4n14"],
  ["FR", "n10c11n2"],
  ["NL", "a4n10"],
  ["ES", "n20"],
  ["IT", "a1n10c12"],
  ["BE", "n12"],
  ["CH", "n5c12"],
  ["PL", "n24"],
  ["NO", "n11"],
];
const bbanArb = (format: string) =>
  fc
    .tuple(
      ...[...format.matchAll(/([anc])(\d+)/g)].map(([, type, count]) => chars(type === "n" ? DIGITS : type === "a" ? UPPER : UPPER + DIGITS, Number(count))),
    )
    .map((parts) => parts.join(""));
function ibanCheckDigits(country: string, bban: string): string {
  const numeric = `${bban + country}00`.replace(/[A-Z]/g, (c) => String(c.charCodeAt(0) - 55));
  let remainder = 0;
  for (const c of numeric) remainder = (remainder * 10 + Number(c)) % 97;
  return String(98 - remainder).padStart(2, "0");
}
const ibanArb: fc.Arbitrary<Planted> = fc
  .constantFrom(...IBAN_FORMATS)
  .chain(([country, format]) => fc.tuple(fc.constant(country), bbanArb(format), fc.boolean()))
  .map(([country, bban, grouped]) => {
    const iban = country + ibanCheckDigits(country, bban) + bban;
    const shown = grouped ? iban.match(/.{1,4}/g)!.join(" ") : iban;
    return { text: shown, secrets: [shown, iban] };
  });

// A local part ending in `=`, `?`, `/`, `'` or a backtick is legal but unseen in practice; the
// detector leaves those out so `email=bob@x.io` keeps its key (the rest of such an address still goes).
const emailArb = fc
  .emailAddress()
  .filter((e) => /\w@/.test(e))
  .map((e) => plant(e));

const ssnArb = fc
  .tuple(
    fc.integer({ min: 1, max: 899 }).filter((n) => n !== 666),
    fc.integer({ min: 1, max: 99 }),
    fc.integer({ min: 1, max: 9999 }),
    fc.constantFrom("-", " "),
  )
  .map(([a, g, s, sep]) => plant([String(a).padStart(3, "0"), String(g).padStart(2, "0"), String(s).padStart(4, "0")].join(sep)));

const ipArb = fc
  .oneof(
    fc.ipV4(),
    fc.ipV6().filter((ip) => /[0-9a-f]/i.test(ip)),
  )
  .map((ip) => plant(ip));

const phoneArb = fc
  .tuple(
    fc.constantFrom("201", "212", "213", "305", "312", "415", "503", "617", "646", "702", "718", "917"),
    fc.integer({ min: 200, max: 999 }),
    fc.integer({ min: 0, max: 9999 }),
    fc.constantFrom("(a) e-n", "a-e-n", "+1 a e n", "a.e.n", "+1-a-e-n", "aen"),
  )
  .map(([area, exchange, line, format]) => {
    const n = String(line).padStart(4, "0");
    return { shown: format.replace("a", area).replace("e", String(exchange)).replace("n", n), digits: `${area}${exchange}${n}` };
  })
  .filter(({ digits }) => isValidPhoneNumber(digits, "US"))
  .map(({ shown, digits }) => ({ text: shown, secrets: [shown, digits] }));

const jwtArb = fc
  .tuple(chars(B64URL, 8, 40), chars(B64URL, 8, 120), chars(B64URL, 0, 86))
  .map(([header, body, signature]) => plant(`eyJ${header}.eyJ${body}.${signature}`));

const apiKeyArb: fc.Arbitrary<Planted> = fc.oneof(
  fc.tuple(chars(ALNUM, 48), digit).map(([s, d]) => plant(`sk-${withDigit(s, d)}`)),
  fc.tuple(chars(B64URL, 40, 156), digit).map(([s, d]) => plant(`sk-proj-${withDigit(s, d)}`)),
  fc.tuple(chars(B64URL, 93), digit).map(([s, d]) => plant(`sk-ant-api03-${withDigit(s, d)}AA`)),
  fc.tuple(fc.constantFrom("AKIA", "ASIA"), chars(UPPER + DIGITS, 16)).map(([p, s]) => plant(p + s)),
  fc.tuple(fc.constantFrom("ghp_", "gho_", "ghu_", "ghs_", "ghr_"), chars(ALNUM, 36)).map(([p, s]) => plant(p + s)),
  chars(`${ALNUM}_`, 82).map((s) => plant(`github_pat_${s}`)),
  fc.tuple(fc.constantFrom("xoxb", "xoxp", "xoxa", "xoxr"), chars(DIGITS, 10, 13), chars(ALNUM, 24)).map(([p, n, s]) => plant(`${p}-${n}-${s}`)),
  chars(B64URL, 35).map((s) => plant(`AIza${s}`)),
  fc.tuple(fc.constantFrom("sk_live_", "rk_live_", "sk_test_"), chars(ALNUM, 24, 99)).map(([p, s]) => plant(p + s)),
  fc.tuple(chars(`${ALNUM}-._~+/`, 8, 60), digit).map(([s, d]) => {
    const token = withDigit(s, d);
    return plant(token, `Bearer ${token}`);
  }),
  fc
    .tuple(fc.constantFrom("password=", "PASSWORD: ", "api_key=", '"secret": '), chars(`${ALNUM}!#%*+_-`, 8, 30))
    .map(([key, value]) => plant(value, key.startsWith('"') ? `${key}"${value}"` : key + value)),
);

const pemArb = fc
  .tuple(fc.constantFrom("", "RSA ", "EC ", "OPENSSH ", "ENCRYPTED "), fc.array(chars(`${ALNUM}+/`, 16, 64), { minLength: 1, maxLength: 6 }))
  .map(([label, lines]) => ({
    text: `-----BEGIN ${label}PRIVATE KEY-----\n${lines.join("\n")}\n-----END ${label}PRIVATE KEY-----`,
    secrets: lines,
  }));

const everyKind = fc.oneof(cardArb, ibanArb, emailArb, ssnArb, ipArb, phoneArb, jwtArb, apiKeyArb, pemArb);

/** Random text on both sides, kept apart by a space: glued text would make a different token. */
const inText = (planted: fc.Arbitrary<Planted>) =>
  fc
    .tuple(fc.string({ maxLength: 20 }), planted, fc.string({ maxLength: 20 }))
    // A value right after a business label (`FW 10.0.0.1`, `Order 2125550147`) is business text by
    // design, not personal data: random text that happens to end in one is not a miss.
    .filter(([before]) => !labelledAsBusiness(`${before} `, before.length + 1))
    .map(([before, p, after]) => ({ ...p, text: `${before} ${p.text} ${after}` }));

/** Put `text` somewhere in a JSON value: itself, in an object, in an array among other values. */
const nestIn = (text: string): fc.Arbitrary<unknown> =>
  fc.letrec<{ node: unknown }>((tie) => ({
    node: fc.oneof(
      { depthSize: "small", withCrossShrink: true },
      fc.constant(text),
      fc
        .tuple(fc.string({ maxLength: 8 }), tie("node"), fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 1 }), { maxKeys: 2 }))
        .map(([key, child, siblings]) => ({ ...siblings, [`k${key}`]: child })),
      fc.tuple(fc.array(fc.jsonValue({ maxDepth: 1 }), { maxLength: 2 }), tie("node")).map(([before, child]) => [...before, child]),
    ),
  })).node;

/** An event carrying all `texts`, each in a payload place chosen at random. */
const eventWith = (texts: string[]): fc.Arbitrary<AuditEvent> =>
  fc.tuple(fc.constantFrom("llm.start", "tool.start", "chain.start", "llm.end"), fc.tuple(...texts.map((t) => nestIn(t)))).map(([type, values]) => {
    switch (type) {
      case "llm.start": {
        const messages = values.map((content, i) =>
          i % 2 === 0 ? { role: "user", content } : { role: "assistant", content: "", toolCalls: [{ id: `c${i}`, name: "tool", args: { nested: content } }] },
        );
        return sampleEvent({ payload: { messages } });
      }
      case "llm.end":
        return sampleEvent({
          type: "llm.end",
          payload: { output: { text: texts.join("\n"), toolCalls: values.map((args, i) => ({ id: `c${i}`, name: "tool", args: { args } })) } },
        });
      case "chain.start":
        return sampleEvent({ type: "chain.start", model: undefined, payload: { inputs: { values } } });
      default:
        return toolStart(values);
    }
  });

function assertRedacted(redactor: Redactor, event: AuditEvent, planted: Planted[]): void {
  const redacted = redactor.redactEvent(event);
  const json = JSON.stringify(redacted);
  for (const { secrets } of planted) {
    for (const secret of secrets) {
      // Compare in JSON's own escaping, since that is the form being searched.
      expect(json, `${secret} survived in ${json}`).not.toContain(JSON.stringify(secret).slice(1, -1));
    }
  }
  expect(EventSchema.safeParse(redacted).success).toBe(true);
}

describe("property: no generated secret or PII survives redaction", () => {
  const redactor = new Redactor({ pii: true });
  const kinds: Array<[string, fc.Arbitrary<Planted>]> = [
    ["payment cards (Luhn-valid)", cardArb],
    ["IBANs (valid check digits)", ibanArb],
    ["e-mail addresses", emailArb],
    ["US SSNs", ssnArb],
    ["IPv4 and IPv6 addresses", ipArb],
    ["US phone numbers", phoneArb],
    ["JWTs", jwtArb],
    ["API keys, bearer tokens and password values", apiKeyArb],
    ["PEM private key blocks", pemArb],
  ];

  it.each(kinds)("%s, in random text at a random place", (_name, arb) => {
    fc.assert(
      fc.property(
        inText(arb).chain((planted) => eventWith([planted.text]).map((event) => ({ planted, event }))),
        ({ planted, event }) => assertRedacted(redactor, event, [planted]),
      ),
      { numRuns: 200 },
    );
  });

  it("every kind mixed in one event, with the hash operator", () => {
    const hashing = new Redactor({ pii: true, defaultOperator: "hash", hashKey: HASH_KEY });
    fc.assert(
      fc.property(
        fc
          .array(inText(everyKind), { minLength: 1, maxLength: 6 })
          .chain((planted) => eventWith(planted.map((p) => p.text)).map((event) => ({ planted, event }))),
        ({ planted, event }) => assertRedacted(hashing, event, planted),
      ),
      { numRuns: 200 },
    );
  });
});
