import { z } from "zod";
import { ESCALATION_STATES, parseWith, type EscalationState, type EscalationView } from "@auditgraph/core";
import { redisClient } from "@auditgraph/policy";
import { Graph } from "@auditgraph/graph";
import {
  formatDuration,
  listEscalations,
  readEscalation,
  timeLeftOf,
  transitionEscalation,
  type EscalationListing,
  type TransitionResult,
} from "@auditgraph/worker";
import type { Config } from "./config.js";
import { openLedger } from "./ledger.js";

/** The lifecycle's verbs, as the CLI names them, and the state each moves to. */
export const ESCALATION_VERBS = { ack: "acknowledged", resolve: "resolved", dismiss: "dismissed", reopen: "open" } as const satisfies Record<
  string,
  EscalationState
>;
export type EscalationVerb = keyof typeof ESCALATION_VERBS;

const text = (what: string) => z.string().trim().min(1, `must be a non-empty ${what}`);

/** Keyed by the options' flags, so that an error names the flag to fix. */
export const TransitionArgsSchema = z.object({
  "<id>": z.uuidv7("must be an escalation id (a UUIDv7, as `escalations list` shows it)"),
  "--by": text("reviewer id"),
  "--name": text("reviewer name").optional(),
  "--reason": text("reason"),
  "--tenant": text("tenant id").optional(),
  "--decision": z.enum(["allow", "deny"]).optional(),
});

export interface TransitionOptions {
  by?: string;
  name?: string;
  reason?: string;
  tenant?: string;
  decision?: string;
  json?: boolean;
}

/**
 * `auditgraph escalations ack|resolve|dismiss|reopen <id>`: appends the `escalation.transition`
 * event (reviewer and reason) to the tenant's ledger stream, then projects it. The state is the
 * ledger's fold; a move the lifecycle does not allow is refused before anything is appended.
 */
export async function transitionCommand(
  config: Config,
  verb: EscalationVerb,
  id: string,
  given: TransitionOptions,
  print: (line: string) => void = console.log,
): Promise<TransitionResult> {
  const args = parseWith(
    TransitionArgsSchema,
    { "<id>": id, "--by": given.by, "--name": given.name, "--reason": given.reason, "--tenant": given.tenant, "--decision": given.decision },
    `escalations ${verb} arguments`,
  );
  const ledger = await openLedger(config);
  const graph = new Graph(config.neo4j);
  // Connects on first use: only an escalation about a held call needs Redis (to release the call).
  const redis = redisClient(config.redis, { lazyConnect: true, maxRetriesPerRequest: 2 });
  try {
    await graph.migrate();
    const result = await transitionEscalation(
      ledger,
      graph,
      {
        escalationId: args["<id>"],
        to: ESCALATION_VERBS[verb],
        reviewer: { id: args["--by"], ...(args["--name"] ? { name: args["--name"] } : {}) },
        reason: args["--reason"],
        ...(args["--tenant"] ? { tenantId: args["--tenant"] } : {}),
        ...(args["--decision"] ? { holdDecision: args["--decision"] } : {}),
      },
      { redis },
    );
    const p = result.event.payload;
    if (given.json)
      print(JSON.stringify({ event: result.event, position: result.record.position, state: result.view.state, projected: result.projected }, null, 2));
    else {
      print(`escalation ${p.escalationId}: ${p.from} -> ${p.to} by ${p.reviewer.id}`);
      print(`  escalation.transition event ${result.event.eventId} appended to stream ${result.record.streamId} at position ${result.record.position}`);
      const hold = result.hold;
      if (hold?.published)
        print(
          hold.published.status === "too-late"
            ? `  hold ${hold.holdId}: too late, the agent stopped waiting and took its rule's default`
            : `  hold ${hold.holdId}: ${hold.published.decision} (${hold.published.status})`,
        );
    }
    if (result.hold?.error)
      console.error(
        `auditgraph: the decision (${result.hold.decision}) is recorded, but the held call could not be told (${result.hold.error}); it takes its rule's default when its timeout passes.`,
      );
    if (!result.projected)
      console.error(
        `auditgraph: the transition is recorded but could not be projected into the graph (${result.projectionError}); the worker's catch-up or a rebuild brings it in. Do not repeat it.`,
      );
    return result;
  } finally {
    redis.disconnect();
    await graph.close();
    await ledger.close?.();
  }
}

