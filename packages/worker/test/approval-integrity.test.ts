import { describe, expect, it } from "vitest";
import { holdViolation, type HoldEvidence } from "../src/approval-integrity.js";

// The rule the worker and the `approval-integrity` investigation share, case by case (times: ISO, worker's for the decision and the end).
const t = (s: number) => new Date(Date.UTC(2026, 0, 1, 12, 0, s)).toISOString();
const hold = (over: Partial<HoldEvidence> = {}): HoldEvidence => ({
  holdId: "run-1:review",
  escalationId: "e",
  deadline: t(30),
  defaultDecision: "deny",
  decision: null,
  ...over,
});

describe("holdViolation", () => {
  it("lets a run go after an allow in time, or after the deadline when the default is allow", () => {
    expect(holdViolation(hold({ decision: { decision: "allow", at: t(10) } }), t(11))).toBeUndefined();
    expect(holdViolation(hold({ defaultDecision: "allow" }), t(31))).toBeUndefined();
    // A deny that came too late found the agent gone with its default allow.
    expect(holdViolation(hold({ defaultDecision: "allow", decision: { decision: "deny", at: t(40) } }), t(41))).toBeUndefined();
  });

  it("names a run that went without an allow, after a deny, or after the deadline", () => {
    expect(holdViolation(hold(), t(10))).toBe("no-decision");
    expect(holdViolation(hold({ deadline: null }), t(100))).toBe("no-decision");
    // It ran before the allow was recorded: it did not wait for it.
    expect(holdViolation(hold({ decision: { decision: "allow", at: t(10) } }), t(9))).toBe("no-decision");
    expect(holdViolation(hold({ decision: { decision: "deny", at: t(10) } }), t(11))).toBe("after-deny");
    expect(holdViolation(hold({ deadline: null, decision: { decision: "deny", at: t(10) } }), t(11))).toBe("after-deny");
    expect(holdViolation(hold(), t(31))).toBe("after-deadline");
    // An allow after the deadline is too late: the default (deny) was taken.
    expect(holdViolation(hold({ decision: { decision: "allow", at: t(40) } }), t(41))).toBe("after-deadline");
    // An older agent's hold: no default recorded, so nothing allowed it at the deadline.
    expect(holdViolation(hold({ defaultDecision: null }), t(31))).toBe("after-deadline");
  });
});
