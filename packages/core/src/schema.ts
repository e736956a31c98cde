import { z } from "zod";
import { v7 as uuidv7 } from "uuid";
import type { Shape } from "./events/hints.js";
import type {
  CostSchema,
  DocumentSchema,
  ErrorInfoSchema,
  IdentitySchema,
  MessageSchema,
  ModelSchema,
  ReasoningStepSchema,
  ToolCallRequestSchema,
  ToolDefinitionSchema,
  UsageSchema,
} from "./events/common.js";
import { ACCESS_EVENTS, ACCESS_REDACTION } from "./events/access.js";
import { DEPLOYMENT_EVENTS, DEPLOYMENT_REDACTION } from "./events/deployments.js";
import { SHARD_EVENTS, SHARD_REDACTION } from "./events/shards.js";
import { ERASURE_EVENTS, ERASURE_REDACTION } from "./events/erasure.js";
import {
  type ConcernKindSchema,
  EscalationNotificationEventSchema,
  EscalationOpenedEventSchema,
  EscalationTransitionEventSchema,
  POLICY_REDACTION,
  type PolicyActionSchema,
  type PolicyFindingSchema,
  PolicyFlagEventSchema,
  type SeveritySchema,
} from "./events/policy.js";
import { RETRIEVAL_EVENTS, RETRIEVAL_REDACTION } from "./events/retrievals.js";
import { RUN_EVENTS, RUN_REDACTION } from "./events/runs.js";
import { TOOL_EVENTS, TOOL_REDACTION } from "./events/tools.js";
import { TRACE_EVENTS, TRACE_REDACTION } from "./events/traces.js";

// The event schema, assembled from its families (`events/<family>.ts`, one per projection family
// of the graph: each holds its events' schemas, their redaction hints and their upcasters), and
// the types every package reads events with.

export {
  SCHEMA_VERSION,
  MAX_ID_LENGTH,
  MAX_NAME_LENGTH,
  MAX_DIGESTS_PER_KIND,
  UserIdentitySchema,
  AgentIdentitySchema,
  IdentitySchema,
  ModelSchema,
  UsageSchema,
  CostSchema,
  ToolDefinitionSchema,
  ReasoningStepSchema,
  DocumentSchema,
  ToolCallRequestSchema,
  MessageSchema,
  ErrorInfoSchema,
} from "./events/common.js";
export { DEFAULT_ENVIRONMENT } from "./events/deployments.js";
export {
  ESCALATION_STATES,
  SEVERITIES,
  SeveritySchema,
  PolicyActionSchema,
  ConcernKindSchema,
  PolicyFindingSchema,
  HeldCallSchema,
  type EscalationState,
  type HeldCall,
} from "./events/policy.js";
export { ACCESS_ACTIONS, AccessActionSchema, AccessSubjectSchema, type AccessAction, type AccessSubject } from "./events/access.js";

// The members in the order their types were added: refusing an unknown type lists the known ones
// in this order (dead-letter reasons carry it), so a new type goes last.
export const EventSchema = z.discriminatedUnion("type", [
  ...RUN_EVENTS,
  ...TOOL_EVENTS,
  ...RETRIEVAL_EVENTS,
  ...TRACE_EVENTS,
  ...ERASURE_EVENTS,
  ...DEPLOYMENT_EVENTS,
  PolicyFlagEventSchema,
  EscalationOpenedEventSchema,
  EscalationTransitionEventSchema,
  ...ACCESS_EVENTS,
  EscalationNotificationEventSchema,
  ...SHARD_EVENTS,
]);

export type AuditEvent = z.infer<typeof EventSchema>;
export type EventType = AuditEvent["type"];
export type EventOf<T extends EventType> = Extract<AuditEvent, { type: T }>;
export type Identity = z.infer<typeof IdentitySchema>;
export type Model = z.infer<typeof ModelSchema>;
export type Usage = z.infer<typeof UsageSchema>;
export type Message = z.infer<typeof MessageSchema>;
export type ToolCallRequest = z.infer<typeof ToolCallRequestSchema>;
export type ErrorInfo = z.infer<typeof ErrorInfoSchema>;
export type ReasoningStep = z.infer<typeof ReasoningStepSchema>;
export type ToolDefinition = z.infer<typeof ToolDefinitionSchema>;
export type Cost = z.infer<typeof CostSchema>;
export type Document = z.infer<typeof DocumentSchema>;
export type Severity = z.infer<typeof SeveritySchema>;
export type PolicyAction = z.infer<typeof PolicyActionSchema>;
export type ConcernKind = z.infer<typeof ConcernKindSchema>;
export type PolicyFinding = z.infer<typeof PolicyFindingSchema>;

/**
 * How redaction walks each event type's payload, from the families' hints. Complete by type
 * (`satisfies Record<EventType, Shape>`): a new event type does not compile until its family says
 * how redaction walks its payload.
 */
export const PAYLOAD_REDACTION = {
  ...RUN_REDACTION,
  ...TOOL_REDACTION,
  ...RETRIEVAL_REDACTION,
  ...TRACE_REDACTION,
  ...ERASURE_REDACTION,
  ...DEPLOYMENT_REDACTION,
  ...POLICY_REDACTION,
  ...ACCESS_REDACTION,
  ...SHARD_REDACTION,
} satisfies Record<EventType, Shape>;

/** UUIDv7: time-ordered, and monotonic within this process, so ids sort in capture order. */
export const newEventId = (): string => uuidv7();