/** What a held call's line says about its wait: `time left 4m 10s (then deny)`, `expired (deny taken)`, or nothing. */
export function timeLeftText(timeLeftMs: number | null, defaultDecision: string | null | undefined): string {
  if (timeLeftMs === null) return "";
  if (timeLeftMs <= 0) return `expired${defaultDecision ? ` (${defaultDecision} taken)` : ""}`;
  return `time left ${formatDuration(timeLeftMs)}${defaultDecision ? ` (then ${defaultDecision})` : ""}`;
}

const StateArgSchema = z.object({
  "--state": z
    .string()
    .transform((s) => s.split(",").map((x) => x.trim()))
    .pipe(z.array(z.union([z.enum(ESCALATION_STATES), z.literal("all")])).min(1))
    .optional(),
  "--tenant": text("tenant id").optional(),
  "--limit": z.coerce.number().int().positive().max(10_000).default(100),
});

/** `auditgraph escalations list`: the queue (open and acknowledged) by default, most severe and oldest first. */
export async function listCommand(
  config: Config,
  given: { tenant?: string; state?: string; limit?: string; json?: boolean },
  print: (line: string) => void = console.log,
): Promise<EscalationListing[]> {
  const args = parseWith(StateArgSchema, { "--state": given.state, "--tenant": given.tenant, "--limit": given.limit }, "escalations list arguments");
  const states = args["--state"]?.includes("all") ? [...ESCALATION_STATES] : (args["--state"] as EscalationState[] | undefined);
  const graph = new Graph(config.neo4j);
  try {
    const rows = await listEscalations(graph, { tenantId: args["--tenant"] ?? null, limit: args["--limit"], ...(states ? { states } : {}) });
    if (given.json) print(JSON.stringify(rows, null, 2));
    else if (rows.length === 0) print("(no escalations)");
    else
      for (const r of rows)
        print(
          `${r.id}  ${r.state.padEnd(12)} ${r.severity.padEnd(8)} ${r.tenantId}  ${r.policyId ?? "?"}  opened ${r.openedAt ?? "?"}${r.lastReviewer ? `  last by ${r.lastReviewer}` : ""}` +
            (r.timeLeftMs !== null ? `  held call: ${timeLeftText(r.timeLeftMs, r.defaultDecision)}` : ""),
        );
    return rows;
  } finally {
    await graph.close();
  }
}

/** `auditgraph escalations show <id>`: the escalation and every transition, from the ledger (the graph may lag). */
export async function showCommand(
  config: Config,
  id: string,
  given: { tenant?: string; json?: boolean },
  print: (line: string) => void = console.log,
): Promise<EscalationView & { deadline: string | null; timeLeftMs: number | null }> {
  const escalationId = parseWith(TransitionArgsSchema.shape["<id>"], id, "escalations show <id>");
  const ledger = await openLedger({ ...config, signingKeyPath: undefined });
  try {
    const folded = await readEscalation(ledger, escalationId, given.tenant);
    const deadline = folded.opened.payload.deadline ?? null;
    const view = { ...folded, deadline, timeLeftMs: timeLeftOf(deadline, folded.state) };
    if (given.json) print(JSON.stringify(view, null, 2));
    else {
      const o = view.opened.payload;
      print(`escalation ${view.escalationId} (tenant ${view.tenantId}): ${view.state}`);
      print(`  ${o.severity} · policy ${o.policyId}@${o.policyVersion} · ${o.reason}`);
      print(
        `  concerns ${o.concerns.kind} ${o.concerns.eventId ?? `run ${o.concerns.runId}`} in trace ${o.concerns.traceId}; flags ${o.flagEventIds.join(", ")}`,
      );
      print(`  opened ${view.opened.occurredAt}${o.holdId ? `; holds call ${o.holdId} (resolve allows it, dismiss denies it)` : ""}`);
      if (deadline)
        print(
          `  deadline ${deadline}, default ${o.defaultDecision ?? "?"}${view.timeLeftMs !== null ? `: ${timeLeftText(view.timeLeftMs, o.defaultDecision)}` : ""}`,
        );
      for (const { event, applied } of view.transitions) {
        const p = event.payload;
        print(`  ${event.occurredAt}  ${p.from} -> ${p.to} by ${p.reviewer.id}${applied ? "" : " (not applied: stale)"}: ${p.reason}`);
      }
    }
    return view;
  } finally {
    await ledger.close?.();
  }
}
