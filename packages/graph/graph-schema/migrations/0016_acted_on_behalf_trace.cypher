// An agent acts on a user's behalf once per trace: (:Agent)-[:ACTED_ON_BEHALF_OF {traceId}]->(:User).
// Between a busy agent and a returning user there are as many of them as the user's traces, so
// finding the one of a trace by walking between the two grows with the user's history; the
// projection finds it by its trace id instead (traces.cypher), through this index.
CREATE INDEX acted_on_behalf_trace IF NOT EXISTS FOR ()-[r:ACTED_ON_BEHALF_OF]-() ON (r.traceId);
