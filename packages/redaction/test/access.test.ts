// The `access` event (who read what through the console) is left as recorded by redaction: its ids,
// enums, the reader's name and client, the reader's IP. The record of a read must not be rewritten,
// and no audited user's content is in it. (Its schema is tested in packages/core/test/access.test.ts.)
import { describe, expect, it } from "vitest";
import { accessEvent } from "../../core/test/fixtures.js";
import { Redactor } from "../src/index.js";

describe("the access event", () => {
  it("is left as recorded by redaction, with every detector on", () => {
    const event = accessEvent();
    const redactor = new Redactor({ pii: true });
    expect(redactor.redactEvent(event)).toEqual(event);
  });
});
