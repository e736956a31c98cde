// recordAccess below the console: the ledger first, the graph after (a graph that fails leaves the
// record in place), a bad input refused before anything is appended; and the worker's policies
// never raise a flag on an access event, even a rule that names the type.
import { describe, expect, it } from "vitest";
import { pino } from "pino";
import { streamIdFor, type AuditEvent, type PlainRecord } from "@auditgraph/core";
import { InMemoryPolicyState, PolicySet } from "@auditgraph/policy";
import { AccessInputError, recordAccess, type AccessInput } from "../src/access.js";
import { PolicyEngine } from "../src/policies.js";
import { memoryLedger } from "./memory-ledger.js";
import type { AppendedStream } from "../src/process.js";

const input: AccessInput = {
  tenantId: "acme",
  actor: { id: "rev-1", name: "Rita", via: "oidc" },
  action: "escalation.decide",
  subject: { escalationId: "019ad3c4-0000-7000-8000-000000000001" },
  from: { ip: "203.0.113.7" },
};

describe("recordAccess", () => {
  it("appends to the tenant's stream before projecting, and reports a graph that failed without losing the record", async () => {
    const { ledger, records } = memoryLedger();
    const order: string[] = [];
    const graph = {
      project: async (given: PlainRecord[]) => {
        order.push(`project ${given.length} after ${records.length} appended`);
        throw new Error("neo4j is down");
      },
    };
    const result = await recordAccess(ledger, graph, input);
    expect(order).toEqual(["project 1 after 1 appended"]);
    expect(records).toHaveLength(1);
    expect(records[0]!.streamId).toBe(streamIdFor("acme"));
    expect(records[0]!.event).toEqual(result.event);
    expect(result).toMatchObject({ projected: false, projectionError: "neo4j is down" });
    // The server's clock: a caller cannot give the time.
    await expect(recordAccess(ledger, undefined, { ...input, occurredAt: "2020-01-01T00:00:00Z" } as never)).rejects.toThrow(/occurredAt/);
  });

  it("refuses a bad input with its code and the field, appending nothing", async () => {
    const { ledger, records } = memoryLedger();
    const refusals = await Promise.all(
      [
        { ...input, from: { ip: "" } },
        { ...input, actor: { id: "rev-1", via: "magic" } },
        { ...input, tenantId: undefined },
      ].map((bad) =>
        recordAccess(ledger, undefined, bad as never).then(
          () => undefined,
          (error: unknown) => error,
        ),
      ),
    );
    expect(refusals.every((e) => e instanceof AccessInputError && e.code === "AUDITGRAPH_E_ACCESS_INVALID")).toBe(true);
    expect(refusals.map((e) => (e as AccessInputError).issues.map((i) => i.path))).toEqual([["from.ip"], ["actor.via"], ["tenantId"]]);
    expect(records).toEqual([]);
  });

  it("keeps the first 512 characters of a long user agent rather than refusing the read", async () => {
    const { ledger } = memoryLedger();
    const { event } = await recordAccess(ledger, undefined, { ...input, from: { ip: "::1", userAgent: "x".repeat(2_000) } });
    expect(event.payload.from.userAgent).toBe("x".repeat(512));
  });

  it("records no key for what was not given (a header not sent, a reader without a name)", async () => {
    const { ledger } = memoryLedger();
    const { event } = await recordAccess(ledger, undefined, {
      ...input,
      actor: { id: "t-1", name: undefined, via: "token" },
      subject: { traceId: "t", userId: undefined },
      from: { ip: "::1", userAgent: undefined },
    });
    expect(event.payload).toStrictEqual({ actor: { id: "t-1", via: "token" }, action: input.action, subject: { traceId: "t" }, from: { ip: "::1" } });
  });
});

describe("policies and access events", () => {
  it("raise no flag on an access event, even from a rule on the access type that matches it", async () => {
    const policies = PolicySet.create([
      {
        kind: "rule",
        id: "readers",
        version: "1",
        severity: "critical",
        action: "escalate",
        eventTypes: ["access"],
        when: { field: "payload.actor.id", op: "exists" },
      },
    ]);
    const { ledger, records: kept } = memoryLedger();
    const { event } = await recordAccess(ledger, undefined, input);
    // The rule does match the event: only the engine's refusal to evaluate system events keeps it quiet.
    expect(await policies.evaluate(event as AuditEvent, { state: new InMemoryPolicyState() })).toHaveLength(1);
    const { ledger: flags, records } = memoryLedger();
    const engine = new PolicyEngine({ policies, state: new InMemoryPolicyState(), ledger: flags, logger: pino({ level: "silent" }) });
    const stream: AppendedStream = { streamId: kept[0]!.streamId, records: kept, appended: 1, inHand: new Map([[event.eventId, event as AuditEvent]]) };
    const raised = await engine.raise(stream);
    expect(records).toEqual([]);
    expect(raised?.flags ?? 0).toBe(0);
  });
});
