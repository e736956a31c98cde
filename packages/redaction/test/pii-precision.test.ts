import { describe, expect, it } from "vitest";
import { Redactor } from "@auditgraph/redaction";
import { PII_CORPUS, scoreCorpus } from "./pii-corpus.js";
import { sampleEvent } from "../../core/test/fixtures.js";

describe("PII detectors on the labelled corpus (packages/redaction/test/fixtures/pii-corpus.json)", () => {
  it("holds at least 200 labelled strings, true and false cases, of several kinds and countries", () => {
    expect(PII_CORPUS.length).toBeGreaterThanOrEqual(200);
    const trueKinds = new Set(PII_CORPUS.filter((e) => e.label).map((e) => e.kind));
    const falseKinds = new Set(PII_CORPUS.filter((e) => !e.label).map((e) => e.kind));
    for (const kind of ["email", "phone", "card", "iban", "ip", "ssn"]) expect(trueKinds).toContain(kind);
    for (const kind of ["invoice", "order", "tracking", "version", "sku", "date", "price", "uuid", "hash", "postal"]) expect(falseKinds).toContain(kind);
    // Phone numbers and IBANs of several countries.
    const prefixes = new Set(PII_CORPUS.filter((e) => e.label && e.kind === "phone" && e.text.includes("+")).map((e) => /\+(\d{1,2})/.exec(e.text)?.[1]));
    expect(prefixes.size).toBeGreaterThanOrEqual(10);
    const ibanCountries = new Set(PII_CORPUS.filter((e) => e.label && e.kind === "iban").map((e) => /[A-Z]{2}(?=\d\d)/.exec(e.text)?.[0]));
    expect(ibanCountries.size).toBeGreaterThanOrEqual(10);
  });

  it("precision and recall are both at least 0.95 (a quality gate; `npm run bench:pii` prints them)", () => {
    const score = scoreCorpus();
    expect(score.precision, `false positives: ${JSON.stringify(score.falsePositives.map((e) => e.text))}`).toBeGreaterThanOrEqual(0.95);
    expect(score.recall, `missed: ${JSON.stringify(score.falseNegatives.map((e) => e.text))}`).toBeGreaterThanOrEqual(0.95);
  });
});

describe("ordinary business text is neither redacted nor counted", () => {
  const cases = [
    "Invoice 2026-000123",
    "version 10.2.3.4",
    "Rechnung Nr. 2026-004711",
    "SKU 400-1234-567",
    "catalog 600-12-3456",
    "release 7.1.0.2-beta",
    "Your order 9012-3456-78 shipped",
  ];
  for (const config of [{}, { pii: true }]) {
    it.each(cases)(`%s, with Redactor(${JSON.stringify(config)})`, (text) => {
      expect(new Redactor(config).redactText(text)).toEqual({ text, counts: {} });
    });
  }

  it("while the same digits written as contact data still are", () => {
    const redactor = new Redactor({ pii: true });
    expect(redactor.redactText("call 202-600-0123").counts).toEqual({ phone: 1 });
    expect(redactor.redactText("client 10.2.3.4 connected").counts).toEqual({ ip: 1 });
    expect(redactor.redactText("phone: (415) 555-2671, invoice 2026-000123").text).toBe("phone: [PHONE], invoice 2026-000123");
  });
});

describe("redactionDigests", () => {
  const emailEvent = (text: string) => sampleEvent({ type: "llm.start", payload: { messages: [{ role: "user", content: text }] } });

  it("lists one keyed digest per distinct value, equal across events of one redactor, never the value", () => {
    const redactor = new Redactor({ pii: true });
    const a = redactor.redactEvent(emailEvent("mail ann@example.com or ann@example.com, bo@example.org"));
    const b = redactor.redactEvent(emailEvent("again: ANN@example.com"));
    expect(a.redactions).toEqual({ email: 3 });
    expect(a.redactionDigests?.email).toHaveLength(2);
    for (const digest of a.redactionDigests!.email!) expect(digest).toMatch(/^[0-9a-f]{16}$/);
    // Normalised before hashing: the upper-cased address is the same value.
    expect(b.redactionDigests?.email).toEqual([a.redactionDigests!.email![0]]);
    expect(JSON.stringify([a.redactionDigests, b.redactionDigests])).not.toMatch(/example/);
  });

  it("are keyed per process without a hashKey (not comparable with guesses elsewhere) and by the hashKey with one", () => {
    const text = "mail ann@example.com";
    const one = new Redactor({ pii: true }).redactEvent(emailEvent(text)).redactionDigests;
    const other = new Redactor({ pii: true }).redactEvent(emailEvent(text)).redactionDigests;
    expect(one).not.toEqual(other);
    const keyed = { pii: true, hashKey: "0123456789abcdef0123", defaultOperator: "hash" } as const;
    const withKey = new Redactor(keyed).redactEvent(emailEvent(text));
    expect(new Redactor(keyed).redactEvent(emailEvent(text)).redactionDigests).toEqual(withKey.redactionDigests);
    // The hash operator's token carries the same digest.
    expect(JSON.stringify(withKey.payload)).toContain(`[EMAIL:hmac:${withKey.redactionDigests!.email![0]}]`);
  });
});
