export {
  BUILTIN_DETECTORS,
  PII_DETECTORS,
  RedactionOperatorSchema,
  CustomDetectorSchema,
  FieldRuleSchema,
  RedactionConfigSchema,
  type BuiltinDetector,
  type RedactionOperator,
  type TextSpan,
  type DetectorFunction,
  type RedactionConfig,
  type ResolvedRedactionConfig,
  type CustomDetector,
  type FieldRule,
} from "./config.js";
export { Redactor, type RedactionCounts, type RedactionDigests } from "./redactor.js";
