export {
  EVENT_TYPES,
  PolicyEventTypeSchema,
  PredicateSchema,
  ConditionSchema,
  HoldSchema,
  RulePolicySchema,
  FunctionPolicySchema,
  PolicyDefinitionSchema,
  PolicyFileSchema,
  type Predicate,
  type Condition,
  type Hold,
  type PolicyDefinition,
  type PolicyDefinitionInput,
  type PolicyFile,
  type PolicyFileInput,
} from "./definition.js";
export { FieldPathSchema, resolvePath } from "./paths.js";
export { NamedPatternSchema, type NamedPattern } from "./regex.js";
export { FindingSchema, concernKindOf, type Finding } from "./finding.js";
export { definePolicyFunction, type PolicyFunction, type PolicyCheck, type PolicyContext, type PolicyHit } from "./function.js";
export { InMemoryPolicyState, InvalidAmountError, type PolicyState } from "./state.js";
export { PolicySet, PolicySetOptionsSchema, PolicyEvaluationError, type PolicyInfo, type PolicySetOptions, type EvaluationContext } from "./policy-set.js";
export {
  parsePolicyText,
  loadPolicySet,
  loadPolicyFile,
  PolicyFileFormatSchema,
  LoadPolicySetOptionsSchema,
  LoadPolicyFileOptionsSchema,
  type PolicyFileFormat,
  type LoadPolicySetOptions,
  type LoadPolicyFileOptions,
} from "./load.js";
export { awaitHold, InMemoryHoldDecider, type HoldDecider, type HoldDecision, type HoldOutcome, type PendingHold } from "./hold.js";
export {
  InlineEnforcer,
  InlineEnforcerOptionsSchema,
  PolicyRefusal,
  flagPayload,
  INLINE_ACTIONS,
  ESCALATION_ACTIONS,
  PRE_CALL_EVENT_TYPES,
  type InlineEnforcerOptions,
  type InlineOutcome,
  type InlineVerdict,
  type FlagPayload,
} from "./inline.js";
export {
  EscalationNotifier,
  EscalationNotifierOptionsSchema,
  EscalationNotificationSchema,
  NotificationAttemptSchema,
  WebhookOptionsSchema,
  NOTIFICATION_CHANNELS,
  SIGNATURE_HEADER,
  TIMESTAMP_HEADER,
  DELIVERY_HEADER,
  signWebhook,
  verifyWebhookSignature,
  type EscalationNotification,
  type EscalationNotificationInput,
  type EscalationNotifierOptions,
  type NotificationAttempt,
  type NotificationChannel,
  type NotifierMetrics,
  type VerifyWebhookInput,
} from "./notify.js";
export {
  RedisHoldDecider,
  RedisHoldDeciderOptionsSchema,
  HoldRecordSchema,
  DEFAULT_HOLD_PREFIX,
  holdIdOf,
  publishHoldDecision,
  readHold,
  type HoldRecord,
  type PublishHoldDecisionOptions,
  type PublishHoldDecisionResult,
  type RedisHoldDeciderOptions,
} from "./redis-hold.js";
// Redis connection helpers of the components that use Redis (moved here from @auditgraph/core).
export { redisClient, bullConnection, redisConnectionOf, describeRedis, readEpoch, type RedisConnection, type ScriptClient } from "./redis.js";
export {
  BUILTIN_POLICY_FUNCTIONS,
  INJECTION_MARKERS,
  ArgumentBoundSchema,
  piiOrSecret,
  promptInjection,
  toolGuard,
  budget,
  blockedOutput,
  modelAllowList,
  repeatedToolErrors,
  crossTenant,
  type ArgumentBound,
} from "./builtins/index.js";
