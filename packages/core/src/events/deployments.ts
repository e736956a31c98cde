import { z } from "zod";
import { FIXED, KEEP, STRING, object, optional } from "./hints.js";
import { id, name, nonEmpty, systemEnvelope, type EventTypeIn, type PayloadRedaction } from "./common.js";

// Deployments: agent and model versions rolled out or back (the graph's `deployments` projection).

/** The environment a deployment without one is in. */
export const DEFAULT_ENVIRONMENT = "production";

/** What every deployment says besides its target. */
const deploymentFields = {
  action: z.enum(["rollout", "rollback"]),
  /** Absent: `DEFAULT_ENVIRONMENT`. */
  environment: name.optional(),
  /** The version live before this one, when the caller knows it (the graph links the previous deployment anyway). */
  previousVersion: name.optional(),
  reason: z.string().min(1).optional(),
  /** The operator or pipeline that deployed (an operator id, not a user's). */
  by: nonEmpty.optional(),
};

/**
 * An agent version or a model version rolled out (or rolled back to) in an environment, by an
 * operator or a pipeline: no user asked for it, so no identity. `version` is the version live
 * after the event, a rollback's included, so "which version was live at T" is the latest
 * deployment before T. Events are appended, never edited: a rollback is a new deployment.
 */
export const DeploymentEventSchema = z.object({
  ...systemEnvelope,
  type: z.literal("deployment"),
  payload: z.discriminatedUnion("target", [
    z.object({ target: z.literal("agent"), agentId: id, agentName: name.optional(), version: name, ...deploymentFields }),
    z.object({
      target: z.literal("model"),
      /** As the model's events name it: `ModelVersion` (provider, name), with the served `version`. */
      provider: name,
      name,
      version: name,
      ...deploymentFields,
    }),
  ]),
});

export const DEPLOYMENT_EVENTS = [DeploymentEventSchema] as const;
export type DeploymentEventType = EventTypeIn<typeof DEPLOYMENT_EVENTS>;

export const DEPLOYMENT_REDACTION = {
  // Ids and versions key the graph's nodes: a rule rewriting them would deploy something else.
  deployment: object({
    target: FIXED,
    agentId: optional(KEEP),
    agentName: optional(STRING),
    provider: optional(KEEP),
    name: optional(KEEP),
    version: FIXED,
    action: FIXED,
    environment: optional(KEEP),
    previousVersion: optional(KEEP),
    reason: optional(STRING),
    by: optional(STRING),
  }),
} satisfies PayloadRedaction<DeploymentEventType>;
