import { describe, expect, it } from "vitest";
import { pino } from "pino";
import { GENESIS_HASH, type AuditEvent, type EventOf, type LedgerRecord } from "@auditgraph/core";
import { InMemoryPolicyState, PolicySet, type PolicyState } from "@auditgraph/policy";
import { PolicyEngine } from "../src/policies.js";
import { memoryLedger } from "./memory-ledger.js";
import type { AppendedStream } from "../src/process.js";
import { trace } from "../../policy/test/events.js";

/** A state whose every call waits a turn, as a round trip to Redis does, and that notes the order of the adds. */
function slowState(): PolicyState & { adds: string[] } {
  const inner = new InMemoryPolicyState();
  const adds: string[] = [];
  const turn = () => new Promise((r) => setTimeout(r, 1));
  return {
    adds,
    add: async (key, eventId, amount) => {
      await turn();
      adds.push(`${key}|${eventId}`);
      return inner.add(key, eventId, amount);
    },
    get: async (key) => {
      await turn();
      return inner.get(key);
    },
  };
}

const policies = PolicySet.create([
  { kind: "function", id: "errors", version: "1", severity: "medium", action: "flag", function: "repeated-tool-errors", params: { errors: 2 } },
]);

describe("PolicyEngine: the users of a job evaluated side by side", () => {
  it("counts each trace's events in their order and appends the flags in the order of the job", async () => {
    const alice = trace({ user: { id: "alice", tenantId: "acme" } });
    const bob = trace({ user: { id: "bob", tenantId: "acme" } });
    // Interleaved as concurrent requests are in one tenant's stream.
    const events: AuditEvent[] = [
      alice.toolError("search"),
      bob.toolError("search"),
      bob.toolError("search"),
      alice.toolError("search"),
      alice.toolStart("search", { q: "again" }),
      bob.toolError("search"),
    ];
    const stream: AppendedStream = {
      streamId: "acme",
      records: events.map(
        (event, position) =>
          ({ position, streamId: "acme", recordedAt: new Date().toISOString(), prevHash: GENESIS_HASH, event, hash: GENESIS_HASH }) as LedgerRecord,
      ),
      appended: events.length,
      inHand: new Map(events.map((e) => [e.eventId, e])),
    };
    const state = slowState();
    const { ledger, records } = memoryLedger();
    const engine = new PolicyEngine({ policies, state, ledger, logger: pino({ level: "silent" }) });
    const raised = await engine.raise(stream);

    // Flagged: bob's 2nd and 3rd errors, alice's 2nd error, and alice's call after it.
    const concerned = records.map((r) => (r.event as EventOf<"policy.flag">).payload.concerns.eventId);
    expect(concerned).toEqual([events[2]!.eventId, events[3]!.eventId, events[4]!.eventId, events[5]!.eventId]);
    expect(raised?.flags).toBe(4);
    // Each trace's counter saw its events in the order of the job.
    const addsOf = (traceId: string) => state.adds.filter((a) => a.includes(traceId)).map((a) => a.split("|").at(-1));
    expect(addsOf(alice.traceId)).toEqual([events[0]!.eventId, events[3]!.eventId]);
    expect(addsOf(bob.traceId)).toEqual([events[1]!.eventId, events[2]!.eventId, events[5]!.eventId]);
  });
});
