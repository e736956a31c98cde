import type { PolicyFunction } from "../function.js";
import { budget } from "./budget.js";
import { promptInjection } from "./injection.js";
import { modelAllowList } from "./models.js";
import { blockedOutput } from "./output.js";
import { piiOrSecret } from "./pii.js";
import { crossTenant } from "./tenant.js";
import { repeatedToolErrors } from "./tool-errors.js";
import { toolGuard } from "./tools.js";

export { budget, promptInjection, modelAllowList, blockedOutput, piiOrSecret, crossTenant, repeatedToolErrors, toolGuard };
export { INJECTION_MARKERS } from "./injection.js";
export { ArgumentBoundSchema, type ArgumentBound } from "./tools.js";

/** Registered in every set, by these names. */
export const BUILTIN_POLICY_FUNCTIONS: readonly PolicyFunction[] = [
  piiOrSecret,
  promptInjection,
  toolGuard,
  budget,
  blockedOutput,
  modelAllowList,
  repeatedToolErrors,
  crossTenant,
];
