import { describe, expect, it } from "vitest";
import { contentFree, unprojectable } from "../src/projection-dead-letter.js";

/** Which graph errors set a record aside (the rest are retried), and what of the graph's message is kept. */
describe("unprojectable", () => {
  const neo = (code: string, message = "x", retriable = false) => Object.assign(new Error(message), { code, retriable });

  it("takes errors of the record's data, not outages, transient errors or the projection's own bugs", () => {
    expect(unprojectable(neo("Neo.DatabaseError.Statement.ExecutionFailed"))?.code).toBe("Neo.DatabaseError.Statement.ExecutionFailed");
    expect(unprojectable(neo("Neo.ClientError.Statement.TypeError"))).toBeDefined();
    expect(unprojectable(neo("Neo.ClientError.Schema.ConstraintValidationFailed"))).toBeDefined();
    for (const code of [
      "Neo.TransientError.Transaction.DeadlockDetected",
      "ServiceUnavailable",
      "SessionExpired",
      "Neo.ClientError.Security.Unauthorized",
      "Neo.ClientError.Statement.SyntaxError",
      "Neo.ClientError.Statement.ParameterMissing",
      "Neo.DatabaseError.General.UnknownError",
    ])
      expect(unprojectable(neo(code)), code).toBeUndefined();
    expect(unprojectable(neo("Neo.ClientError.Statement.TypeError", "x", true))).toBeUndefined();
    expect(unprojectable(new Error("plain"))).toBeUndefined();
  });

  it("keeps the first sentence, the index and the size, never a quoted value", () => {
    const message =
      "Property value is too large to index, please see index documentation for limitations. Index: Index( id=39, name='trace_tenant_key', type='RANGE', schema=(:Trace {tenantId, id}), indexProvider='range-1.0' ), element id: 4:abc:191, property size: 40024.";
    expect(contentFree(message)).toBe(
      "Property value is too large to index, please see index documentation for limitations.; index trace_tenant_key; property size 40024",
    );
    const typed = 'Property values can only be of primitive types or arrays thereof. Encountered: Map{secret -> String("card 4111")}.';
    expect(contentFree(typed)).toBe("Property values can only be of primitive types or arrays thereof.");
    expect(contentFree(`no sentence end ${"x".repeat(500)}`)).toHaveLength(200);
  });
});
