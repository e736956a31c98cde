export { loadConfig, EnvSchema, keyStoreDirOf, type Config } from "./config.js";
export { eraseSubject, keyStoreOf, EraseArgsSchema, type EraseResult } from "./erase.js";
export { recordDeployment, DeployArgsSchema, type DeployResult, type DeployOptions } from "./deploy.js";
export { runDemo, type DemoResult } from "./demo.js";
export { rebuildGraphCommand, RebuildArgsSchema, type RebuildOutput } from "./rebuild-graph.js";
export { demoAgent, demoModel, catalogLookup, calculator, CATALOG, DEMO_IDENTITY, DEMO_QUESTION, DEMO_MODEL_VERSION } from "./demo-agent.js";
export { formatVerify } from "./verify.js";
export { transitionCommand, listCommand, showCommand, TransitionArgsSchema, ESCALATION_VERBS, type EscalationVerb } from "./escalations.js";
export { listDeadLetters, showDeadLetter, replayDeadLetters, jobDataOf } from "./dead-letters.js";
