/**
 * The benchmark's agent is the demo's (createAgent, a scripted fake model that asks for two
 * tool calls and then answers, and two real tools), so the figures describe what users run.
 */
import { HumanMessage } from "@langchain/core/messages";
import { DEMO_IDENTITY, DEMO_QUESTION, demoAgent } from "@auditgraph/cli";

export const BENCH_IDENTITY = DEMO_IDENTITY;

/** A new agent with a new model: build one per run, the same for every variant. */
export const benchAgent = demoAgent;

export const benchInput = () => ({ messages: [new HumanMessage(DEMO_QUESTION)] });

/** Invocation metadata: the identity keys our handler reads (the peers just carry them along). */
export const benchMetadata = (sessionId: string) => ({
  auditgraph_user_id: BENCH_IDENTITY.user.id,
  auditgraph_tenant_id: BENCH_IDENTITY.user.tenantId,
  auditgraph_session_id: sessionId,
});

/** The answer the scripted run must end with (3 × 89.5): a run that did not finish is no sample. */
export const EXPECTED_ANSWER_FRAGMENT = "268.5 EUR";
