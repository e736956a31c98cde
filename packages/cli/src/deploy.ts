import { z } from "zod";
import { AuditgraphError, DEFAULT_ENVIRONMENT, EventSchema, SCHEMA_VERSION, newEventId, parseWith, streamIdFor, type EventOf } from "@auditgraph/core";
import { Graph } from "@auditgraph/graph";
import type { Config } from "./config.js";
import { openLedger } from "./ledger.js";

const text = (what: string) => z.string().trim().min(1, `must be a non-empty ${what}`);

/** Keyed by the options' flags, so that an error names the flag to fix. */
export const DeployArgsSchema = z
  .object({
    "--tenant": text("tenant id"),
    "--agent": text("agent id").optional(),
    "--agent-version": text("agent version").optional(),
    "--model": z
      .string()
      .trim()
      .regex(/^[^/\s]+\/\S.*$/, "must be provider/name, e.g. openai/gpt-4o")
      .optional(),
    "--model-version": text("model version (the served one, e.g. gpt-4o-2024-08-06)").optional(),
    "--rollback": z.boolean().default(false),
    "--env": text("environment").default(DEFAULT_ENVIRONMENT),
    "--reason": text("reason").optional(),
    "--by": text("operator id").optional(),
  })
  .superRefine((args, ctx) => {
    const issue = (flag: string, message: string) => ctx.addIssue({ code: "custom", path: [flag], message });
    if (args["--agent"] && args["--model"]) issue("--model", "give --agent or --model, not both: one deployment deploys one thing");
    else if (!args["--agent"] && !args["--model"])
      issue("--agent", "give --agent <id> with --agent-version <v>, or --model <provider/name> with --model-version <v>");
    else if (args["--agent"]) {
      if (!args["--agent-version"]) issue("--agent-version", "is required with --agent: the version rolled out (or rolled back to)");
      if (args["--model-version"]) issue("--model-version", "goes with --model, not --agent");
    } else {
      if (!args["--model-version"]) issue("--model-version", "is required with --model: the served version rolled out (or rolled back to)");
      if (args["--agent-version"]) issue("--agent-version", "goes with --agent, not --model");
    }
  });

export interface DeployResult {
  eventId: string;
  streamId: string;
  position: number;
  target: "agent" | "model";
  version: string;
  action: "rollout" | "rollback";
  environment: string;
}

export interface DeployOptions {
  tenant?: string;
  agent?: string;
  agentVersion?: string;
  model?: string;
  modelVersion?: string;
  rollback?: boolean;
  env?: string;
  reason?: string;
  by?: string;
}

/**
 * Records a deployment: an agent version or a model version rolled out, or rolled back to, in an
 * environment. The `deployment` event is appended to the tenant's ledger stream first (the
 * deployment is on record whatever happens next), then projected, so the graph can say which
 * version was live when an output was produced. A rollback names the version it goes back to:
 * that version is live from then on, and the graph links each deployment to the one before it.
 */
export async function recordDeployment(config: Config, given: DeployOptions, print: (line: string) => void = console.log): Promise<DeployResult> {
  const args = parseWith(
    DeployArgsSchema,
    {
      "--tenant": given.tenant,
      "--agent": given.agent,
      "--agent-version": given.agentVersion,
      "--model": given.model,
      "--model-version": given.modelVersion,
      "--rollback": given.rollback ?? false,
      "--env": given.env,
      "--reason": given.reason,
      "--by": given.by,
    },
    "deploy arguments",
  );
  const tenantId = args["--tenant"];
  const action = args["--rollback"] ? "rollback" : "rollout";
  const common = {
    action,
    environment: args["--env"],
    ...(args["--reason"] ? { reason: args["--reason"] } : {}),
    ...(args["--by"] ? { by: args["--by"] } : {}),
  } as const;
  const model = args["--model"];
  const slash = model?.indexOf("/") ?? -1;
  const payload = model
    ? { target: "model" as const, provider: model.slice(0, slash), name: model.slice(slash + 1), version: args["--model-version"]!, ...common }
    : { target: "agent" as const, agentId: args["--agent"]!, version: args["--agent-version"]!, ...common };

  const eventId = newEventId();
  const event = parseWith(
    EventSchema,
    {
      eventId,
      schemaVersion: SCHEMA_VERSION,
      type: "deployment",
      occurredAt: new Date().toISOString(),
      // A deployment is a run of its own: no agent trace asked for it.
      traceId: eventId,
      runId: eventId,
      parentRunId: null,
      sessionId: null,
      tenantId,
      payload,
    },
    "deployment event",
  ) as EventOf<"deployment">;

  const streamId = streamIdFor(tenantId);
  const ledger = await openLedger(config);
  const record = await ledger
    .append(streamId, [event])
    .then((result) => result.records[0]!)
    .finally(() => ledger.close?.());

  const graph = new Graph(config.neo4j);
  try {
    await graph.migrate();
    await graph.project([{ ...record, event }]);
  } catch (error) {
    throw new AuditgraphError(
      "AUDITGRAPH_E_DEPLOYMENT_NOT_PROJECTED",
      `the deployment is recorded (event ${eventId}, stream ${streamId}) but could not be projected into the graph: ${(error as Error).message}. It is in the ledger, which the graph is projected from (the worker's catch-up, or a rebuild, brings it in); do not deploy again, that would record a second deployment`,
    );
  } finally {
    await graph.close();
  }

  const what = payload.target === "model" ? `model ${model} version ${payload.version}` : `agent ${payload.agentId} version ${payload.version}`;
  print(`${action === "rollback" ? "rolled back to" : "rolled out"} ${what} in ${common.environment} for tenant ${tenantId}`);
  print(`  deployment event ${eventId} appended to stream ${streamId} at position ${record.position} (${record.recordedAt})`);
  return { eventId, streamId, position: record.position, target: payload.target, version: payload.version, action, environment: common.environment };
}
