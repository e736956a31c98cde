export {
  BUILTIN_DETECTORS,
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
export { Redactor, type RedactionCounts } from "./redactor.js";
