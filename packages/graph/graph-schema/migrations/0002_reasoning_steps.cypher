// Reasoning steps of an LLM call, keyed by the llm.end event id and the step's index.
CREATE CONSTRAINT reasoning_step_id IF NOT EXISTS FOR (n:ReasoningStep) REQUIRE n.id IS UNIQUE;
